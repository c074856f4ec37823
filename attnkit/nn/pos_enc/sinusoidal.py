"""The sine/cosine encoding of "Attention Is All You Need".

PE(p, 2i) = sin(p/10000^(2i/d)), PE(p, 2i+1) = cos(p/10000^(2i/d)).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from attnkit.nn.pos_enc.base import PositionalEncoding
from attnkit.ranges import NonNegativeFloat, PositiveFloat, PositiveInt
from attnkit.registry import register


def sinusoidal_table(length: int, dim: int, base: float = 10000.0, offset: int = 0) -> Tensor:
    """`[length, dim]` table of positions offset … offset+length-1.

    `dim` may be odd: the last cosine is dropped.
    """
    pos = torch.arange(offset, offset + length, dtype=torch.float64).unsqueeze(1)
    freq = torch.exp(-math.log(base) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return table.float()


@register("pos_enc", "sinusoidal")
class Sinusoidal(PositionalEncoding):
    """Fixed sine/cosine absolute positions (Vaswani et al. 2017); any length.

    `scale` multiplies the table before it is added to the tokens; None takes the model's: 1 where the token
    embeddings have unit scale (the ViT, the encoder–decoder), the embeddings' std where they start small (0.02 in
    the GPT-style decoder), so that the positions do not drown the tokens."""

    def __init__(self, dim: PositiveInt, base: PositiveFloat = 10000.0, scale: NonNegativeFloat | None = None) -> None:
        super().__init__()
        self.dim, self.base, self.scale = dim, base, 1.0 if scale is None else scale
        # a cache, not a buffer: it grows with the longest sequence seen, and a buffer whose shape changes would
        # break copies of the module that average or load buffers (an EMA of the weights, say)
        self._table = sinusoidal_table(0, dim, base)

    def add_to_tokens(self, x: Tensor, offset: int = 0, grid: tuple[int, int] | None = None) -> Tensor:
        """x `[B, N, dim]` -> x + PE[offset : offset + N] (1-D positions, whatever the `grid`)."""
        end = offset + x.shape[1]
        if self._table.shape[0] < end:
            self._table = sinusoidal_table(max(end, 2 * self._table.shape[0]), self.dim, self.base)
        if self._table.device != x.device:
            self._table = self._table.to(x.device)
        return x + self.scale * self._table[offset:end].to(x.dtype)
