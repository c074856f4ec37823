"""Image and label map augmented together: a random scale, a random crop and a horizontal flip per image, as one
resampling (bilinear for the image, nearest for the labels)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from attnkit.tasks.segment.data.base import IGNORE


def random_crops(
    images: Tensor,
    masks: Tensor,
    size: tuple[int, int],
    min_scale: float = 1.0,
    max_scale: float = 1.0,
    flip: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """`(images [B, C, H, W], masks [B, H, W])` -> crops `([B, C, h, w], [B, h, w])` of `size` (h, w).

    Per image: the image is scaled by s, log-uniform in [`min_scale`, `max_scale`], a window of `size` is taken at a
    uniformly random place in it (where the scaled image is smaller than the window, the window overhangs it: the
    overhang is zero in the normalised image and `IGNORE` in the mask), and the window is mirrored left-right with
    probability 1/2 when `flip`. Masks are resampled by their nearest pixel, so no new label appears."""
    b, _, height, width = images.shape
    h, w = size
    device = images.device

    def uniform(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator, device=device)

    scale = torch.exp(math.log(min_scale) + uniform(b) * (math.log(max_scale) - math.log(min_scale)))
    # the window's top-left corner, in pixels of the scaled image
    top = uniform(b) * (height * scale - h)
    left = uniform(b) * (width * scale - w)
    # output [-1, 1] -> input [-1, 1] (align_corners=False: -1 and 1 are the outer edges of the edge pixels)
    sx, sy = w / (scale * width), h / (scale * height)
    cx = 2 * (left + w / 2) / (scale * width) - 1
    cy = 2 * (top + h / 2) / (scale * height) - 1
    mirror = torch.where(uniform(b) < 0.5, -1.0, 1.0) if flip else torch.ones(b, device=device)
    zeros = torch.zeros(b, device=device)
    theta = torch.stack([torch.stack([sx * mirror, zeros, cx], 1), torch.stack([zeros, sy, cy], 1)], 1)
    grid = F.affine_grid(theta.to(images.dtype), [b, 1, h, w], align_corners=False)
    crops = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # labels shifted by one so that the zero padding becomes IGNORE once shifted back
    shifted = (masks.to(images.dtype) - IGNORE)[:, None]
    labels = F.grid_sample(shifted, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return crops, labels[:, 0].round().to(torch.int64) + IGNORE
