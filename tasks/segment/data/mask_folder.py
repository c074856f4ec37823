"""`data=mask_folder`: your own images and label maps, paired by file name or listed in train.txt / val.txt /
test.txt (CamVid's layout)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated

import attnkit
from attnkit.data.paths import resolve
from attnkit.errors import DataError
from attnkit.ranges import NonNegativeInt, PositiveInt, Range, Rate, Seed
from attnkit.tasks.segment.data.base import SegmentData, SegmentSplits
from attnkit.tasks.segment.data.masks import mask_format
from attnkit.tasks.segment.data.pairs import Pair, check_channels_and_fractions, image_size_option, read_splits
from attnkit.tasks.vit.data.base import carve, check_norm
from attnkit.tasks.vit.data.images import IMAGE_EXTENSIONS, open_image

Byte = Annotated[int, Range(0, 255)]
# split -> the names its folder or list file may have, most usual first
SPLIT_NAMES = {"train": ("train",), "val": ("val", "validation", "valid"), "test": ("test",)}


@attnkit.register("data", "mask_folder")
class MaskFolderData(SegmentData):
    """Your own images and label maps (masks), in one of three layouts under `path`:

    - list files `train.txt` (and `val.txt`, `test.txt`): lines `image_path mask_path`, relative to `path`
      (CamVid's layout); taken first when `train.txt` exists;
    - split folders `train/<images>/` + `train/<masks>/` (and `val/` or `validation/`, `test/`);
    - one pool `<images>/` + `<masks>/`, split at random (`split_seed`) into train, val and test.

    In folders a mask has its image's name (any image extension; `mask_suffix` after the stem: `a.jpg` ->
    `a_mask.png`). A missing val or test split is carved from train (`val_fraction`, `test_fraction` of it); with
    `test_fraction: 0` and no test split, the validation split is also the test split (scored at the end).
    Masks are index images (mode L or P: the pixel value is the class id; `ignore_index` = not scored), or, with
    `palette` (one [r, g, b] per class), colour images (`ignore_color` = not scored). `classes` names the classes;
    null: `class_<i>` up to the largest id in the masks. `reduce_labels`: id 0 is ignored and the others move down by
    one (ADE20K). Images are converted to `channels` and resized bilinearly, masks with nearest neighbour, to
    `image_size` (an int: square; [height, width]; null: the first training image's size). Everything is decoded
    into memory once; a relative `path` is read from the launch directory.
    """

    def __init__(
        self,
        batch_size: PositiveInt = 16,
        path: str | None = None,
        images: str = "images",
        masks: str = "masks",
        mask_suffix: str = "",
        classes: list[str] | None = None,
        palette: list[list[Byte]] | None = None,
        ignore_index: NonNegativeInt | None = 255,
        ignore_color: list[Byte] | None = None,
        reduce_labels: bool = False,
        image_size: PositiveInt | list[PositiveInt] | None = None,
        channels: PositiveInt = 3,
        val_fraction: Rate = 0.1,
        test_fraction: Rate = 0.1,
        split_seed: Seed = 0,
        mean: list[float] | None = None,
        std: list[float] | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size)
        check_channels_and_fractions(channels, val_fraction, test_fraction)
        self.path = None if path is None else resolve(path)
        self.images, self.masks, self.mask_suffix = images, masks, mask_suffix
        self.format, self.class_names = mask_format(classes, palette, ignore_index, ignore_color, reduce_labels)
        self.image_size = image_size_option(image_size)
        self.in_channels = channels
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.mean, self.std = check_norm(mean, std, channels)

    def _load(self) -> SegmentSplits:
        root = self.path
        if root is None:
            raise DataError("data source mask_folder needs a directory: set data.path=/path/to/data")
        if not os.path.isdir(root):
            raise DataError(f"mask folder {root} does not exist; set data.path=/path/to/data")
        if os.path.isfile(os.path.join(root, "train.txt")):
            parts = {split: _read_list(root, file) for split, file in _split_entries(root, ".txt").items()}
        else:
            folders = {
                split: folder
                for split, folder in _split_entries(root, "").items()
                if os.path.isdir(os.path.join(folder, self.images))
            }
            if "train" not in folders:
                folders = {"train": root}
            parts = {split: self._pair_folder(folder) for split, folder in folders.items()}
        zeros = {split: (pairs, [0] * len(pairs)) for split, pairs in parts.items()}
        splits = carve(zeros, self.val_fraction, self.test_fraction, self.split_seed)
        if not splits["test"][0] and splits["val"][0]:  # test_fraction 0 and no test split: score the validation one
            splits["test"] = splits["val"]
        return read_splits(
            self,
            {split: (pairs, _read_pair) for split, (pairs, _) in splits.items()},
            self.format,
            self.class_names,
            self.in_channels,
            self.image_size,
            threads=True,
        )

    def _pair_folder(self, folder: str) -> list[tuple[str, str]]:
        """(image, mask) paths of `folder/<images>` and `folder/<masks>`, paired by name, sorted."""
        image_dir, mask_dir = os.path.join(folder, self.images), os.path.join(folder, self.masks)
        for where, key in ((image_dir, "images"), (mask_dir, "masks")):
            if not os.path.isdir(where):
                raise DataError(
                    f"folder {where} does not exist; lay the data out as {folder}/{self.images}/<name>.png + "
                    f"{folder}/{self.masks}/<name>.png (or train/, val/, test/ folders of that form, or train.txt "
                    f"lists), or set data.{key}=<folder name>"
                )
        suffix = self.mask_suffix
        same = os.path.realpath(image_dir) == os.path.realpath(mask_dir)
        images = _by_stem(image_dir, keep=lambda stem: not (same and suffix and stem.endswith(suffix)))
        masks = _by_stem(mask_dir, keep=lambda stem: not same or bool(suffix and stem.endswith(suffix)))
        if not images:
            raise DataError(f"no images found in {image_dir} (extensions: {', '.join(IMAGE_EXTENSIONS)})")
        wanted = {stem + suffix for stem in images}
        for stem, path in masks.items():
            if stem not in wanted:
                raise DataError(
                    f"mask {path} has no image: looked for {os.path.join(image_dir, stem.removesuffix(suffix))}.* "
                    f"(data.mask_suffix={suffix!r}); add the image or remove the mask"
                )
        pairs = []
        for stem, path in sorted(images.items()):
            if stem + suffix not in masks:
                raise DataError(
                    f"image {path} has no mask: looked for {os.path.join(mask_dir, stem + suffix)}.* (any image "
                    f"extension; data.mask_suffix={suffix!r}); add the mask or remove the image"
                )
            pairs.append((path, masks[stem + suffix]))
        return pairs


def _split_entries(root: str, ext: str) -> dict[str, str]:
    """split -> `root/<name><ext>` of the first name of each split that exists (files or folders)."""
    found = {}
    for split, names in SPLIT_NAMES.items():
        for name in names:
            candidate = os.path.join(root, name + ext)
            if os.path.exists(candidate):
                found[split] = candidate
                break
    return found


def _by_stem(folder: str, keep: Callable[[str], bool]) -> dict[str, str]:
    """Image files under `folder` (recursively) by their path relative to it without extension."""
    files: dict[str, str] = {}
    for where, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            path = os.path.join(where, name)
            stem = os.path.splitext(os.path.relpath(path, folder))[0]
            if not keep(stem):
                continue
            if stem in files:
                raise DataError(f"{files[stem]} and {path} have the same name; keep one of them")
            files[stem] = path
    return files


def _read_list(root: str, file: str) -> list[tuple[str, str]]:
    """(image, mask) paths of a list file: lines `image_path mask_path`, relative to `root`; blank lines and `#`
    comments skipped."""
    pairs = []
    with open(file, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) != 2:
                raise DataError(
                    f"line {number} of {file} has {len(fields)} fields; each line is 'image_path mask_path' "
                    f"(relative to {root})"
                )
            image, mask = (os.path.join(root, f) for f in fields)
            if not os.path.isfile(image):
                raise DataError(f"image {image} (line {number} of {file}) does not exist; fix the line or add the file")
            if not os.path.isfile(mask):
                raise DataError(
                    f"image {image} has no mask: {mask} (line {number} of {file}) does not exist; add the mask or "
                    f"fix the line"
                )
            pairs.append((image, mask))
    if not pairs:
        raise DataError(f"list file {file} names no pairs; add lines 'image_path mask_path' (relative to {root})")
    return pairs


def _read_pair(item: tuple[str, str]) -> Pair:
    image, mask = item
    return open_image(image), open_image(mask), image, mask
