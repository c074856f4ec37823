"""`data=digits` (the default): scikit-learn's handwritten digits, offline."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

import attnkit
from attnkit.data.checks import check_int
from attnkit.errors import ConfigError
from attnkit.ranges import PositiveInt, Seed
from attnkit.tasks.vit.data.base import ImageData, ImageSplits, stratified_split
from attnkit.tasks.vit.data.images import channel_stats, normalize


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
        batch_size: PositiveInt = 64,
        test_size: PositiveInt = 360,
        val_size: PositiveInt = 180,
        split_seed: Seed = 0,
    ) -> None:
        super().__init__(batch_size=batch_size)
        check_int("test_size", test_size, minimum=1)
        check_int("val_size", val_size, minimum=1)
        if test_size + val_size >= 1797:
            raise ConfigError(
                f"data.test_size + data.val_size = {test_size + val_size} leaves no training images "
                f"out of 1797; lower them (defaults 360 and 180)"
            )
        self.test_size = test_size
        self.val_size = val_size
        self.split_seed = split_seed

    def _load(self) -> ImageSplits:
        images, labels = read_digits()
        images = images.unsqueeze(1) / 16.0  # [N, 1, 8, 8] in [0, 1]
        rest, test = stratified_split(labels.tolist(), self.test_size, self.split_seed)
        keep, val = stratified_split(labels[rest].tolist(), self.val_size, self.split_seed + 1)
        train = [rest[i] for i in keep]
        val = [rest[i] for i in val]
        mean, std = (self.mean, self.std) if self.mean is not None else channel_stats(images[train])
        images = normalize(images, mean, std)
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


def read_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,797 digits as `[N, 8, 8]` float pixel values 0..16 and `[N]` int64 labels, as `load_digits` gives them.

    Read from scikit-learn's own data file (`sklearn/datasets/data/digits.csv.gz`: 64 pixels then the label per row)
    without importing scikit-learn, which takes seconds; `load_digits` where the file is not in that place.
    """
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits

        digits = load_digits()
        return torch.as_tensor(digits.images, dtype=torch.float32), torch.as_tensor(digits.target, dtype=torch.int64)
    with gzip.open(path, "rt") as f:
        rows = torch.tensor([[float(v) for v in line.split(",")] for line in f if line.strip()])
    return rows[:, :-1].reshape(-1, 8, 8), rows[:, -1].to(torch.int64)
