"""Rotary position embedding (Su et al. 2021, RoFormer), applied to queries and keys in the multi-head layer.

Pairs of features (2i, 2i+1) of each head are rotated by the angle p·θ_i, θ_i = base^(-2i/d_rot), where p is the
token's position: the score q_m·k_n then depends on the positions only through the offset m − n.
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from attnkit.errors import ConfigError
from attnkit.nn.capabilities import head_dim
from attnkit.nn.pos_enc.base import PositionalEncoding
from attnkit.ranges import PositiveInt, Range
from attnkit.registry import register


def rotary_dims(head_dim: int, fraction: float, name: str) -> int:
    """Features rotated per head: `fraction` of `head_dim`, rounded down to an even number (at least 2)."""
    if head_dim % 2:
        raise ConfigError(f"pos_enc={name} needs an even head dimension; got {head_dim} (change model.dim or heads)")
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"pos_enc={name}: fraction={fraction} must be in (0, 1] (pos_enc.fraction)")
    rot = int(head_dim * fraction) // 2 * 2
    if rot < 2:
        raise ConfigError(f"pos_enc={name}: fraction={fraction} of head dimension {head_dim} rotates no pair; raise it")
    return rot


def rotate_pairs(x: Tensor, angles: Tensor) -> Tensor:
    """Rotate features (2i, 2i+1) of `x` `[..., N, D]` by `angles` `[N, R/2]` (R ≤ D); the rest pass through."""
    rot = 2 * angles.shape[-1]
    pairs = x[..., :rot].float().unflatten(-1, (-1, 2))  # [..., N, R/2, 2]
    cos, sin = torch.cos(angles), torch.sin(angles)
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)
    return torch.cat((rotated.to(x.dtype), x[..., rot:]), dim=-1)


def frequencies(rot: int, base: float) -> Tensor:
    """θ_i = base^(-2i/rot), i = 0 … rot/2 − 1, in float64 (cast where used)."""
    return base ** (-torch.arange(0, rot, 2, dtype=torch.float64) / rot)


@register("pos_enc", "rope")
class Rope(PositionalEncoding):
    """Rotary positions (RoPE) on `fraction` of each head's features; any length, cached decoding by `offset`."""

    kind = "rotary"

    def __init__(
        self,
        dim: PositiveInt,
        heads: PositiveInt,
        base: Annotated[float, Range(1, low_open=True), "the wavelength base, e.g. 10000"] = 10000.0,
        fraction: Annotated[float, Range(0, 1, low_open=True), "the share of each head's features that rotate"] = 1.0,
    ) -> None:
        super().__init__()
        if base <= 1.0:
            raise ConfigError(f"pos_enc=rope: base={base} must be > 1 (pos_enc.base, e.g. 10000)")
        self.rot = rotary_dims(head_dim(dim, heads), fraction, "rope")
        self.register_buffer("inv_freq", frequencies(self.rot, base).float(), persistent=False)

    def angles(self, n: int, offset: int, device: torch.device) -> Tensor:
        """`[n, rot/2]` angles of positions offset … offset+n−1."""
        pos = torch.arange(offset, offset + n, device=device, dtype=torch.float32)
        return pos[:, None] * self.inv_freq.to(device)[None, :]

    def rotate(self, q: Tensor, k: Tensor, offset: int = 0) -> tuple[Tensor, Tensor]:
        """q `[B, H, Nq, D]`, k `[B, Hkv, Nk, D]` at positions offset, offset+1, … -> rotated (q, k)."""
        return (
            rotate_pairs(q, self.angles(q.shape[-2], offset, q.device)),
            rotate_pairs(k, self.angles(k.shape[-2], offset, k.device)),
        )
