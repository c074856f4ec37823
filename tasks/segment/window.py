"""Scores at full resolution from a model whose input is smaller: overlapping windows, their scores averaged."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def starts(length: int, window: int, stride: int) -> list[int]:
    """Window starts that cover `length` with windows of `window`, `stride` apart, the last flush with the end."""
    if window >= length:
        return [0]
    count = math.ceil((length - window) / stride) + 1
    return sorted({min(i * stride, length - window) for i in range(count)})


def sliding_window(
    model: Callable[[Tensor], Tensor], images: Tensor, window: tuple[int, int], overlap: float = 1 / 3
) -> Tensor:
    """Class scores `[B, K, H, W]` of images `[B, C, H, W]`: `model` (`[B, C, h, w]` -> `[B, K, h, w]`) on windows of
    `window` (h, w), `overlap` of a window apart less, averaged where windows overlap. Images of the window's size
    take one pass."""
    height, width = images.shape[-2:]
    h, w = window
    if (h, w) == (height, width):
        return model(images)
    if h > height or w > width:
        raise ValueError(f"a window of {h}x{w} does not fit images of {height}x{width}")
    sy, sx = max(1, round(h * (1 - overlap))), max(1, round(w * (1 - overlap)))
    total: Tensor | None = None
    count = torch.zeros(1, 1, height, width, device=images.device, dtype=images.dtype)
    for y in starts(height, h, sy):
        for x in starts(width, w, sx):
            scores = model(images[..., y : y + h, x : x + w])
            if total is None:
                total = images.new_zeros(images.shape[0], scores.shape[1], height, width)
            total[..., y : y + h, x : x + w] += scores
            count[..., y : y + h, x : x + w] += 1
    assert total is not None
    return total / count
