"""Gated Linear Attention (Yang et al. 2024, "Gated Linear Attention Transformers with Hardware-Efficient Training").

    S_t = diag(α_t) S_{t-1} + k_tᵀ v_t,   o_t = q_t S_t,   α_t = σ(x_t W_α1 W_α2 + b)^(1/τ)

A data-dependent decay per key channel from a low-rank gate (rank 16, τ = 16); keys are half the width
(`expand_k`), the heads' outputs pass an RMS norm and a swish output gate. The chunked form builds a decay weight
per pair of positions and channel inside a chunk, so its chunk is small (16).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.nn.mixers.base import Mixer, State, check_divides, heads_first, heads_last, masked
from attnkit.ranges import PositiveFloat, PositiveInt
from attnkit.registry import register


@register("mixer", "gla")
class GatedLinearAttention(Mixer):
    """GLA (Yang et al. 2024): linear attention with a data-dependent decay per key channel and an output gate."""

    paper = "Yang et al. 2024, Gated Linear Attention Transformers with Hardware-Efficient Training"

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        expand_k: PositiveFloat = 0.5,
        gate_rank: PositiveInt = 16,
        gate_temperature: PositiveFloat = 16.0,
        chunk: PositiveInt = 16,
        causal: bool = True,
        where: str = "mixer",
    ) -> None:
        super().__init__(dim, causal=causal, where=where)
        key_dim = int(dim * expand_k)
        self.heads, self.chunk, self.temperature = heads, chunk, gate_temperature
        self.head_k = check_divides(where, key_dim, heads, "the key width (dim * expand_k)")
        self.head_v = check_divides(where, dim, heads)
        self.q_proj = nn.Linear(dim, key_dim, bias=False)
        self.k_proj = nn.Linear(dim, key_dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.gate_down = nn.Linear(dim, gate_rank, bias=False)
        self.gate_up = nn.Linear(gate_rank, key_dim)
        self.out_gate = nn.Linear(dim, dim, bias=False)
        self.norm = nn.RMSNorm(self.head_v, eps=1e-5)
        self.out_proj = nn.Linear(dim, dim, bias=False)

    def mix(self, x: Tensor, keep: Tensor | None, state: State | None) -> tuple[Tensor, State]:
        q = heads_first(self.q_proj(x), self.heads) / math.sqrt(self.head_k)
        k = masked(heads_first(self.k_proj(x), self.heads), keep)
        v = heads_first(self.v_proj(x), self.heads)
        g = masked(heads_first(F.logsigmoid(self.gate_up(self.gate_down(x))) / self.temperature, self.heads), keep)
        o, S = self.gated(q, k, v, g, None if state is None else state["S"], self.chunk)
        out = heads_last(self.norm(o)) * F.silu(self.out_gate(x))
        return self.out_proj(out), {"S": S}
