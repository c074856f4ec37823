"""No positions: attention sees a set (a baseline for the other encodings)."""

from __future__ import annotations

from torch import Tensor

from attnkit.nn.pos_enc.base import PositionalEncoding
from attnkit.registry import register


@register("pos_enc", "none")
class NoPositions(PositionalEncoding):
    """Adds nothing: the model is permutation-equivariant over its tokens."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x `[B, N, dim]` -> x."""
        return x
