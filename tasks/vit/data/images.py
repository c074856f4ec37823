"""Decoding and normalising images, the same way for a whole split and for a single file (`read_image`).

An image is converted to L or RGB, resized to (H, W) as uint8 [C, H, W], then scaled to [0, 1] and normalised
with (x - mean) / std. PIL is imported only inside the functions that need it (the CLI imports this at start-up).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from attnkit.data.messages import one_line
from attnkit.errors import DataError

if TYPE_CHECKING:
    from PIL import Image

# The extensions torchvision's ImageFolder accepts.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


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
    with open_image(os.fspath(path), fix="give a PNG, JPEG or other image file") as image:
        pixels = pil_to_uint8(image, in_channels, size)
    return normalize(pixels.unsqueeze(0), mean, std, scale=255.0)[0]


class FileReader:
    """Opens an image file; an unreadable one is a DataError naming the file (picklable, for worker
    processes).
    """

    def __call__(self, path: str) -> Image.Image:
        return open_image(path)


def open_image(source: Any, name: str | None = None, fix: str = "fix or remove the file") -> Image.Image:
    """A decoded PIL image; an unreadable source is a DataError naming it (`name`, else the source) and `fix`."""
    from PIL import Image

    label = name or str(source)
    try:
        image = Image.open(source)
        image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {label}: {one_line(exc)}; {fix}") from exc
    return image


def pil_to_uint8(image: Image.Image, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """A PIL image -> uint8 [C, H, W] with `channels` 1 (L) or 3 (RGB), resized to `size` (H, W)."""
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
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


def decode_all(
    items: Sequence[Any], reader: Callable[[Any], Image.Image], channels: int, size: tuple[int, int]
) -> torch.Tensor:
    """uint8 [N, C, H, W] for all items; files are decoded by a few threads (PIL releases the GIL)."""

    def one(item: Any) -> torch.Tensor:
        return pil_to_uint8(reader(item), channels, size)

    if not items:
        return torch.zeros(0, channels, *size, dtype=torch.uint8)
    if isinstance(reader, FileReader) and len(items) > 64:
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            return torch.stack(list(pool.map(one, items)))
    return torch.stack([one(item) for item in items])


def channel_stats(images: torch.Tensor, scale: float = 1.0) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of [N, C, H, W] (divided by `scale`); a zero std becomes 1."""
    if images.numel() == 0:
        channels = images.shape[1] if images.dim() == 4 else 1
        return [0.0] * channels, [1.0] * channels
    x = images.transpose(0, 1).reshape(images.shape[1], -1).to(torch.float64) / scale
    mean = x.mean(dim=1)
    std = x.std(dim=1, unbiased=False)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return [float(m) for m in mean], [float(s) for s in std]


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float], scale: float = 1.0) -> torch.Tensor:
    """float32 (images / scale - mean) / std over [N, C, H, W]."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    x = images.to(torch.float32)
    if scale != 1.0:
        x = x / scale
    return ((x - m) / s).contiguous()
