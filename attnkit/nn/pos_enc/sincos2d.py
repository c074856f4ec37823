"""Fixed 2-D sine-cosine positions for image patches (as in MAE and "Better plain ViT baselines")."""

from __future__ import annotations

import torch
from torch import Tensor

from attnkit.errors import ConfigError
from attnkit.nn.pos_enc.base import PositionalEncoding, image_grid
from attnkit.nn.pos_enc.sinusoidal import sinusoidal_table
from attnkit.ranges import NonNegativeInt, PositiveFloat, PositiveInt
from attnkit.registry import register


def sincos2d_table(grid: tuple[int, int], dim: int, base: float, prefix_tokens: int) -> Tensor:
    """`[prefix + gh·gw, dim]`: zeros for prefix tokens; then the 1-D sine/cosine table of the patch's row in the
    first half of the features and of its column in the second half."""
    rows = sinusoidal_table(grid[0], dim // 2, base)  # [gh, dim/2]
    cols = sinusoidal_table(grid[1], dim // 2, base)  # [gw, dim/2]
    table = torch.cat(
        (rows[:, None, :].expand(-1, grid[1], -1), cols[None, :, :].expand(grid[0], -1, -1)), dim=-1
    ).reshape(-1, dim)
    return torch.cat((torch.zeros(prefix_tokens, dim), table))


@register("pos_enc", "sincos2d")
class SinCos2d(PositionalEncoding):
    """Fixed 2-D sine-cosine absolute positions; any image size (the table follows the grid it is given)."""

    def __init__(
        self,
        dim: PositiveInt,
        grid: tuple[PositiveInt, PositiveInt] | list[PositiveInt] | None = None,
        prefix_tokens: NonNegativeInt | None = None,
        base: PositiveFloat = 10000.0,
    ) -> None:
        super().__init__()
        prefix_tokens = prefix_tokens or 0  # None: the model's context (a class token or not)
        if dim % 4:
            raise ConfigError(f"pos_enc=sincos2d needs a width divisible by 4; got model.dim={dim}")
        self.grid, self.dim, self.base, self.prefix_tokens = image_grid(grid, "sincos2d"), dim, base, prefix_tokens
        self.register_buffer("table", sincos2d_table(self.grid, dim, base, prefix_tokens), persistent=False)

    def add_to_tokens(self, x: Tensor, offset: int = 0, grid: tuple[int, int] | None = None) -> Tensor:
        """x `[B, prefix + gh·gw, dim]` -> x + table; `grid` (another image size) recomputes the table."""
        same = grid is None or tuple(grid) == self.grid
        table = self.table if same else sincos2d_table(tuple(grid), self.dim, self.base, self.prefix_tokens)
        if offset + x.shape[1] != table.shape[0]:
            g = grid or self.grid
            raise ConfigError(
                f"pos_enc=sincos2d: {offset + x.shape[1]} tokens do not match the image grid {g[0]}x{g[1]}"
                f" (+{self.prefix_tokens} prefix = {table.shape[0]})"
            )
        return x + table[offset:].to(device=x.device, dtype=x.dtype)
