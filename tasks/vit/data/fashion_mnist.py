"""`data=fashion_mnist`: Fashion-MNIST from its standard IDX files (Debian: dataset-fashion-mnist)."""

from __future__ import annotations

import gzip
import math
import os

import numpy as np
import torch
from torch.utils.data import TensorDataset

import attnkit
from attnkit.data.checks import check_int
from attnkit.data.messages import one_line
from attnkit.data.paths import resolve
from attnkit.errors import ConfigError, DataError
from attnkit.ranges import PositiveInt
from attnkit.tasks.vit.data.base import ImageData, ImageSplits
from attnkit.tasks.vit.data.images import channel_stats, normalize

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
        batch_size: PositiveInt = 64,
        path: str = "/usr/share/datasets/fashion-mnist",
        val_size: PositiveInt = 5000,
        limit_train: PositiveInt | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(batch_size=batch_size)
        check_int("val_size", val_size, minimum=0)
        if limit_train is not None:
            check_int("limit_train", limit_train, minimum=1)
        self.path = resolve(path)
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
        mean, std = (self.mean, self.std) if self.mean is not None else channel_stats(train_x[:n_train], scale=255.0)
        limit = n_train if self.limit_train is None else min(self.limit_train, n_train)

        def tensors(images: torch.Tensor, labels: torch.Tensor) -> TensorDataset:
            return TensorDataset(normalize(images, mean, std, scale=255.0), labels.to(torch.int64))

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
            from torchvision.datasets import FashionMNIST  # lazy: torchvision takes seconds to import

            for train in (True, False):
                FashionMNIST(root=self.path, train=train, download=True)
        except Exception as exc:  # no network, no write permission, a changed mirror ...
            raise DataError(
                f"could not download Fashion-MNIST into {self.path}: {one_line(exc)}; download the IDX "
                f"files by hand or install Debian's dataset-fashion-mnist and set data.path=..."
            ) from exc


def read_idx(path: str) -> torch.Tensor:
    """An IDX file (the MNIST format; gzipped when the name ends in .gz) as a tensor of its stored type and
    shape.
    """
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {one_line(exc)}; re-download the file") from exc
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
