"""The CSV logger a run writes metrics.csv with (rows kept on resume, and never half a file), and the guard of a run
that diverges (a NaN loss stops it, and no checkpoint of non-finite weights is written)."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from checks import one_line
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from attnkit import TrainingError
from attnkit.train.callbacks import ResumableCSVLogger, WholeRowsWriter
from attnkit.train.trainer import make_trainer


def rows(path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_a_resumed_run_keeps_the_rows_up_to_its_checkpoint_and_a_new_one_starts_afresh(tmp_path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train/loss\n" + "".join(f"0,{s},{1 / (s + 1)}\n" for s in range(10)))
    assert isinstance(ResumableCSVLogger(tmp_path, resumed_step=4).experiment, WholeRowsWriter)
    assert [r["step"] for r in rows(path)] == ["0", "1", "2", "3", "4"]
    assert ResumableCSVLogger(tmp_path).experiment.metrics == []  # not resumed: old metrics go, as in Lightning
    assert not path.exists()


def test_a_wider_header_replaces_the_file_whole_and_a_failed_write_leaves_the_old_one(tmp_path, monkeypatch) -> None:
    writer = WholeRowsWriter(str(tmp_path), [])
    writer.log_metrics({"train/loss": 1.0}, step=0)
    writer.save()
    writer.log_metrics({"train/loss": 0.5}, step=1)
    writer.save()  # the same columns: appended
    path = tmp_path / "metrics.csv"
    assert [r["train/loss"] for r in rows(path)] == ["1.0", "0.5"]
    before = path.read_text()

    def killed(self, rows):
        raise OSError("killed while writing")

    monkeypatch.setattr(csv.DictWriter, "writerows", killed)
    writer.log_metrics({"val/acc": 0.9}, step=1)  # a new column: the file is rewritten
    with pytest.raises(OSError):
        writer.save()
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]  # all rows, no litter
    monkeypatch.undo()
    writer.save()
    assert [(r["step"], r["val/acc"]) for r in rows(path)] == [("0", ""), ("1", ""), ("1", "0.9")]


class Diverging(pl.LightningModule):
    """A linear model whose loss becomes NaN at step `nan_at`, or whose unused weight becomes NaN at `spoil_at`."""

    def __init__(self, nan_at: int | None = None, spoil_at: int | None = None) -> None:
        super().__init__()
        self.net, self.spare = nn.Linear(2, 1), nn.Parameter(torch.zeros(1))
        self.nan_at, self.spoil_at = nan_at, spoil_at
        self.recipe = SimpleNamespace(lr=0.1)

    def training_step(self, batch, batch_idx):
        loss = F.mse_loss(self.net(batch[0]), batch[1])
        return loss * float("nan") if self.global_step == self.nan_at else loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.global_step == self.spoil_at:
            with torch.no_grad():
                self.spare.fill_(float("inf"))

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", F.mse_loss(self.net(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.recipe.lr)


def fit(module: pl.LightningModule, run_dir) -> None:
    data = TensorDataset(torch.randn(8, 2), torch.randn(8, 1))
    loaders = DataLoader(data, batch_size=4), DataLoader(data, batch_size=8)
    trainer_cfg = {"max_epochs": 3, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False}
    trainer = make_trainer(trainer_cfg, run_dir, monitor="val/loss", mode="min")
    trainer.fit(module, *loaders)


def finite_weights(path) -> bool:
    state = torch.load(path, weights_only=True)["state_dict"]
    return all(torch.isfinite(t).all() for t in state.values())


def test_a_nan_loss_stops_training_in_one_line_and_keeps_the_last_good_checkpoint(tmp_path) -> None:
    """Two steps an epoch: the checkpoints of epoch 0 (step 2) stay, and no step ran on the NaN loss."""
    module = Diverging(nan_at=3)
    with pytest.raises(TrainingError) as exc:
        fit(module, tmp_path)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert one_line(exc).startswith("the training loss became nan at step 3 (the last finite one was ")
    assert f"at step 2); training stopped; the last good checkpoint {last} is kept" in one_line(exc)
    assert one_line(exc).endswith(
        "lower task.lr (now 0.1) or clip gradients (trainer.gradient_clip_val=1.0), and start again"
    )
    assert torch.load(last, weights_only=True)["global_step"] == 2 and finite_weights(last)
    assert all(torch.isfinite(p).all() for p in module.parameters())  # stopped before the step on the NaN loss


def test_a_nan_loss_before_any_checkpoint_says_so(tmp_path) -> None:
    with pytest.raises(
        TrainingError,
        match=r"became nan at step 0 \(no finite loss before it\); training stopped "
        r"before its first checkpoint",
    ):
        fit(Diverging(nan_at=0), tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_weights_that_are_not_finite_are_never_written_over_a_good_checkpoint(tmp_path) -> None:
    with pytest.raises(TrainingError) as exc:
        fit(Diverging(spoil_at=4), tmp_path)  # the end of epoch 1: its checkpoint would hold inf
    assert one_line(exc).startswith(
        "the weights are no longer finite numbers at step 4 (spare), so no checkpoint was written"
    )
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2 and finite_weights(last)
    assert finite_weights(tmp_path / "checkpoints" / "best.ckpt")
