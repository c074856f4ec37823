"""SplitsDataModule: the training loader's samplers are told the epoch they start at (a resumed run's, or 0)."""

from __future__ import annotations

import pytest
from torch.utils.data import DataLoader, Sampler

from attnkit.train.datamodule import SplitsDataModule


class EpochBatches(Sampler[list[int]]):
    """A batch sampler that records the epochs it is set to; it is its own `.sampler`, as LengthBatchSampler is."""

    def __init__(self) -> None:
        self.epochs: list[int] = []

    @property
    def sampler(self) -> EpochBatches:
        return self

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __iter__(self):
        return iter([[0, 1]])

    def __len__(self) -> int:
        return 1


@pytest.mark.parametrize("first_epoch", [0, 3])
def test_training_loader_starts_at_the_first_epoch_once(first_epoch) -> None:
    made: list[EpochBatches] = []

    def loader(split: str, train: bool) -> DataLoader:
        made.append(EpochBatches())
        return DataLoader(list(range(2)), batch_sampler=made[-1])

    module = SplitsDataModule(loader, first_epoch=first_epoch)
    module.train_dataloader()
    module.val_dataloader()
    assert made[0].epochs == [first_epoch]  # once, though it is both the batch sampler and its sampler
    assert made[1].epochs == []  # evaluation loaders are left as they are
