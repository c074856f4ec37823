"""No positions: attention sees a set (a baseline for the other encodings)."""

from __future__ import annotations

from attnkit.nn.pos_enc.base import PositionalEncoding
from attnkit.registry import register


@register("pos_enc", "none")
class NoPositions(PositionalEncoding):
    """Adds nothing (every hook is the base's no-op): the model is permutation-equivariant over its tokens."""

    def __init__(self) -> None:
        super().__init__()
