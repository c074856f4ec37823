"""Normalisation layers, registered under kind `norm`."""

from __future__ import annotations

from torch import nn

from attnkit.ranges import PositiveFloat, PositiveInt
from attnkit.registry import register


@register("norm", "layernorm")
def layernorm(dim: PositiveInt, eps: PositiveFloat = 1e-5, bias: bool = True) -> nn.Module:
    """LayerNorm over the last dimension (Ba et al. 2016)."""
    return nn.LayerNorm(dim, eps=eps, bias=bias)


@register("norm", "rmsnorm")
def rmsnorm(dim: PositiveInt, eps: PositiveFloat = 1e-6) -> nn.Module:
    """RMSNorm: scale by the root mean square, no centring (Zhang & Sennrich 2019)."""
    return nn.RMSNorm(dim, eps=eps)
