"""HGRN-2 (Qin et al. 2024, "HGRN2: Gated Linear RNNs with State Expansion").

    S_t = diag(f_t) S_{t-1} + (1 - f_t)ᵀ i_t,   o_t = q_t S_t,   f_t = β + (1 - β) σ(x_t W_f)

A gated linear RNN whose forget gate also ties the input gate (1 - f) and whose hidden state is expanded by an outer
product; `lower_bound` β keeps the forget gate from 0 (the paper raises it with depth). The query passes a swish, the
output an RMS norm. One decay per state channel, so its chunk is small (16).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.nn.mixers.base import Mixer, State, check_divides, heads_first, heads_last, masked
from attnkit.ranges import Fraction, PositiveFloat, PositiveInt
from attnkit.registry import register


@register("mixer", "hgrn2")
class HGRN2(Mixer):
    """HGRN-2 (Qin et al. 2024): a gated linear RNN with state expansion; input gate tied to the forget gate."""

    paper = "Qin et al. 2024, HGRN2: Gated Linear RNNs with State Expansion"

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        expand_k: PositiveFloat = 0.5,
        lower_bound: Fraction = 0.0,
        chunk: PositiveInt = 16,
        causal: bool = True,
        where: str = "mixer",
    ) -> None:
        super().__init__(dim, causal=causal, where=where)
        key_dim = int(dim * expand_k)
        self.heads, self.chunk, self.lower_bound = heads, chunk, lower_bound
        self.head_k = check_divides(where, key_dim, heads, "the key width (dim * expand_k)")
        self.head_v = check_divides(where, dim, heads)
        self.q_proj = nn.Linear(dim, key_dim, bias=False)
        self.f_proj = nn.Linear(dim, key_dim, bias=False)
        self.i_proj = nn.Linear(dim, dim, bias=False)
        self.norm = nn.RMSNorm(self.head_v, eps=1e-5)
        self.out_proj = nn.Linear(dim, dim, bias=False)

    def mix(self, x: Tensor, keep: Tensor | None, state: State | None) -> tuple[Tensor, State]:
        q = F.silu(heads_first(self.q_proj(x), self.heads)) / math.sqrt(self.head_k)
        f = self.f_proj(x)
        lb = self.lower_bound  # log f and 1 - f without underflow: log σ(z), σ(-z) when lb = 0
        log_forget = F.logsigmoid(f) if lb == 0 else torch.log(lb + (1 - lb) * torch.sigmoid(f))
        g = masked(heads_first(log_forget, self.heads), keep)
        k = masked(heads_first((1 - lb) * torch.sigmoid(-f), self.heads), keep)
        v = heads_first(self.i_proj(x), self.heads)
        o, S = self.gated(q, k, v, g, None if state is None else state["S"], self.chunk)
        return self.out_proj(heads_last(self.norm(o))), {"S": S}
