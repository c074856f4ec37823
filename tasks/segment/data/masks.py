"""Label maps: how a mask file encodes classes, decoding it to class ids (checked), and resizing it.

A mask is an index image (mode L, P or I;16: the pixel value is the class id) or, with a palette, a colour image
(RGB: each class has its colour). `MaskFormat` turns either into int class ids `[H, W]` with `IGNORE` for the ignore
index or colour, and refuses a value that is no class in one line naming the file, the value and the fix. Masks
are resized with nearest neighbour at pixel centres, so no label value is invented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from attnkit.errors import ConfigError, DataError
from attnkit.tasks.segment.data.base import IGNORE, MAX_CLASSES

if TYPE_CHECKING:
    from PIL import Image

Colour = tuple[int, int, int]


@dataclass(frozen=True)
class MaskFormat:
    """How label maps encode classes: class ids (`palette` None) or one RGB colour per class, and which pixels are
    ignored (`ignore_index`, or `ignore_color` with a palette). `num_classes` None: as many as the largest id seen.
    `reduce_labels`: id 0 is ignored and every other id moves down by one (ADE20K's convention)."""

    num_classes: int | None = None
    palette: tuple[Colour, ...] | None = None
    ignore_index: int | None = 255
    ignore_color: Colour | None = None
    reduce_labels: bool = False

    def decode(self, mask: Image.Image | np.ndarray, name: str) -> tuple[np.ndarray, int]:
        """Class ids int16 `[H, W]` (`IGNORE` where ignored) of a PIL mask or an array, and the largest id in it
        (-1 if none); a value that is no class is a DataError naming `name`."""
        if self.palette is not None:
            labels = self._from_colours(mask_array(mask, name, colour=True), name)
        else:
            labels = self._from_ids(mask_array(mask, name, colour=False), name)
        labelled = labels[labels != IGNORE]
        return labels.astype(np.int16), int(labelled.max()) if labelled.size else -1

    def _from_ids(self, ids: np.ndarray, name: str) -> np.ndarray:
        ids = ids.astype(np.int32, copy=False)
        ignored = ids == self.ignore_index if self.ignore_index is not None else np.zeros(ids.shape, dtype=bool)
        if self.reduce_labels:
            ignored |= ids == 0
            ids = ids - 1
        top = self.num_classes if self.num_classes is not None else MAX_CLASSES
        bad = ~ignored & ((ids < 0) | (ids >= top))
        if bad.any():
            value = int(ids[bad][0]) + int(self.reduce_labels)
            count = int((ids[bad] == value - int(self.reduce_labels)).sum())
            raise DataError(self._bad_id(name, value, count))
        return np.where(ignored, IGNORE, ids)

    def _bad_id(self, name: str, value: int, count: int) -> str:
        if self.num_classes is None:
            return (
                f"mask {name} has label {value} ({count} pixels), beyond the {MAX_CLASSES} classes a label map may "
                f"have; set data.ignore_index={value} if it marks unlabelled pixels"
            )
        ids = f"ids {int(self.reduce_labels)}..{self.num_classes - 1 + int(self.reduce_labels)}"
        reduced = " after data.reduce_labels=true ignores 0" if self.reduce_labels else ""
        return (
            f"mask {name} has label {value} ({count} pixels), outside the {self.num_classes} classes ({ids}{reduced}) "
            f"and not data.ignore_index={_option(self.ignore_index)}; set data.classes to name every class, or "
            f"data.ignore_index={value} if it marks unlabelled pixels"
        )

    def _from_colours(self, rgb: np.ndarray, name: str) -> np.ndarray:
        assert self.palette is not None
        keys = _colour_keys(rgb)
        known = np.array([_key(c) for c in self.palette], dtype=np.int32)
        order = np.argsort(known)
        slot = np.clip(np.searchsorted(known[order], keys), 0, len(known) - 1)
        found = known[order][slot] == keys
        labels = np.where(found, order[slot], IGNORE)
        unknown = ~found
        if self.ignore_color is not None:
            unknown &= keys != _key(self.ignore_color)
        if unknown.any():
            key = int(keys[unknown][0])
            colour = [(key >> 16) & 255, (key >> 8) & 255, key & 255]
            raise DataError(
                f"mask {name} has colour {colour} ({int((keys == key).sum())} pixels), which is not in data.palette "
                f"and is not data.ignore_color={_option(self.ignore_color)}; add it to "
                f"data.palette (and its class to data.classes), or set data.ignore_color={colour}"
            )
        return labels


def mask_format(
    classes: Sequence[str] | None,
    palette: Sequence[Sequence[int]] | None,
    ignore_index: int | None,
    ignore_color: Sequence[int] | None,
    reduce_labels: bool,
) -> tuple[MaskFormat, list[str] | None]:
    """The mask format and class names (None: named after the largest id seen) from a source's options; a bad
    combination is a one-line ConfigError."""
    names = None
    if classes is not None:
        if isinstance(classes, str) or not all(isinstance(c, str) for c in classes) or not classes:
            raise ConfigError(f"data.classes={classes!r} must be a list of class names, e.g. [background, car, road]")
        names = [str(c) for c in classes]
        repeated = sorted({c for c in names if names.count(c) > 1})
        if repeated:
            raise ConfigError(f"data.classes names {', '.join(repeated)} twice; give each class once")
        if len(names) > MAX_CLASSES:
            raise ConfigError(f"data.classes has {len(names)} classes; at most {MAX_CLASSES}")
    colours = None
    if palette is not None:
        colours = tuple(_colour("palette", c) for c in palette)
        if not colours:
            raise ConfigError("data.palette is empty; give one [r, g, b] per class, or null for index masks")
        if names is not None and len(colours) != len(names):
            raise ConfigError(
                f"data.palette has {len(colours)} colours for {len(names)} classes (data.classes); give one [r, g, b] "
                f"per class, in the order of data.classes"
            )
        twice = next((c for i, c in enumerate(colours) if c in colours[:i]), None)
        if twice is not None:
            raise ConfigError(f"data.palette has colour {list(twice)} twice; each class needs its own colour")
    ignore = None
    if ignore_color is not None:
        if colours is None:
            raise ConfigError(
                "data.ignore_color needs data.palette (colour masks); for index masks set data.ignore_index"
            )
        ignore = _colour("ignore_color", ignore_color)
        if ignore in colours:
            raise ConfigError(
                f"data.ignore_color={list(ignore)} is also the colour of class {colours.index(ignore)} in "
                f"data.palette; choose another colour or remove it from the palette"
            )
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise ConfigError(f"data.ignore_index={ignore_index!r} must be an int (e.g. 255) or null")
    num_classes = len(colours) if colours is not None else len(names) if names is not None else None
    fmt = MaskFormat(num_classes, colours, ignore_index, ignore, bool(reduce_labels))
    if colours is None and num_classes is not None:
        check_ignore_index(fmt, num_classes)
    if names is None and colours is not None:
        names = [f"class_{i}" for i in range(len(colours))]
    return fmt, names


def check_ignore_index(fmt: MaskFormat, num_classes: int) -> None:
    """An ignore index must not be a class id (ids offset by one with reduce_labels)."""
    offset = int(fmt.reduce_labels)
    if fmt.ignore_index is not None and offset <= fmt.ignore_index < num_classes + offset:
        ids = f"{offset}..{num_classes - 1 + offset}"
        raise ConfigError(
            f"data.ignore_index={fmt.ignore_index} is also a class id (classes are ids {ids}); set it to a value that "
            f"is no class (255 is usual) or null"
        )


def mask_array(mask: Image.Image | np.ndarray, name: str, *, colour: bool) -> np.ndarray:
    """A mask as ids `[H, W]` (`colour` False) or RGB uint8 `[H, W, 3]` (`colour` True); a colour mask without a
    palette is a DataError naming `name`."""
    if not isinstance(mask, np.ndarray):
        if colour:
            return np.asarray(mask.convert("RGB"))
        if mask.mode in ("LA", "PA", "La"):  # ids with transparency: the ids
            return np.asarray(mask)[..., 0]
        if mask.mode not in ("1", "L", "P", "I", "F") and not mask.mode.startswith("I;16"):
            return _grey_or_refuse(np.asarray(mask.convert("RGB")), name, mask.mode)
        mask = np.asarray(mask)
    array = np.asarray(mask)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if colour:
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=-1)
        if array.ndim != 3 or array.shape[-1] not in (3, 4):
            raise DataError(f"mask {name} has shape {list(array.shape)}; a colour mask is [height, width, 3] RGB")
        return array[..., :3].astype(np.uint8, copy=False)
    if array.ndim == 3:
        return _grey_or_refuse(array, name, "RGB" if array.shape[-1] == 3 else f"{array.shape[-1]} channels")
    if array.ndim != 2:
        raise DataError(f"mask {name} has shape {list(array.shape)}; a label map is [height, width] class ids")
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise DataError(f"mask {name} holds fractional values; a label map holds integer class ids")
        return array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise DataError(f"mask {name} holds {array.dtype} values; a label map holds integer class ids")
    return array


