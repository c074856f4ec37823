"""Retention (Sun et al. 2023, "Retentive Network"): linear attention with a fixed decay per head and rotated
queries and keys.

    S_t = γ_h S_{t-1} + k_tᵀ v_t,   o_t = q_t S_t,   γ_h = 1 - 2^(-5-h)   (h = 0 … H-1: one time scale per head)

q and k are rotated by their positions (the paper's e^{inθ}, θ_i = 10000^(-2i/d)); the heads' outputs pass a group
norm (an RMS norm per head) and a swish gate, `(swish(X W_G) ⊙ Y) W_O`. Decoding carries S `[H, d, d]`.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.nn.mixers.base import Mixer, State, check_divides, heads_first, heads_last, masked
from attnkit.nn.pos_enc.rope import frequencies, rotate_pairs
from attnkit.ranges import PositiveInt, Range
from attnkit.registry import register


@register("mixer", "retention")
class Retention(Mixer):
    """Retention, RetNet (Sun et al. 2023): fixed per-head decays 1 - 2^(-5-h), rotated q/k, gated group norm."""

    paper = "Sun et al. 2023, Retentive Network: A Successor to Transformer for Large Language Models"

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        chunk: PositiveInt = 64,
        base: Annotated[float, Range(1, low_open=True), "the rotation's wavelength base"] = 10000.0,
        causal: bool = True,
        where: str = "mixer",
    ) -> None:
        super().__init__(dim, causal=causal, where=where)
        self.heads, self.chunk = heads, chunk
        self.head_dim = check_divides(where, dim, heads)
        self.q_proj, self.k_proj, self.v_proj, self.gate = (nn.Linear(dim, dim, bias=False) for _ in range(4))
        self.norm = nn.RMSNorm(self.head_dim, eps=1e-5)
        self.out_proj = nn.Linear(dim, dim, bias=False)
        log_decay = torch.log1p(-(2.0 ** (-5.0 - torch.arange(heads, dtype=torch.float64))))
        self.register_buffer("log_decay", log_decay.float(), persistent=False)
        self.register_buffer("inv_freq", frequencies(self.head_dim // 2 * 2, base).float(), persistent=False)

    def mix(self, x: Tensor, keep: Tensor | None, state: State | None) -> tuple[Tensor, State]:
        B, N, _ = x.shape
        offset = 0 if state is None else int(state["length"][0])
        angles = torch.arange(offset, offset + N, device=x.device, dtype=torch.float32)[:, None] * self.inv_freq
        q = rotate_pairs(heads_first(self.q_proj(x), self.heads), angles) / math.sqrt(self.head_dim)
        k = masked(rotate_pairs(heads_first(self.k_proj(x), self.heads), angles), keep)
        v = heads_first(self.v_proj(x), self.heads)
        g = masked(self.log_decay.to(x.dtype)[None, :, None].expand(B, -1, N), keep)
        o, S = self.gated(q, k, v, g, None if state is None else state["S"], self.chunk)
        out = heads_last(self.norm(o)) * F.silu(self.gate(x))
        return self.out_proj(out), {"S": S, "length": torch.full((B,), offset + N, device=x.device)}
