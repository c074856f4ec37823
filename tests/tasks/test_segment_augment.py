"""Joint augmentation of image and label map, and sliding-window evaluation at full resolution."""

from __future__ import annotations

import pytest
import torch

from attnkit.tasks.segment.augment import random_crops
from attnkit.tasks.segment.data.base import IGNORE
from attnkit.tasks.segment.window import sliding_window, starts


def blocks(b: int = 3, h: int = 24, w: int = 32, side: int = 4) -> torch.Tensor:
    """Label maps of `side` x `side` blocks of random classes 0..4, some ignored."""
    coarse = torch.randint(-1, 5, (b, h // side, w // side))
    return coarse.repeat_interleave(side, 1).repeat_interleave(side, 2)


def test_no_scale_no_flip_full_crop_is_the_identity() -> None:
    masks = blocks()
    images = torch.randn(3, 3, 24, 32)
    crops, labels = random_crops(images, masks, (24, 32))
    torch.testing.assert_close(crops, images, atol=1e-5, rtol=0)
    assert torch.equal(labels, masks)


def test_flip_mirrors_image_and_mask_together() -> None:
    masks = blocks(b=16)
    images = masks[:, None].float().expand(-1, 3, -1, -1).contiguous()
    crops, labels = random_crops(images, masks, (24, 32), flip=True, generator=torch.Generator().manual_seed(0))
    mirrored = [bool(torch.equal(labels[i], masks[i].flip(-1))) for i in range(16)]
    kept = [bool(torch.equal(labels[i], masks[i])) for i in range(16)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True)) and any(mirrored) and any(kept)
    for i in range(16):
        torch.testing.assert_close(crops[i, 0], labels[i].float(), atol=1e-5, rtol=0)


@pytest.mark.parametrize(("low", "high", "size"), [(0.5, 2.0, (16, 16)), (1.5, 1.5, (12, 20)), (0.4, 0.4, (24, 32))])
def test_scaled_crops_keep_image_and_labels_aligned(low, high, size) -> None:
    """The image carries its own labels as values: after any crop, a labelled pixel inside a block (its neighbours
    share its label, so bilinear sampling does not blend) has its label as value; no new label appears; an overhang
    is ignored."""
    masks = blocks(b=8, h=48, w=64, side=8)
    images = masks[:, None].float()
    crops, labels = random_crops(images, masks, size, low, high, flip=True, generator=torch.Generator().manual_seed(1))
    assert crops.shape == (8, 1, *size) and labels.shape == (8, *size) and labels.dtype == torch.int64
    assert set(labels.unique().tolist()) <= set(masks.unique().tolist()) | {IGNORE}
    padded = torch.nn.functional.pad(labels, (1, 1, 1, 1), value=IGNORE)
    h, w = size
    inside = torch.stack(
        [padded[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] == labels for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    )
    inside = inside.all(0) & (labels != IGNORE)
    assert inside.any()
    torch.testing.assert_close(crops[:, 0][inside], labels[inside].float(), atol=1e-4, rtol=0)
    if high < 1 - 1e-6:  # the scaled image is smaller than the window: part of every crop overhangs it
        assert (labels == IGNORE).float().mean() > (masks == IGNORE).float().mean()


def test_starts_cover_the_length() -> None:
    assert starts(10, 10, 3) == [0]
    assert starts(10, 4, 3) == [0, 3, 6]
    assert starts(11, 4, 3) == [0, 3, 6, 7]
    for length, window, stride in [(37, 8, 5), (64, 32, 21), (9, 2, 1)]:
        s = starts(length, window, stride)
        covered = torch.zeros(length, dtype=torch.bool)
        for start in s:
            covered[start : start + window] = True
        assert covered.all() and s[-1] == length - window


def test_sliding_window_of_a_pointwise_model_is_the_model() -> None:
    """A model that scores each pixel on its own gives the same scores on windows as on the whole image."""
    model = torch.nn.Conv2d(3, 5, kernel_size=1)
    images = torch.randn(2, 3, 20, 30)
    with torch.no_grad():
        torch.testing.assert_close(sliding_window(model, images, (8, 12)), model(images))
        torch.testing.assert_close(sliding_window(model, images, (20, 30)), model(images))


def test_sliding_window_averages_the_overlaps() -> None:
    """Each window adds its position's count: averaged, every pixel scores 1."""
    images = torch.zeros(1, 1, 10, 10)
    torch.testing.assert_close(
        sliding_window(lambda x: torch.ones_like(x), images, (4, 4), 0.5), torch.ones(1, 1, 10, 10)
    )
    with pytest.raises(ValueError):
        sliding_window(lambda x: x, images, (12, 4))
