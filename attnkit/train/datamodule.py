"""A LightningDataModule over the train / val / test splits that a task has already built."""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
from torch.utils.data import DataLoader


class SplitsDataModule(pl.LightningDataModule):
    """Loaders from `loader(split, train)`; split is "train", "val" or "test"."""

    def __init__(self, loader: Callable[[str, bool], DataLoader]) -> None:
        super().__init__()
        self.loader = loader

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self.loader("test", False)
