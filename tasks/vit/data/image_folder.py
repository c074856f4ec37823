"""`data=image_folder`: your own images in a torchvision-style tree `root/<class>/<image>`."""

from __future__ import annotations

import os
from collections.abc import Mapping

import attnkit
from attnkit.data.paths import resolve
from attnkit.errors import DataError
from attnkit.ranges import PositiveInt, Rate, Seed
from attnkit.tasks.vit.data.base import ImageData, ImageSplits, build_splits, carve, check_image_args, check_norm
from attnkit.tasks.vit.data.images import IMAGE_EXTENSIONS, FileReader


@attnkit.register("data", "image_folder")
class ImageFolderData(ImageData):
    """Your own images in a torchvision ImageFolder tree: `path/<class>/<image>` (png, jpg, bmp, tif, webp).

    If `path` has a `train/` folder and a `val/` (or `validation/`) and/or `test/` folder, those are the
    splits and the classes are the folders of `train/`; a missing validation or test split is carved from
    train. Otherwise the one tree is split, stratified by class and seeded by `split_seed`: `val_fraction` for
    validation, `test_fraction` for test. Images are converted to `channels` (1 = grey, 3 = RGB) and resized
    to `image_size` x `image_size`. Up to 50,000 images are decoded once into memory (`in_memory` forces
    either way). Normalisation uses `mean` and `std` when given, else the statistics of the training split. A
    relative `path` is read from the launch directory.
    """

    def __init__(
        self,
        batch_size: PositiveInt = 64,
        path: str | None = None,
        image_size: PositiveInt = 32,
        channels: PositiveInt = 3,
        val_fraction: Rate = 0.1,
        test_fraction: Rate = 0.2,
        split_seed: Seed = 0,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        in_memory: bool | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size)
        check_image_args(image_size, channels, val_fraction, test_fraction)
        self.path = None if path is None else resolve(path)
        self.image_size = (image_size, image_size)
        self.in_channels = channels
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.mean, self.std = check_norm(mean, std, channels)
        self.in_memory = in_memory

    def _load(self) -> ImageSplits:
        root = self.path
        if root is None:
            raise DataError("data source image_folder needs a directory: set data.path=/path/to/images")
        if not os.path.isdir(root):
            raise DataError(f"image folder {root} does not exist; set data.path=/path/to/images (root/<class>/*.png)")
        layout = _split_folders(root)
        if layout:
            train_root = layout["train"]
            classes = _class_dirs(train_root)
            if not classes:
                raise DataError(f"{train_root} has no class folders; expected {train_root}/<class>/<image>.png")
            index = {name: i for i, name in enumerate(classes)}
            parts = {split: _scan(folder, classes=index) for split, folder in layout.items()}
        else:
            classes = _class_dirs(root)
            if not classes:
                raise DataError(
                    f"{root} has no class folders; expected {root}/<class>/<image>.png "
                    f"(or train/ and val/ or test/ subfolders of that form)"
                )
            parts = {"train": _scan(root, classes={name: i for i, name in enumerate(classes)})}
        if not parts["train"][0]:
            where = layout.get("train", root) if layout else root
            raise DataError(f"no images found under {where} (extensions: {', '.join(IMAGE_EXTENSIONS)})")
        splits = carve(parts, self.val_fraction, self.test_fraction, self.split_seed)
        reader = FileReader()
        return build_splits(self, splits, reader, classes)


def _split_folders(root: str) -> dict[str, str]:
    """{"train": ..., "val": ..., "test": ...} for the split subfolders present, or {} for a single tree.

    `root` has split folders when it has `train/` and either a `val/` (`validation/`, `valid/`) or `test/`
    folder, or no folder besides `train/`; otherwise `train` is just a class of a single tree.
    """
    if not os.path.isdir(os.path.join(root, "train")):
        return {}
    found = {"train": os.path.join(root, "train")}
    for split, names in (("val", ("val", "validation", "valid")), ("test", ("test",))):
        for name in names:
            if os.path.isdir(os.path.join(root, name)):
                found[split] = os.path.join(root, name)
                break
    return found if len(found) > 1 or _class_dirs(root) == ["train"] else {}


def _class_dirs(root: str) -> list[str]:
    return sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))


def _scan(root: str, classes: Mapping[str, int]) -> tuple[list[str], list[int]]:
    """Image files and labels of an ImageFolder tree, in a stable order; class folders must be known."""
    files: list[str] = []
    labels: list[int] = []
    for name in _class_dirs(root):
        if name not in classes:
            raise DataError(
                f"class folder {os.path.join(root, name)} has no counterpart in the training split; "
                f"add it to train/ or remove it"
            )
        for folder, dirs, names in sorted(os.walk(os.path.join(root, name), followlinks=True)):
            dirs.sort()
            for file in sorted(names):
                if file.lower().endswith(IMAGE_EXTENSIONS) and not file.startswith("."):
                    files.append(os.path.join(folder, file))
                    labels.append(classes[name])
    return files, labels