def _grey_or_refuse(array: np.ndarray, name: str, mode: str) -> np.ndarray:
    """A colour array whose colour channels agree is an index mask saved as colour: its first channel."""
    channels = array[..., :3] if array.shape[-1] >= 3 else array[..., :1]
    if (channels == channels[..., :1]).all():
        return channels[..., 0]
    raise DataError(
        f"mask {name} is a colour image ({mode}) but data.palette is not set; set data.palette=[[r, g, b], ...] (one "
        f"colour per class) or give index masks (mode L or P: the pixel value is the class id)"
    )


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """int16 `[h, w]` -> int16 `[H, W]` by nearest neighbour at pixel centres (the pixel a bilinear resize of the
    image centres on): every value of the result is a value of the input."""
    height, width = size
    h, w = labels.shape
    if (h, w) != (height, width):
        rows = np.minimum(((np.arange(height) + 0.5) * (h / height)).astype(np.int64), h - 1)
        cols = np.minimum(((np.arange(width) + 0.5) * (w / width)).astype(np.int64), w - 1)
        labels = labels[rows[:, None], cols[None, :]]
    return torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int16))


def _colour(key: str, value: Any) -> Colour:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 3:
        raise ConfigError(f"data.{key} colour {value!r} must be [r, g, b], three ints in 0..255")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value):
        raise ConfigError(f"data.{key} colour {list(value)!r} must be [r, g, b], three ints in 0..255")
    return int(value[0]), int(value[1]), int(value[2])


def _option(value: Any) -> str:
    """An option's value as a config writes it (`null`, `[255, 255, 255]`)."""
    return "null" if value is None else str(list(value)) if isinstance(value, tuple) else str(value)


def _key(colour: Colour) -> int:
    return (colour[0] << 16) | (colour[1] << 8) | colour[2]


def _colour_keys(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
