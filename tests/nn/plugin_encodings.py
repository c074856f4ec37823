"""Brand-new positional encodings of each kind, written as a plugin would write them (none is a built-in).

Each implements only its own hook of `PositionalEncoding`; `registered()` makes them config choices for a while.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from checks import restored_registry
from torch import Tensor, nn

import attnkit
from attnkit.nn.pos_enc import PositionalEncoding


class Ramp(PositionalEncoding):
    """Absolute: adds position · w, a learned vector (random at first, so that it shows)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(dim) / dim)

    def add_to_tokens(self, x: Tensor, offset: int = 0, grid: tuple[int, int] | None = None) -> Tensor:
        """x `[B, N, dim]` -> x + p·w for p = offset … offset+N−1."""
        return x + torch.arange(offset, offset + x.shape[1], dtype=x.dtype)[:, None] * self.w.to(x.dtype)


class PairRotation(PositionalEncoding):
    """Rotary: turns feature pairs (2i, 2i+1) of q and k by position · 10000^(-2i/D)."""

    kind = "rotary"

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        self.register_buffer("freq", 10000.0 ** (-torch.arange(0, head_dim, 2).float() / head_dim), persistent=False)

    def _turn(self, x: Tensor, offset: int) -> Tensor:
        angle = torch.arange(offset, offset + x.shape[-2]).float()[:, None] * self.freq  # [N, D/2]
        even, odd = x[..., 0::2], x[..., 1::2]
        cos, sin = angle.cos(), angle.sin()
        return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)

    def rotate(self, q: Tensor, k: Tensor, offset: int = 0) -> tuple[Tensor, Tensor]:
        return self._turn(q, offset), self._turn(k, offset)


class DistanceBias(PositionalEncoding):
    """Bias: a random scalar per head and clipped signed distance key − query; records the `causal` it was built
    with."""

    kind = "bias"

    def __init__(self, heads: int, causal: bool = False, clip: int = 3) -> None:
        super().__init__()
        self.causal, self.clip = causal, clip
        self.table = nn.Parameter(torch.randn(heads, 2 * clip + 1))

    def score_bias(self, nq: int, nk: int) -> Tensor:
        """`[1, H, nq, nk]`, queries at the last nq of nk positions."""
        distance = torch.arange(nk)[None, :] - torch.arange(nk - nq, nk)[:, None]
        return self.table[:, distance.clamp(-self.clip, self.clip) + self.clip][None]


PLUGINS = {"test_absolute": Ramp, "test_rotary": PairRotation, "test_bias": DistanceBias}


@contextlib.contextmanager
def registered() -> Iterator[None]:
    """The encodings above registered under kind `pos_enc`, the registry restored afterwards."""
    with restored_registry():
        for name, cls in PLUGINS.items():
            attnkit.register("pos_enc", name)(cls)
        yield
