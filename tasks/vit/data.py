"""Image-classification data sources for the `vit` task, registered as `data=<name>`.

Sources (constructor arguments are the config keys, e.g. `data=fashion_mnist data.limit_train=5000`):

- `digits` (default): scikit-learn's 1,797 handwritten digits, 8x8, one channel, offline.
- `fashion_mnist`: the standard Fashion-MNIST IDX files from a directory (Debian: dataset-fashion-mnist).
- `image_folder`: a torchvision-style tree `root/<class>/<image>`, with or without train/val/test subfolders.
- `hf`: a Hugging Face dataset, from the hub or from local files (`imagefolder`, `parquet`, `json`, ...).

Every source returns an `ImageSplits` from `load()`: train/val/test datasets whose items are `(image float32
[C, H, W] normalised with (x - mean) / std, label int64)`, plus the metadata a model and a predictor need.
Small data is decoded once into tensors (cheap batches, no worker processes needed); a large image tree or hub
dataset is decoded lazily per item. Heavy libraries (scikit-learn, numpy, PIL, torchvision, datasets) are
imported only inside the methods that need them, so importing this module costs nothing at CLI start-up.
"""

from __future__ import annotations

import gzip
import math
import os
import random
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import Dataset, TensorDataset

import attnkit
from attnkit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "DigitsData",
    "FashionMNISTData",
    "HFImageData",
    "ImageData",
    "ImageFolderData",
    "ImageSplits",
    "stratified_split",
]

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# The extensions torchvision's ImageFolder accepts.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# data_files extension -> Hugging Face builder, when `dataset` is not given
BUILDERS = (
    (".parquet", "parquet"),
    (".jsonl", "json"),
    (".json", "json"),
    (".csv", "csv"),
    (".arrow", "arrow"),
)
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

    Subclasses implement `_load()`; `load()` caches its result. `batch_size` and `random_shift` (pixels of
    random translation applied to training batches) are stored for the training wrapper, which applies them.
    """

    #: what `preprocess` resizes to and converts to, when known before loading (subclasses set these)
    image_size: tuple[int, int] | None = None
    in_channels: int | None = None

    def __init__(self, batch_size: int = 64, random_shift: int = 1) -> None:
        _check_int("batch_size", batch_size, minimum=1)
        _check_int("random_shift", random_shift, minimum=0)
        self.batch_size = batch_size
        self.random_shift = random_shift
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

    def preprocess(self, image: Image.Image | str | os.PathLike[str]) -> torch.Tensor:
        """A user's image (a PIL image or a file path) -> float32 [C, H, W], normalised like the data.

        The image is converted to L or RGB by `in_channels` and resized to `image_size`. Normalisation uses
        `mean` and `std` when they are known (given, or set by an earlier `load()`, or assigned by a caller
        restoring them from a checkpoint); otherwise the data is loaded once to compute them.
        """
        if isinstance(image, (str, os.PathLike)):
            image = _open_image(os.fspath(image))
        if self.mean is None or self.std is None or self.image_size is None or self.in_channels is None:
            self.load()
        assert self.image_size is not None and self.in_channels is not None
        pixels = _pil_to_uint8(image, self.in_channels, self.image_size)
        return _normalize(pixels.unsqueeze(0), self.mean, self.std, scale=255.0)[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_size={self.batch_size}, random_shift={self.random_shift})"


# ---------------------------------------------------------------------------------------------------- digits


@attnkit.register("data", "digits")
class DigitsData(ImageData):
    """scikit-learn's handwritten digits: 1,797 8x8 grey images, 10 classes, offline (the default).

    Split (fixed, stratified by class, seeded by `split_seed`): `test_size` images (360, 20%) for test, then
    `val_size` (180) of the rest for validation, and the remaining 1,257 for training. Pixel values 0..16 are
    scaled to [0, 1], then normalised with the mean and std of the training split.
    """

    image_size = (8, 8)
    in_channels = 1

    def __init__(
        self,
        batch_size: int = 64,
        random_shift: int = 1,
        test_size: int = 360,
        val_size: int = 180,
        split_seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, random_shift=random_shift)
        _check_int("test_size", test_size, minimum=1)
        _check_int("val_size", val_size, minimum=1)
        if test_size + val_size >= 1797:
            raise ConfigError(
                f"data.test_size + data.val_size = {test_size + val_size} leaves no training images "
                f"out of 1797; lower them (defaults 360 and 180)"
            )
        self.test_size = test_size
        self.val_size = val_size
        self.split_seed = split_seed

    def _load(self) -> ImageSplits:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = (
            torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        )  # [N, 1, 8, 8] in [0, 1]
        labels = torch.as_tensor(digits.target, dtype=torch.int64)
        rest, test = stratified_split(labels.tolist(), self.test_size, self.split_seed)
        keep, val = stratified_split(labels[rest].tolist(), self.val_size, self.split_seed + 1)
        train = [rest[i] for i in keep]
        val = [rest[i] for i in val]
        mean, std = _channel_stats(images[train])
        images = _normalize(images, mean, std)
        return ImageSplits(
            train=TensorDataset(images[train], labels[train]),
            val=TensorDataset(images[val], labels[val]),
            test=TensorDataset(images[test], labels[test]),
            num_classes=10,
            image_size=(8, 8),
            in_channels=1,
            class_names=[str(d) for d in range(10)],
            mean=mean,
            std=std,
        )


# --------------------------------------------------------------------------------------------- fashion-mnist


@attnkit.register("data", "fashion_mnist")
class FashionMNISTData(ImageData):
    """Fashion-MNIST: 28x28 grey clothing images, 10 classes, read from the standard IDX files in `path`.

    The files may be gzipped or not (`train-images-idx3-ubyte[.gz]`, ...), directly in `path` or in
    torchvision's `path/FashionMNIST/raw`. Validation is the last `val_size` images of the official training
    set, test the official 10,000; `limit_train` keeps only the first N training images (deterministic) for
    quick runs. Normalisation uses the mean and std of the whole training split (before `limit_train`), so it
    does not depend on the limit. `download=true` fetches missing files with torchvision (needs a network).
    """

    image_size = (28, 28)
    in_channels = 1

    def __init__(
        self,
        batch_size: int = 64,
        random_shift: int = 1,
        path: str = "/usr/share/datasets/fashion-mnist",
        val_size: int = 5000,
        limit_train: int | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(batch_size=batch_size, random_shift=random_shift)
        _check_int("val_size", val_size, minimum=0)
        if limit_train is not None:
            _check_int("limit_train", limit_train, minimum=1)
        self.path = _resolve(path)
        self.val_size = val_size
        self.limit_train = limit_train
        self.download = download

    def _find_files(self) -> dict[str, str] | None:
        for folder in (self.path, os.path.join(self.path, "FashionMNIST", "raw")):
            found = {}
            for key, base in FASHION_MNIST_FILES.items():
                for candidate in (base + ".gz", base):
                    if os.path.isfile(os.path.join(folder, candidate)):
                        found[key] = os.path.join(folder, candidate)
                        break
            if len(found) == len(FASHION_MNIST_FILES):
                return found
        return None

    def _load(self) -> ImageSplits:
        files = self._find_files()
        if files is None and self.download:
            self._download()
            files = self._find_files()
        if files is None:
            need = ", ".join(base + ".gz" for base in FASHION_MNIST_FILES.values())
            raise DataError(
                f"Fashion-MNIST files not found in {self.path} (need {need}); install Debian's "
                f"dataset-fashion-mnist, set data.path=/dir/with/the/files, or data.download=true when online"
            )
        train_x, train_y = read_idx(files["train_images"]), read_idx(files["train_labels"])
        test_x, test_y = read_idx(files["test_images"]), read_idx(files["test_labels"])
        for images, labels, split in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
            if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
                raise DataError(
                    f"Fashion-MNIST {split} files in {os.path.dirname(files['train_images'])} do not match: "
                    f"images {tuple(images.shape)}, labels {tuple(labels.shape)}; re-download them"
                )
        n_train = len(train_x) - self.val_size
        if n_train < 1:
            raise ConfigError(
                f"data.val_size={self.val_size} leaves no training images out of {len(train_x)}; lower it"
            )
        train_x = train_x.unsqueeze(1)
        test_x = test_x.unsqueeze(1)
        mean, std = _channel_stats(train_x[:n_train], scale=255.0)
        limit = n_train if self.limit_train is None else min(self.limit_train, n_train)

        def tensors(images: torch.Tensor, labels: torch.Tensor) -> TensorDataset:
            return TensorDataset(_normalize(images, mean, std, scale=255.0), labels.to(torch.int64))

        height, width = int(train_x.shape[-2]), int(train_x.shape[-1])
        return ImageSplits(
            train=tensors(train_x[:limit], train_y[:limit]),
            val=tensors(train_x[n_train:], train_y[n_train:]),
            test=tensors(test_x, test_y),
            num_classes=len(FASHION_MNIST_CLASSES),
            image_size=(height, width),
            in_channels=1,
            class_names=list(FASHION_MNIST_CLASSES),
            mean=mean,
            std=std,
        )

    def _download(self) -> None:
        try:
            from torchvision.datasets import FashionMNIST

            for train in (True, False):
                FashionMNIST(root=self.path, train=train, download=True)
        except Exception as exc:  # no network, no write permission, a changed mirror ...
            raise DataError(
                f"could not download Fashion-MNIST into {self.path}: {_one_line(exc)}; download the IDX "
                f"files by hand or install Debian's dataset-fashion-mnist and set data.path=..."
            ) from exc


def read_idx(path: str) -> torch.Tensor:
    """An IDX file (the MNIST format; gzipped when the name ends in .gz) as a tensor of its stored type and
    shape.
    """
    import numpy as np

    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {_one_line(exc)}; re-download the file") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in dtypes:
        raise DataError(f"{path} is not an IDX file (bad magic number); re-download the file")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(dtypes[data[2]])
    count = math.prod(shape)
    if len(data) < header + count * dtype.itemsize:
        raise DataError(f"{path} is truncated: expected {shape} values; re-download the file")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


# ---------------------------------------------------------------------------------------------- image folder


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
        batch_size: int = 64,
        random_shift: int = 1,
        path: str | None = None,
        image_size: int = 32,
        channels: int = 3,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        in_memory: bool | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, random_shift=random_shift)
        _check_image_args(image_size, channels, val_fraction, test_fraction)
        self.path = None if path is None else _resolve(path)
        self.image_size = (image_size, image_size)
        self.in_channels = channels
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.mean, self.std = _check_norm(mean, std, channels)
        self.in_memory = in_memory

    def _load(self) -> ImageSplits:
        root = self.path
        if root is None:
            raise DataError("data source image_folder needs a directory: set data.path=/path/to/images")
        if not os.path.isdir(root):
            raise DataError(
                f"image folder {root} does not exist; set data.path=/path/to/images (root/<class>/*.png)"
            )
        layout = _split_folders(root)
        if layout:
            train_root = layout["train"]
            classes = _class_dirs(train_root)
            if not classes:
                raise DataError(
                    f"{train_root} has no class folders; expected {train_root}/<class>/<image>.png"
                )
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
        splits = _carve(parts, self.val_fraction, self.test_fraction, self.split_seed)
        reader = _FileReader()
        return _build_splits(self, splits, reader, classes)


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


# ---------------------------------------------------------------------------------------------- hugging face


@attnkit.register("data", "hf")
class HFImageData(ImageData):
    """A Hugging Face image dataset, from the hub (`dataset=cifar10`) or from local files (`data_dir=...`).

    `dataset` is a hub dataset or a builder (`imagefolder`, `parquet`, `json`, `csv`, `arrow`); the key is
    not `name`, which names the data source itself (`data=hf`). With only `data_dir` it defaults to
    `imagefolder`, with only `data_files` it follows their extension. `image_column` and `label_column` name
    the columns; class names come from a ClassLabel feature, else from the sorted distinct labels. Splits
    `train_split`, `val_split` and `test_split` are used when present; missing ones are carved from train
    (`val_fraction`, `test_fraction`, stratified, `split_seed`). Images are converted to `channels` and
    resized to `image_size`. Hub datasets need a network (or their local cache with HF_HUB_OFFLINE=1);
    `cache_dir` overrides the Hugging Face cache directory.
    """

    def __init__(
        self,
        batch_size: int = 64,
        random_shift: int = 1,
        dataset: str | None = None,
        config_name: str | None = None,
        data_dir: str | None = None,
        data_files: str | list[str] | dict[str, str] | None = None,
        image_column: str = "image",
        label_column: str = "label",
        train_split: str = "train",
        val_split: str | None = "validation",
        test_split: str | None = "test",
        image_size: int = 32,
        channels: int = 3,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        in_memory: bool | None = None,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, random_shift=random_shift)
        _check_image_args(image_size, channels, val_fraction, test_fraction)
        if data_files is not None and not isinstance(data_files, (str, Sequence, Mapping)):
            raise ConfigError(
                f"data.data_files={data_files!r} must be a path or glob, a list of them, "
                f"or a mapping split -> path"
            )
        self.dataset = dataset
        self.config_name = config_name
        self.data_dir = None if data_dir is None else _resolve(data_dir)
        self.data_files = _resolve_files(data_files)
        self.image_column = image_column
        self.label_column = label_column
        self.train_split = train_split
        self.val_split = val_split
        self.test_split = test_split
        self.image_size = (image_size, image_size)
        self.in_channels = channels
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.mean, self.std = _check_norm(mean, std, channels)
        self.in_memory = in_memory
        self.cache_dir = None if cache_dir is None else _resolve(cache_dir)

    def _builder(self) -> str:
        if self.dataset:
            return self.dataset
        if self.data_dir is not None and self.data_files is None:
            return "imagefolder"
        if self.data_files is not None:
            first = _first_file(self.data_files)
            lowered = first.lower().removesuffix(".gz")
            for ext, builder in BUILDERS:
                if lowered.endswith(ext):
                    return builder
            if lowered.endswith(IMAGE_EXTENSIONS) or lowered.endswith("*"):
                return "imagefolder"
            raise DataError(
                f"cannot tell the format of data.data_files={first!r}; "
                f"set data.dataset=parquet, json, csv or imagefolder"
            )
        raise DataError(
            "data source hf needs a dataset: set data.dataset=<hub name or builder> "
            "or data.data_dir=/path/to/images or data.data_files=/path/to/files"
        )

    def _load(self) -> ImageSplits:
        builder = self._builder()
        try:
            import datasets
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise DataError("data source hf needs the `datasets` package: pip install datasets") from exc
        kwargs: dict[str, Any] = {}
        if self.data_dir is not None:
            if not os.path.isdir(self.data_dir):
                raise DataError(f"data.data_dir={self.data_dir} does not exist; fix data.data_dir=...")
            kwargs["data_dir"] = self.data_dir
        if self.data_files is not None:
            kwargs["data_files"] = self.data_files
        if self.cache_dir is not None:
            kwargs["cache_dir"] = self.cache_dir
        try:
            loaded = datasets.load_dataset(builder, self.config_name, **kwargs)
        except Exception as exc:  # hub errors, offline mode, missing files, bad formats: say it in one line
            raise DataError(
                f"cannot load Hugging Face dataset {builder!r}: {_one_line(exc)}; check data.dataset, "
                f"data.data_dir, data.data_files (hub datasets need a network or a cache)"
            ) from exc
        if not isinstance(loaded, Mapping):
            loaded = {self.train_split: loaded}
        if self.train_split not in loaded:
            raise DataError(
                f"dataset {builder!r} has no split {self.train_split!r}; splits: {', '.join(loaded)}; "
                f"set data.train_split=..."
            )
        train = loaded[self.train_split]
        columns = list(train.column_names)
        for key, column in (("image_column", self.image_column), ("label_column", self.label_column)):
            if column not in columns:
                raise DataError(
                    f"dataset {builder!r} has no column {column!r}; columns: {', '.join(columns)}; "
                    f"set data.{key}=..."
                )
        chosen = {"train": train}
        for split, wanted in (("val", self.val_split), ("test", self.test_split)):
            found = _find_split(loaded, wanted, split)
            if found is not None:
                chosen[split] = loaded[found]
        feature = train.features[self.label_column]
        raw_labels = {split: list(ds[self.label_column]) for split, ds in chosen.items()}
        if hasattr(feature, "names") and hasattr(feature, "num_classes"):
            classes = [str(n) for n in feature.names]
            to_index: Callable[[Any], int] = int
        else:
            distinct = sorted(
                {v for labels in raw_labels.values() for v in labels}, key=lambda v: (str(type(v)), v)
            )
            if (
                all(isinstance(v, int) and not isinstance(v, bool) for v in distinct)
                and distinct
                and min(distinct) >= 0
            ):
                classes = [str(i) for i in range(max(distinct) + 1)]
                to_index = int
            else:
                mapping = {v: i for i, v in enumerate(distinct)}
                classes = [str(v) for v in distinct]
                to_index = mapping.__getitem__
        parts = {}
        for split, ds in chosen.items():
            images = ds.select_columns([self.image_column])
            labels = [to_index(v) for v in raw_labels[split]]
            if any(y < 0 for y in labels):
                raise DataError(
                    f"dataset {builder!r} split {split} has unlabelled rows (label -1); "
                    f"choose labelled splits"
                )
            parts[split] = (list(range(len(ds))), labels)
            chosen[split] = images
        splits = _carve(parts, self.val_fraction, self.test_fraction, self.split_seed)
        # carved splits point into the train table; remember which table each split reads from
        readers = {
            split: _HFReader(chosen.get(split, chosen["train"]), self.image_column) for split in splits
        }
        return _build_splits(self, splits, readers, classes)


def _first_file(files: Any) -> str:
    """The first path of a data_files value (a string, a list, or a mapping split -> string or list)."""
    while not isinstance(files, str):
        values = list(files.values()) if isinstance(files, Mapping) else list(files)
        if not values:
            return ""
        files = values[0]
    return files


def _find_split(loaded: Mapping[str, Any], wanted: str | None, split: str) -> str | None:
    """The split to use for `val` or `test`; None to carve it from train (a usual name that is absent)."""
    if wanted is None:
        return None
    if wanted in loaded:
        return wanted
    aliases = {"val": ("validation", "val", "valid", "dev"), "test": ("test",)}[split]
    if wanted in aliases:
        return next((a for a in aliases if a in loaded), None)
    key = "val_split" if split == "val" else "test_split"
    raise DataError(
        f"the dataset has no split {wanted!r}; splits: {', '.join(loaded)}; set data.{key}=<one of them>, "
        f"or null to carve it from train"
    )


# -------------------------------------------------------------------------------------------- shared helpers


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
        pixels = {
            split: _decode_all(items, reader_of[split], channels, size)
            for split, (items, _) in splits.items()
        }
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


class _HFReader:
    """Reads row `i`'s image from a Hugging Face dataset (PIL image, {"bytes", "path"} dict, or an array)."""

    def __init__(self, dataset: Any, column: str) -> None:
        self.dataset, self.column = dataset, column

    def __call__(self, index: int) -> Image.Image:
        from PIL import Image

        value = self.dataset[int(index)][self.column]
        if isinstance(value, Image.Image):
            return value
        if isinstance(value, Mapping):
            if value.get("bytes"):
                import io

                return _open_image(io.BytesIO(value["bytes"]), name=value.get("path") or f"row {index}")
            if value.get("path"):
                return _open_image(value["path"])
        if isinstance(value, str):
            return _open_image(value)
        try:
            import numpy as np

            array = np.asarray(value)
            if array.dtype != np.uint8:
                array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
            return Image.fromarray(array)
        except Exception as exc:
            raise DataError(
                f"row {index} of column {self.column!r} is not an image ({type(value).__name__}); "
                f"set data.image_column=..."
            ) from exc


def _open_image(source: Any, name: str | None = None) -> Image.Image:
    from PIL import Image

    label = name or str(source)
    try:
        image = Image.open(source)
        image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {label}: {_one_line(exc)}; fix or remove the file") from exc
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


def _normalize(
    images: torch.Tensor, mean: Sequence[float], std: Sequence[float], scale: float = 1.0
) -> torch.Tensor:
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
        raise ConfigError(
            f"data.mean and data.std need {channels} values (one per channel); got {mean} and {std}"
        )
    if any(s <= 0 for s in std):
        raise ConfigError(f"data.std={std} must be positive")
    return mean, std


def _resolve(path: str) -> str:
    """An absolute path; a relative one is taken from the launch directory (the CLI does not chdir)."""
    return os.path.abspath(os.path.expanduser(str(path)))


def _resolve_files(files: Any) -> Any:
    """data_files with local relative paths made absolute; URLs and hub paths (`hf://`) are left alone."""
    if files is None:
        return None
    if isinstance(files, str):
        return files if "://" in files else _resolve(files)
    if isinstance(files, Mapping):
        return {str(k): _resolve_files(v) for k, v in files.items()}
    return [_resolve_files(f) for f in files]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
