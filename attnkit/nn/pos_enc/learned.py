"""A learned table of absolute positions, as in BERT and ViT."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn.pos_enc.base import PositionalEncoding
from attnkit.ranges import NonNegativeFloat, NonNegativeInt, PositiveInt
from attnkit.registry import register


@register("pos_enc", "learned")
class Learned(PositionalEncoding):
    """Trainable `[max_len, dim]` position embeddings (truncated-normal init, std 0.02).

    `max_len=None` takes the length the model asks for (a ViT's token count). In an image model (`grid` given) the
    rows after `prefix_tokens` form a gh×gw grid; with `interpolate=True` an image of another size resamples that
    grid bicubically (as timm's dynamic image size does), and a sequence longer than a 1-D table stretches the table
    linearly; otherwise either is refused with the table's size.
    """

    def __init__(
        self,
        dim: PositiveInt,
        max_len: PositiveInt | None = None,
        init_std: NonNegativeFloat = 0.02,
        interpolate: bool = False,
        grid: tuple[PositiveInt, PositiveInt] | list[PositiveInt] | None = None,
        prefix_tokens: NonNegativeInt | None = None,
    ) -> None:
        super().__init__()
        prefix_tokens = prefix_tokens or 0  # None: the model's context (a class token or not)
        if max_len is None or max_len <= 0:
            raise ConfigError(f"pos_enc learned: max_len={max_len} must be a positive length; set pos_enc.max_len=...")
        self.max_len, self.interpolate, self.prefix_tokens = max_len, interpolate, prefix_tokens
        self.grid = None if grid is None else (int(grid[0]), int(grid[1]))
        if self.grid is not None and prefix_tokens + self.grid[0] * self.grid[1] != max_len:
            self.grid = None  # the table is not an image grid (max_len set by hand): plain 1-D positions
        self.weight = nn.Parameter(torch.empty(max_len, dim))
        nn.init.trunc_normal_(self.weight, std=init_std)

    def add_to_tokens(self, x: Tensor, offset: int = 0, grid: tuple[int, int] | None = None) -> Tensor:
        """x `[B, N, dim]` -> x + W[offset : offset + N]; `grid` (an image of another size) resamples the table."""
        if grid is not None and self.grid is not None and tuple(grid) != self.grid:
            return x + self._resampled(tuple(grid), x)
        end = offset + x.shape[1]
        if end > self.max_len and self.interpolate and self.grid is None:
            return x + self._stretched(end)[offset:end].to(x.dtype)
        if end > self.max_len:
            raise ConfigError(
                f"sequence of {end} positions exceeds the learned table's "
                f"max_len={self.max_len}; raise pos_enc.max_len or use pos_enc=sinusoidal"
            )
        return x + self.weight[offset:end].to(x.dtype)

    def _stretched(self, n: int) -> Tensor:
        """The table `[max_len, dim]` resampled linearly to `[n, dim]` (a sequence longer than the table)."""
        table = self.weight.T[None]  # [1, dim, max_len]
        return F.interpolate(table, size=n, mode="linear", align_corners=False)[0].T

    def _resampled(self, grid: tuple[int, int], x: Tensor) -> Tensor:
        if not self.interpolate:
            raise ConfigError(
                f"the learned table holds max_len={self.max_len} positions (a {self.grid[0]}x{self.grid[1]} grid);"
                f" this image gives a {grid[0]}x{grid[1]} grid: set pos_enc.interpolate=true or use pos_enc=sincos2d"
            )
        if x.shape[1] != self.prefix_tokens + grid[0] * grid[1]:
            raise ConfigError(f"{x.shape[1]} tokens do not match the image grid {grid[0]}x{grid[1]}")
        prefix, table = self.weight[: self.prefix_tokens], self.weight[self.prefix_tokens :]
        table = table.reshape(1, *self.grid, -1).permute(0, 3, 1, 2)
        table = F.interpolate(table, size=grid, mode="bicubic", align_corners=False)
        return torch.cat((prefix, table.permute(0, 2, 3, 1).flatten(0, 2))).to(x.dtype)
