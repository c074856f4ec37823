"""Reading (image, label map) pairs into `SegmentSplits`: the `image_size` option, decoding pairs (files in
threads), checking that a mask fits its image, and the splits' statistics.

Every image is converted to `channels` and resized bilinearly to `image_size` (H, W) with `pil_to_uint8`; every mask
is decoded by a `MaskFormat` at its own size (so every pixel's label is checked) and then resized with nearest
neighbour. Normalisation comes from the training split unless the source has `mean` and `std` already.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from attnkit.data.checks import check_fractions
from attnkit.errors import ConfigError, DataError
from attnkit.tasks.segment.data.base import (
    MAX_CLASSES,
    SegmentData,
    SegmentDataset,
    SegmentSplits,
    class_pixels,
    default_palette,
)
from attnkit.tasks.segment.data.masks import MaskFormat, check_ignore_index, resize_labels
from attnkit.tasks.vit.data.images import channel_stats, pil_to_uint8

if TYPE_CHECKING:
    from PIL import Image

# A pair as a reader returns it: (image, mask as a PIL image or an array, the image's name, the mask's name).
Pair = tuple["Image.Image", "Image.Image | np.ndarray", str, str]
# Normalisation statistics read at most this many training pixel values (evenly spaced images): exact enough, and
# `channel_stats`' float64 copy stays near 256 MB.
STATS_VALUES = 2**25
# Pairs read from files are decoded by this many threads at most (PIL and numpy release the GIL).
THREADS = 8


def image_size_option(value: Any) -> tuple[int, int] | None:
    """`data.image_size`: an int (square), [height, width], or null (the first training image's size)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        sides = [value, value]
    elif not isinstance(value, (str, bytes)) and hasattr(value, "__len__") and len(value) == 2:
        sides = list(value)
    else:
        sides = None
    if sides is None or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sides):
        raise ConfigError(
            f"data.image_size={value!r} must be an int >= 1 (square), [height, width], or null (the first training "
            f"image's size)"
        )
    return int(sides[0]), int(sides[1])


def check_channels_and_fractions(channels: int, val_fraction: float, test_fraction: float) -> None:
    """The options of a source of files: 1 (grey) or 3 (RGB) channels, fractions that leave training images."""
    if channels not in (1, 3):
        raise ConfigError(f"data.channels={channels!r} must be 1 (grey) or 3 (RGB)")
    check_fractions(val_fraction, test_fraction, items="images")


def decode_pairs(
    items: Sequence[Any],
    read: Callable[[Any], Pair],
    fmt: MaskFormat,
    channels: int,
    size: tuple[int, int],
    threads: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """uint8 images `[N, C, H, W]`, int16 masks `[N, H, W]` and the largest class id seen (-1: none) of the pairs
    `read(item)` returns; `threads`: decode in a thread pool (files)."""

    def one(item: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
        image, mask, image_name, mask_name = read(item)
        mask_size = (mask.width, mask.height) if hasattr(mask, "width") else (mask.shape[1], mask.shape[0])
        if tuple(image.size) != mask_size:
            raise DataError(
                f"mask {mask_name} is {mask_size[0]}x{mask_size[1]} but its image {image_name} is "
                f"{image.size[0]}x{image.size[1]} (width x height); a label map must have its image's size: fix or "
                f"remove the pair"
            )
        labels, top = fmt.decode(mask, mask_name)
        return pil_to_uint8(image, channels, size), resize_labels(labels, size), top

    if not items:
        return torch.zeros(0, channels, *size, dtype=torch.uint8), torch.zeros(0, *size, dtype=torch.int16), -1
    if threads and len(items) > 16:
        with ThreadPoolExecutor(max_workers=min(THREADS, os.cpu_count() or 1)) as pool:
            decoded = list(pool.map(one, items))
    else:
        decoded = [one(item) for item in items]
    images, masks, tops = zip(*decoded, strict=True)
    return torch.stack(images), torch.stack(masks), max(tops)


def read_splits(
    source: SegmentData,
    splits: dict[str, tuple[Sequence[Any], Callable[[Any], Pair]]],
    fmt: MaskFormat,
    class_names: list[str] | None,
    channels: int,
    size: tuple[int, int] | None,
    threads: bool = False,
) -> SegmentSplits:
    """Decode each split's pairs (split -> (items, reader)) into `SegmentSplits`. `size` None: the first training
    image's; `class_names` None: `class_<i>` up to the largest id seen in any split."""
    items, read = splits["train"]
    if not items:
        raise DataError("the training split has no (image, mask) pairs; give some, or check data.train_split")
    if size is None:
        width, height = read(items[0])[0].size
        size = (height, width)
    decoded = {
        split: decode_pairs(items, read, fmt, channels, size, threads) for split, (items, read) in splits.items()
    }
    if class_names is None:
        top = max(t for _, _, t in decoded.values())
        if top + 1 > MAX_CLASSES:
            raise DataError(f"the masks have class ids up to {top}; a label map may have at most {MAX_CLASSES} classes")
        if top < 1:
            raise DataError(
                f"the masks hold {'no class id' if top < 0 else 'only class id 0'} besides the ignored "
                f"(data.ignore_index={fmt.ignore_index}); binary masks saved as 0/255 need their foreground as 1, and "
                f"data.classes names the classes"
            )
        check_ignore_index(fmt, top + 1)
        class_names = [f"class_{i}" for i in range(top + 1)]
    palette = list(fmt.palette) if fmt.palette is not None else default_palette(len(class_names))
    return assemble(
        source,
        {split: (images, masks) for split, (images, masks, _) in decoded.items()},
        class_names,
        palette,
        channels,
    )


def assemble(
    source: SegmentData,
    parts: dict[str, tuple[torch.Tensor, torch.Tensor]],
    class_names: list[str],
    palette: Sequence[tuple[int, int, int]],
    channels: int,
) -> SegmentSplits:
    """`SegmentSplits` from uint8 images `[N, C, H, W]` and int16 masks `[N, H, W]` per split, normalised with the
    source's mean and std, else the training images' (`channel_stats`)."""
    train_images, train_masks = parts["train"]
    mean, std = source.mean, source.std
    if mean is None or std is None:
        per_image = max(1, train_images[0].numel()) if len(train_images) else 1
        step = max(1, -(-len(train_images) * per_image // STATS_VALUES))
        mean, std = channel_stats(train_images[::step], scale=255.0)
    datasets = {split: SegmentDataset(images, masks, mean, std) for split, (images, masks) in parts.items()}
    return SegmentSplits(
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        num_classes=len(class_names),
        image_size=(int(train_images.shape[-2]), int(train_images.shape[-1])),
        in_channels=channels,
        class_names=list(class_names),
        palette=[tuple(int(v) for v in c) for c in palette],
        mean=list(mean),
        std=list(std),
        class_pixels=class_pixels(train_masks, len(class_names)),
    )
