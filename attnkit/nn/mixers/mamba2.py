"""Mamba-2 (Dao & Gu 2024, "Transformers are SSMs: Generalized Models and Efficient Algorithms Through Structured
State Space Duality"), the SSD layer.

    h_t = exp(Δ_t A_h) h_{t-1} + Δ_t B_tᵀ x_t,   y_t = C_t h_t + D_h x_t,   out = norm(y ⊙ silu(z)) W_out

One input projection gives z, x (the inner width, `expand` × dim, split into heads), B and C (`state_size` each,
shared by the heads) and Δ (per head, through softplus with Mamba's bias); x, B and C pass a short causal
convolution with SiLU. A scalar decay per head and token: in the gated scan, q = C, k = Δ B, v = x, g = Δ A.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.nn.mixers.base import Mixer, ShortConv, State, check_divides, heads_first, heads_last, masked
from attnkit.nn.mixers.gated_deltanet import dt_bias
from attnkit.ranges import PositiveInt
from attnkit.registry import register


@register("mixer", "mamba2")
class Mamba2(Mixer):
    """Mamba-2 SSD (Dao & Gu 2024): a selective state space with a scalar decay per head, gated and normed."""

    paper = "Dao & Gu 2024, Transformers are SSMs (Mamba-2, state space duality)"

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        expand: PositiveInt = 2,
        state_size: PositiveInt = 64,
        conv_size: PositiveInt = 4,
        chunk: PositiveInt = 64,
        causal: bool = True,
        where: str = "mixer",
    ) -> None:
        super().__init__(dim, causal=causal, where=where)
        inner = expand * dim
        self.heads, self.inner, self.n, self.chunk = heads, inner, state_size, chunk
        check_divides(where, inner, heads, "the inner width (expand * dim)")
        self.in_proj = nn.Linear(dim, 2 * inner + 2 * state_size + heads, bias=False)
        self.conv = ShortConv(inner + 2 * state_size, conv_size)
        self.A_log = nn.Parameter(torch.log(torch.empty(heads).uniform_(1, 16)))
        self.dt_bias = nn.Parameter(dt_bias(heads))
        self.D = nn.Parameter(torch.ones(heads))
        self.norm = nn.RMSNorm(inner, eps=1e-5)
        self.out_proj = nn.Linear(inner, dim, bias=False)

    def mix(self, x: Tensor, keep: Tensor | None, state: State | None) -> tuple[Tensor, State]:
        state = state or {}
        if keep is not None:
            x = x * keep[..., None]
        z, xbc, dt = self.in_proj(x).split([self.inner, self.inner + 2 * self.n, self.heads], dim=-1)
        xbc, conv = self.conv(xbc, state.get("conv"))
        xs, b, c = xbc.split([self.inner, self.n, self.n], dim=-1)
        dt = masked(F.softplus(dt + self.dt_bias).transpose(1, 2), keep)  # [B, H, N]
        v = heads_first(xs, self.heads)  # [B, H, N, P]
        q = c[:, None].expand(-1, self.heads, -1, -1)  # [B, H, N, n]
        k = b[:, None] * dt[..., None]
        g = dt * -self.A_log.exp()[:, None]
        y, S = self.gated(q, k, v, g, state.get("S"), self.chunk)
        y = heads_last(y + self.D[:, None, None] * v)
        return self.out_proj(self.norm(y * F.silu(z))), {"S": S, "conv": conv}
