"""What every image data source shares: the splits it returns, its base class, its option checks, and splitting.

A source lists its images (items and labels per split), carves a missing val or test split from train
(stratified by class), and `build_splits` decodes them once into tensors or wraps them for decoding per item,
normalised with the training split's statistics; decoding itself is `images.py`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import Dataset, TensorDataset

from attnkit.data.checks import check_fractions, check_int
from attnkit.errors import ConfigError
from attnkit.tasks.vit.data.images import channel_stats, decode_all, normalize, pil_to_uint8

if TYPE_CHECKING:
    from PIL import Image

# Up to this many images, `in_memory=None` decodes everything once into tensors; above it, per item.
IN_MEMORY_LIMIT = 50_000
# Lazily loaded data computes its normalisation from at most this many training images (evenly spaced).
STATS_SAMPLE = 1_000


@dataclass
class ImageSplits:
    """The three splits of an image-classification data set and what a model and a predictor need to know."""

    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    image_size: tuple[int, int]
    in_channels: int
    class_names: list[str]
    mean: list[float]
    std: list[float]


class ImageData:
    """Base class of image-classification data sources.

    Subclasses implement `_load()`; `load()` caches its result. `batch_size` is stored for the training
    wrapper; augmentation is the task's business (`task.random_shift`, ...), not the data's. `mean` and `std`, when
    set before `load()` (a checkpoint's, say), normalise every split; otherwise they come from the training split.
    """

    #: what images are resized to and converted to, when known before loading (subclasses set these)
    image_size: tuple[int, int] | None = None
    in_channels: int | None = None

    def __init__(self, batch_size: int = 64) -> None:
        check_int("batch_size", batch_size, minimum=1)
        self.batch_size = batch_size
        self.mean: list[float] | None = None
        self.std: list[float] | None = None
        self._splits: ImageSplits | None = None

    def load(self) -> ImageSplits:
        """The splits, loaded on the first call and cached."""
        if self._splits is None:
            splits = self._load()
            self.mean, self.std = list(splits.mean), list(splits.std)
            self.image_size, self.in_channels = tuple(splits.image_size), splits.in_channels
            self._splits = splits
        return self._splits

    def _load(self) -> ImageSplits:
        raise NotImplementedError(f"{type(self).__name__} must implement _load()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_size={self.batch_size})"


def stratified_split(labels: Sequence[int], n_take: int, seed: int) -> tuple[list[int], list[int]]:
    """Indices `(kept, taken)`: `n_take` indices taken in proportion to each class, the rest kept, both
    sorted.

    Per-class quotas follow the largest-remainder method, so the total is exact; each class keeps at least one
    member when that is possible. Deterministic for a given `seed`.
    """
    n = len(labels)
    if not 0 <= n_take <= n:
        raise ConfigError(f"cannot take {n_take} of {n} images for a split; lower the split size")
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(i)
    rng = random.Random(seed)
    classes = sorted(by_class)
    for c in classes:
        rng.shuffle(by_class[c])
    exact = {c: n_take * len(by_class[c]) / n if n else 0.0 for c in classes}
    take = {c: min(int(exact[c]), max(len(by_class[c]) - 1, 0)) for c in classes}
    remaining = n_take - sum(take.values())
    order = sorted(classes, key=lambda c: (-(exact[c] - int(exact[c])), c))
    for keep_one in (True, False):
        while remaining > 0:
            progressed = False
            for c in order:
                if remaining > 0 and take[c] < len(by_class[c]) - int(keep_one):
                    take[c] += 1
                    remaining -= 1
                    progressed = True
            if not progressed:
                break
    taken = sorted(i for c in classes for i in by_class[c][: take[c]])
    chosen = set(taken)
    kept = [i for i in range(n) if i not in chosen]
    return kept, taken


def carve(
    parts: dict[str, tuple[list[Any], list[int]]], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, tuple[list[Any], list[int]]]:
    """Fill in a missing val or test split from train (stratified), as fractions of the train size."""
    items, labels = parts["train"]
    n = len(items)
    out = dict(parts)
    missing = [(s, f) for s, f in (("test", test_fraction), ("val", val_fraction)) if s not in parts]
    pool = list(range(n))
    for offset, (split, fraction) in enumerate(missing):
        want = min(max(1, round(fraction * n)), len(pool) - 1) if fraction > 0 else 0
        kept, taken = stratified_split([labels[i] for i in pool], max(want, 0), seed + offset)
        out[split] = ([items[pool[i]] for i in taken], [labels[pool[i]] for i in taken])
        pool = [pool[i] for i in kept]
    out["train"] = ([items[i] for i in pool], [labels[i] for i in pool])
    return out


def build_splits(
    source: ImageData,
    splits: dict[str, tuple[list[Any], list[int]]],
    readers: Callable[[Any], Image.Image] | dict[str, Callable[[Any], Image.Image]],
    classes: list[str],
) -> ImageSplits:
    """Decode (in memory) or wrap (lazily) the images of each split, normalised with train's or the given
    stats.
    """
    assert source.image_size is not None and source.in_channels is not None
    channels, size = source.in_channels, source.image_size
    reader_of = readers if isinstance(readers, dict) else dict.fromkeys(splits, readers)
    total = sum(len(items) for items, _ in splits.values())
    in_memory = getattr(source, "in_memory", None)
    in_memory = total <= IN_MEMORY_LIMIT if in_memory is None else in_memory
    mean, std = source.mean, source.std
    datasets: dict[str, Dataset] = {}
    if in_memory:
        pixels = {split: decode_all(items, reader_of[split], channels, size) for split, (items, _) in splits.items()}
        if mean is None or std is None:
            mean, std = channel_stats(pixels["train"], scale=255.0)
        for split, (_, labels) in splits.items():
            datasets[split] = TensorDataset(
                normalize(pixels[split], mean, std, scale=255.0), torch.tensor(labels, dtype=torch.int64)
            )
    else:
        if mean is None or std is None:
            items = splits["train"][0]
            step = max(1, len(items) // STATS_SAMPLE)
            sample = decode_all(items[::step][:STATS_SAMPLE], reader_of["train"], channels, size)
            mean, std = channel_stats(sample, scale=255.0)
        for split, (items, labels) in splits.items():
            datasets[split] = LazyImageDataset(items, labels, reader_of[split], channels, size, mean, std)
    return ImageSplits(
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        num_classes=len(classes),
        image_size=tuple(size),
        in_channels=channels,
        class_names=list(classes),
        mean=list(mean),
        std=list(std),
    )


class LazyImageDataset(Dataset):
    """Images decoded per item: `reader(item)` -> PIL image, converted, resized, normalised; label an int."""

    def __init__(
        self,
        items: Sequence[Any],
        labels: Sequence[int],
        reader: Callable[[Any], Image.Image],
        channels: int,
        size: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        self.items, self.labels, self.reader = list(items), list(labels), reader
        self.channels, self.size = channels, tuple(size)
        self.mean, self.std = list(mean), list(std)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        pixels = pil_to_uint8(self.reader(self.items[index]), self.channels, self.size)
        return normalize(pixels.unsqueeze(0), self.mean, self.std, scale=255.0)[0], self.labels[index]


def check_image_args(image_size: int, channels: int, val_fraction: float, test_fraction: float) -> None:
    """The options every image source with its own images has: size, channels and the fractions to carve."""
    check_int("image_size", image_size, minimum=1)
    if channels not in (1, 3):
        raise ConfigError(f"data.channels={channels!r} must be 1 (grey) or 3 (RGB)")
    check_fractions(val_fraction, test_fraction, items="images")


def check_norm(
    mean: Sequence[float] | None, std: Sequence[float] | None, channels: int
) -> tuple[list[float] | None, list[float] | None]:
    """`data.mean` and `data.std` as one float per channel (one value is repeated), or (None, None) if unset."""
    if (mean is None) != (std is None):
        raise ConfigError("give both data.mean and data.std, or neither (then they are computed from train)")
    if mean is None or std is None:
        return None, None
    mean, std = [float(v) for v in mean], [float(v) for v in std]
    if len(mean) == 1 and channels > 1:
        mean = mean * channels
    if len(std) == 1 and channels > 1:
        std = std * channels
    if len(mean) != channels or len(std) != channels:
        raise ConfigError(f"data.mean and data.std need {channels} values (one per channel); got {mean} and {std}")
    if any(s <= 0 for s in std):
        raise ConfigError(f"data.std={std} must be positive")
    return mean, std
