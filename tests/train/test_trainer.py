"""make_trainer's checkpoints: best.ckpt follows the monitored score, last.ckpt the latest epoch whatever the score;
what a trainer config says of where and in how many processes it trains."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from attnkit.train import trainer
from attnkit.train.trainer import make_trainer, single_process, trainer_device

TRAINER = {
    "accelerator": "cpu",
    "devices": 1,
    "max_epochs": 3,
    "log_every_n_steps": 1,
    "num_sanity_val_steps": 0,
    "enable_progress_bar": False,
}


class Scored(pl.LightningModule):
    """A linear model whose validation score is `scores[epoch]`."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.layer, self.scores = nn.Linear(2, 1), scores

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return self.layer(x).pow(2).mean()

    def validation_step(self, batch, batch_idx) -> None:
        self.log("val/acc", self.scores[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)


def saved(path) -> tuple[int, int]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return checkpoint["epoch"], checkpoint["global_step"]


def test_last_checkpoint_is_the_last_epoch_when_the_score_stops_improving(tmp_path) -> None:
    trainer = make_trainer(TRAINER, tmp_path, monitor="val/acc", loggers={})
    trainer.fit(Scored([0.9, 0.5, 0.5]), train_dataloaders=loader(), val_dataloaders=loader())
    assert saved(tmp_path / "checkpoints" / "best.ckpt") == (0, 2)
    assert saved(tmp_path / "checkpoints" / "last.ckpt") == (2, 6)  # not the best epoch's
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


@pytest.mark.parametrize("gpus", [0, 1, 4])
def test_the_device_and_the_number_of_processes_of_a_trainer_config(gpus, monkeypatch) -> None:
    monkeypatch.setattr(trainer, "torch_cuda_devices", lambda: gpus)
    gpu = "cuda" if gpus else "cpu"
    assert trainer_device({"accelerator": "cpu"}) == "cpu"
    assert (
        trainer_device({"accelerator": "gpu"}) == trainer_device({"accelerator": "auto"}) == trainer_device({}) == gpu
    )
    assert single_process({"accelerator": "cpu", "devices": 1}) and single_process({"devices": [0], "num_nodes": 1})
    assert not single_process({"accelerator": "cpu", "devices": 2}) and not single_process(
        {"devices": 1, "num_nodes": 2}
    )
    assert single_process({"accelerator": "auto", "devices": "auto"}) == (gpus <= 1)
