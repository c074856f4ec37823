"""What every image data source shares: the splits it returns, its base class, splitting, decoding and normalising.

Images are decoded the same way everywhere, by `read_image` for a single file (`mode=predict`) and by the data
sources for whole splits: converted to L or RGB, resized to (H, W), scaled to [0, 1] and normalised with
(x - mean) / std. PIL and numpy are imported only inside the functions that need them.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import Dataset, TensorDataset

from attnkit.errors import ConfigError, DataError
from attnkit.train.hf_data import one_line

if TYPE_CHECKING:
    from PIL import Image

# The extensions torchvision's ImageFolder accepts.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
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
    wrapper; augmentation is the task's business (`task.random_shift`, ...), not the data's.
    """

    #: what images are resized to and converted to, when known before loading (subclasses set these)
    image_size: tuple[int, int] | None = None
    in_channels: int | None = None

    def __init__(self, batch_size: int = 64) -> None:
        _check_int("batch_size", batch_size, minimum=1)
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


def read_image(
    path: str | os.PathLike[str],
    *,
    in_channels: int,
    image_size: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
) -> torch.Tensor:
    """An image file as a model input, float32 [C, H, W]: prepared exactly as the data sources prepare theirs.

    Converted to `in_channels` (1 = L, 3 = RGB), resized to `image_size` (H, W), then (x / 255 - mean) / std.
    An unreadable or missing file is a DataError naming it.
    """
    size = (int(image_size[0]), int(image_size[1]))
    with _open_image(os.fspath(path), fix="give a PNG, JPEG or other image file") as image:
        pixels = _pil_to_uint8(image, in_channels, size)
    return _normalize(pixels.unsqueeze(0), mean, std, scale=255.0)[0]


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


def _carve(
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


def _build_splits(
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
        pixels = {split: _decode_all(items, reader_of[split], channels, size) for split, (items, _) in splits.items()}
        if mean is None or std is None:
            mean, std = _channel_stats(pixels["train"], scale=255.0)
        for split, (_, labels) in splits.items():
            datasets[split] = TensorDataset(
                _normalize(pixels[split], mean, std, scale=255.0), torch.tensor(labels, dtype=torch.int64)
            )
    else:
        if mean is None or std is None:
            items = splits["train"][0]
            step = max(1, len(items) // STATS_SAMPLE)
            sample = _decode_all(items[::step][:STATS_SAMPLE], reader_of["train"], channels, size)
            mean, std = _channel_stats(sample, scale=255.0)
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
        pixels = _pil_to_uint8(self.reader(self.items[index]), self.channels, self.size)
        return _normalize(pixels.unsqueeze(0), self.mean, self.std, scale=255.0)[0], self.labels[index]


class _FileReader:
    """Opens an image file; an unreadable one is a DataError naming the file (picklable, for worker
    processes).
    """

    def __call__(self, path: str) -> Image.Image:
        return _open_image(path)


def _open_image(source: Any, name: str | None = None, fix: str = "fix or remove the file") -> Image.Image:
    """A decoded PIL image; an unreadable source is a DataError naming it (`name`, else the source) and `fix`."""
    from PIL import Image

    label = name or str(source)
    try:
        image = Image.open(source)
        image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {label}: {one_line(exc)}; {fix}") from exc
    return image


def _pil_to_uint8(image: Image.Image, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """A PIL image -> uint8 [C, H, W] with `channels` 1 (L) or 3 (RGB), resized to `size` (H, W)."""
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        import numpy as np  # 16-bit or float grey: rescale to 0..255 instead of clipping

        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array * (255.0 / top), 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA")
    if image.mode != mode:
        image = image.convert(mode)
    height, width = size
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return data.view(height, width, channels).permute(2, 0, 1).contiguous()


def _decode_all(
    items: Sequence[Any], reader: Callable[[Any], Image.Image], channels: int, size: tuple[int, int]
) -> torch.Tensor:
    """uint8 [N, C, H, W] for all items; files are decoded by a few threads (PIL releases the GIL)."""

    def one(item: Any) -> torch.Tensor:
        return _pil_to_uint8(reader(item), channels, size)

    if not items:
        return torch.zeros(0, channels, *size, dtype=torch.uint8)
    if isinstance(reader, _FileReader) and len(items) > 64:
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            return torch.stack(list(pool.map(one, items)))
    return torch.stack([one(item) for item in items])


def _channel_stats(images: torch.Tensor, scale: float = 1.0) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of [N, C, H, W] (divided by `scale`); a zero std becomes 1."""
    if images.numel() == 0:
        channels = images.shape[1] if images.dim() == 4 else 1
        return [0.0] * channels, [1.0] * channels
    x = images.transpose(0, 1).reshape(images.shape[1], -1).to(torch.float64) / scale
    mean = x.mean(dim=1)
    std = x.std(dim=1, unbiased=False)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return [float(m) for m in mean], [float(s) for s in std]


def _normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float], scale: float = 1.0) -> torch.Tensor:
    """float32 (images / scale - mean) / std over [N, C, H, W]."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    x = images.to(torch.float32)
    if scale != 1.0:
        x = x / scale
    return ((x - m) / s).contiguous()


def _check_int(key: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"data.{key}={value!r} must be an int >= {minimum}")


def _check_image_args(image_size: int, channels: int, val_fraction: float, test_fraction: float) -> None:
    _check_int("image_size", image_size, minimum=1)
    if channels not in (1, 3):
        raise ConfigError(f"data.channels={channels!r} must be 1 (grey) or 3 (RGB)")
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"data.{key}={value!r} must be in [0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction} leaves no "
            f"training images; lower them"
        )


def _check_norm(
    mean: Sequence[float] | None, std: Sequence[float] | None, channels: int
) -> tuple[list[float] | None, list[float] | None]:
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
