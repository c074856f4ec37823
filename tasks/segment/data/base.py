"""What every segmentation data source shares: the splits it returns, its base class and the dataset of
(image, label map) pairs.

Images are kept as uint8 `[N, C, H, W]` and label maps as int16 `[N, H, W]` (class ids, `IGNORE` where a pixel is not
scored), both at the source's `image_size`; an item is normalised when it is read. Augmentation (flips, random scale
and crop, applied to image and mask together) is the task's, on batches (tasks/segment/augment.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

from attnkit.data.checks import check_int

# The label of a pixel that is neither trained on nor scored (a source maps its own ignore index to it).
IGNORE = -1
# The most classes a label map may have (int16 storage).
MAX_CLASSES = 32_000


class SegmentDataset(Dataset):
    """Pairs `(image float32 [C, H, W] normalised with (x / 255 - mean) / std, mask int64 [H, W])`, from uint8
    images `[N, C, H, W]` and int16 masks `[N, H, W]` (`IGNORE` = not scored)."""

    def __init__(self, images: Tensor, masks: Tensor, mean: Sequence[float], std: Sequence[float]) -> None:
        if images.shape[0] != masks.shape[0] or images.shape[-2:] != masks.shape[-2:]:
            raise ValueError(f"images {tuple(images.shape)} and masks {tuple(masks.shape)} do not pair up")
        self.images, self.masks = images, masks
        self.mean = torch.tensor(list(mean), dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32).view(-1, 1, 1)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = (self.images[index].to(torch.float32) / 255.0 - self.mean) / self.std
        return image, self.masks[index].to(torch.int64)


@dataclass
class SegmentSplits:
    """The three splits of a segmentation data set and what a model, a scorer and a predictor need to know.

    `image_size` (H, W): every image and mask of every split has it. `palette`: an RGB colour per class (plots,
    overlays, colour masks). `class_pixels`: labelled pixels per class in the training split (class weights and the
    majority-class baseline)."""

    train: SegmentDataset
    val: SegmentDataset
    test: SegmentDataset
    num_classes: int
    image_size: tuple[int, int]
    in_channels: int
    class_names: list[str]
    palette: list[tuple[int, int, int]]
    mean: list[float]
    std: list[float]
    class_pixels: list[int]


class SegmentData:
    """Base class of segmentation data sources: subclasses implement `_load()`; `load()` caches its result.

    `mean` and `std`, when set before `load()` (a checkpoint's), normalise every split; otherwise a source computes
    them from its training split (`channel_stats` of tasks/vit/data/images.py)."""

    def __init__(self, batch_size: int = 16) -> None:
        check_int("batch_size", batch_size, minimum=1)
        self.batch_size = batch_size
        self.mean: list[float] | None = None
        self.std: list[float] | None = None
        self._splits: SegmentSplits | None = None

    def load(self) -> SegmentSplits:
        """The splits, loaded on the first call and cached."""
        if self._splits is None:
            splits = self._load()
            self.mean, self.std = list(splits.mean), list(splits.std)
            self._splits = splits
        return self._splits

    def _load(self) -> SegmentSplits:
        raise NotImplementedError(f"{type(self).__name__} must implement _load()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_size={self.batch_size})"


def class_pixels(masks: Tensor, num_classes: int) -> list[int]:
    """Labelled pixels per class of int masks `[N, H, W]` (`IGNORE` left out)."""
    labelled = masks[masks != IGNORE].to(torch.int64)
    return [int(c) for c in torch.bincount(labelled, minlength=num_classes)[:num_classes]]


def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """Distinct RGB colours, one per class: the bit-interleaved palette of PASCAL VOC's label maps."""
    colours = []
    for i in range(num_classes):
        r = g = b = 0
        c = i + 1  # colour 0 is black, which plots use for ignored pixels
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours.append((r, g, b))
    return colours
