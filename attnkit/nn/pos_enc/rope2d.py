"""Axial rotary positions for image patches: half of the rotated pairs turn with the row, half with the column."""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from attnkit.errors import ConfigError
from attnkit.nn.capabilities import head_dim
from attnkit.nn.pos_enc.base import PositionalEncoding, image_grid
from attnkit.nn.pos_enc.rope import frequencies, rotary_dims, rotate_pairs
from attnkit.ranges import NonNegativeInt, PositiveFloat, PositiveInt, Range
from attnkit.registry import register


@register("pos_enc", "rope2d")
class Rope2d(PositionalEncoding):
    """RoPE over the patch grid (as in EVA-02 and RoPE-ViT): the score of two patches depends on their 2-D offset.

    Prefix tokens (a class token) are not rotated. Image tasks only: the model gives `grid` and `prefix_tokens`.
    """

    kind = "rotary"

    def __init__(
        self,
        dim: PositiveInt,
        heads: PositiveInt,
        grid: tuple[PositiveInt, PositiveInt] | list[PositiveInt] | None = None,
        prefix_tokens: NonNegativeInt | None = None,
        base: PositiveFloat = 100.0,
        fraction: Annotated[float, Range(0, 1, low_open=True), "the share of each head's features that rotate"] = 1.0,
    ) -> None:
        super().__init__()
        prefix_tokens = prefix_tokens or 0  # None: the model's context (a class token or not)
        self.grid = image_grid(grid, "rope2d")
        if base <= 1.0:
            raise ConfigError(f"pos_enc=rope2d: base={base} must be > 1 (pos_enc.base, e.g. 100)")
        rot = rotary_dims(head_dim(dim, heads), fraction, "rope2d")
        if rot % 4:
            raise ConfigError(
                f"pos_enc=rope2d rotates {rot} features per head, which must split into row and column pairs "
                f"(a multiple of 4); change pos_enc.fraction or the head dimension"
            )
        self.prefix_tokens, self.max_len = prefix_tokens, prefix_tokens + self.grid[0] * self.grid[1]
        theta = frequencies(rot // 2, base)  # [rot/4]
        rows, cols = torch.meshgrid(
            torch.arange(self.grid[0], dtype=torch.float64),
            torch.arange(self.grid[1], dtype=torch.float64),
            indexing="ij",
        )
        angles = torch.cat((rows.reshape(-1, 1) * theta, cols.reshape(-1, 1) * theta), dim=-1)  # [gh·gw, rot/2]
        angles = torch.cat((torch.zeros(prefix_tokens, rot // 2, dtype=torch.float64), angles))
        self.register_buffer("angles", angles.float(), persistent=False)

    def rotate(self, q: Tensor, k: Tensor, offset: int = 0) -> tuple[Tensor, Tensor]:
        """q `[B, H, N, D]`, k `[B, Hkv, N, D]`, N = prefix + gh·gw tokens (minus `offset`) -> rotated (q, k)."""
        n = q.shape[-2]
        if offset + n != self.max_len or k.shape[-2] != n:
            raise ConfigError(
                f"pos_enc=rope2d: {offset + n} tokens do not match the image grid {self.grid[0]}x{self.grid[1]}"
                f" (+{self.prefix_tokens} prefix = {self.max_len}); build the model for this image size"
            )
        angles = self.angles[offset:].to(q.device)
        return rotate_pairs(q, angles), rotate_pairs(k, angles)
