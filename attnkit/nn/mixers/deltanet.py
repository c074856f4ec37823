"""DeltaNet (Schlag et al. 2021, "Linear Transformers Are Secretly Fast Weight Programmers"), trained with the
chunked parallel form of Yang et al. 2024 ("Parallelizing Linear Transformers with the Delta Rule over Sequence
Length").

    S_t = S_{t-1} - β_t k_tᵀ (k_t S_{t-1} - v_t),   o_t = q_t S_t

The delta rule writes v_t in place of what the state recalled for k_t, at a rate β_t = σ(x_t W_β) per head; q and k
pass a short causal convolution with SiLU and are L2-normalised per head (Yang et al.'s recipe), v a short
convolution too; the heads' outputs pass an RMS norm. Decoding carries S `[H, d, d]` and the convolutions' last
inputs.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.nn.mixers.base import Mixer, ShortConv, State, check_divides, heads_first, heads_last, masked
from attnkit.ranges import PositiveInt
from attnkit.registry import register


@register("mixer", "deltanet")
class DeltaNet(Mixer):
    """DeltaNet (Schlag et al. 2021; chunked as Yang et al. 2024): the delta rule, β per head, normalised q/k."""

    paper = "Schlag et al. 2021, Linear Transformers Are Secretly Fast Weight Programmers; Yang et al. 2024"
    gated: ClassVar[bool] = False  # a subclass with a decay and an output gate (Gated DeltaNet) sets it

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        chunk: PositiveInt = 64,
        conv_size: PositiveInt = 4,
        causal: bool = True,
        where: str = "mixer",
    ) -> None:
        super().__init__(dim, causal=causal, where=where)
        self.heads, self.chunk = heads, chunk
        self.head_dim = check_divides(where, dim, heads)
        self.qkv_proj = nn.Linear(dim, 3 * dim, bias=False)  # q, k and v, each with its own convolution channels
        self.conv = ShortConv(3 * dim, conv_size)
        self.beta_proj = nn.Linear(dim, heads, bias=False)
        self.out_gate = nn.Linear(dim, dim, bias=False) if self.gated else None
        self.norm = nn.RMSNorm(self.head_dim, eps=1e-5)
        self.out_proj = nn.Linear(dim, dim, bias=False)
        self.build_decay(dim, heads)

    def build_decay(self, dim: int, heads: int) -> None:
        """Make the parameters of `decay` (none here)."""

    def decay(self, x: Tensor) -> Tensor | None:
        """The log decay `[B, N, H]` of each token's step (None: no decay, DeltaNet)."""
        return None

    def mix(self, x: Tensor, keep: Tensor | None, state: State | None) -> tuple[Tensor, State]:
        state = state or {}
        if keep is not None:
            x = x * keep[..., None]
        qkv, conv = self.conv(self.qkv_proj(x), state.get("conv"))
        q, k, v = qkv.chunk(3, dim=-1)
        q = F.normalize(heads_first(q, self.heads), dim=-1) / math.sqrt(self.head_dim)
        k = F.normalize(heads_first(k, self.heads), dim=-1)
        v = heads_first(v, self.heads)
        beta = masked(torch.sigmoid(self.beta_proj(x)).transpose(1, 2), keep)
        g = self.decay(x)
        g = None if g is None else masked(g.transpose(1, 2), keep)
        o, S = self.delta(q, k, v, beta, g, state.get("S"), self.chunk)
        out = heads_last(self.norm(o))
        if self.out_gate is not None:
            out = out * F.silu(self.out_gate(x))
        return self.out_proj(out), {"S": S, "conv": conv}
