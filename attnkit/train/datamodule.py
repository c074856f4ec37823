"""A LightningDataModule over the train / val / test splits that a task has already built."""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
from torch.utils.data import DataLoader


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """`set_epoch(epoch)` on the loader's sampler and batch sampler (and the batch sampler's sampler), once each."""
    batch_sampler = loader.batch_sampler
    seen: set[int] = set()
    for sampler in (loader.sampler, batch_sampler, getattr(batch_sampler, "sampler", None)):
        if callable(getattr(sampler, "set_epoch", None)) and id(sampler) not in seen:
            seen.add(id(sampler))
            sampler.set_epoch(epoch)


class SplitsDataModule(pl.LightningDataModule):
    """Loaders from `loader(split, train)`; split is "train", "val" or "test".

    `first_epoch`: the epoch a resumed run starts at. Lightning makes the training loader's first iterator before
    it restores the loops and calls `set_epoch` (to count the steps for the schedule), so a sampler that reshuffles
    per epoch would replay epoch 0's order in the resumed epoch unless it is told the epoch when it is made.
    """

    def __init__(self, loader: Callable[[str, bool], DataLoader], first_epoch: int = 0) -> None:
        super().__init__()
        self.loader, self.first_epoch = loader, first_epoch

    def train_dataloader(self) -> DataLoader:
        loader = self.loader("train", True)
        epoch = self.first_epoch
        if self.trainer is not None:  # a reload (reload_dataloaders_every_n_epochs) during the run
            epoch = max(epoch, self.trainer.fit_loop.epoch_progress.current.processed)
        set_epoch(loader, epoch)
        return loader

    def val_dataloader(self) -> DataLoader:
        return self.loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self.loader("test", False)
