"""Gated DeltaNet (Yang et al. 2025, "Gated Delta Networks: Improving Mamba2 with Delta Rule").

    S_t = α_t (I - β_t k_tᵀ k_t) S_{t-1} + β_t k_tᵀ v_t,   o_t = q_t S_t,   α_t = exp(-exp(A_h) softplus(x_t W_α + b_h))

DeltaNet's delta rule with Mamba-2's gate: a data-dependent decay per head and token lets the state forget as well as
overwrite. The output passes an RMS norm and a swish gate. Same chunked WY form, with the decays inside the chunk.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.nn.mixers.deltanet import DeltaNet
from attnkit.registry import register


def dt_bias(heads: int, dt_min: float = 1e-3, dt_max: float = 0.1) -> Tensor:
    """Mamba's initial time-step bias: softplus⁻¹ of time steps spread log-uniformly in [dt_min, dt_max]."""
    dt = torch.exp(torch.rand(heads) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
    return dt + torch.log(-torch.expm1(-dt))


@register("mixer", "gated_deltanet")
class GatedDeltaNet(DeltaNet):
    """Gated DeltaNet (Yang et al. 2025): the delta rule with a Mamba-2 decay per head and an output gate."""

    paper = "Yang et al. 2025, Gated Delta Networks: Improving Mamba2 with Delta Rule"

    gated = True

    def build_decay(self, dim: int, heads: int) -> None:
        self.alpha_proj = nn.Linear(dim, heads, bias=False)
        self.A_log = nn.Parameter(torch.log(torch.empty(heads).uniform_(1, 16)))
        self.dt_bias = nn.Parameter(dt_bias(heads))

    def decay(self, x: Tensor) -> Tensor:
        return -self.A_log.exp() * F.softplus(self.alpha_proj(x) + self.dt_bias)
