"""Classification with cross-entropy: the Lightning module of every task that predicts one label per input."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from attnkit.train.module import TaskModule


class ClassifierModule(TaskModule):
    """Batches are `(*inputs, labels)`; the model maps the inputs to logits `[B, classes]`. Logs
    {train,val,test}/{loss,acc}; training uses `label_smoothing` and the subclass's `augment`."""

    def forward(self, *inputs: Tensor) -> Tensor:
        return self.model(*inputs) if self.training else self.eval_model(*inputs)

    def augment(self, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """Training-time augmentation of the inputs (none by default)."""
        return inputs

    def counted(self, inputs: tuple[Tensor, ...]) -> dict[str, int]:
        """What one training batch adds to the throughput counts (default: samples)."""
        return {"samples": len(inputs[0])}

    def _step(self, inputs: tuple[Tensor, ...], labels: Tensor, stage: str) -> Tensor:
        return self.score(self(*inputs), labels, stage)

    def score(self, logits: Tensor, labels: Tensor, stage: str) -> Tensor:
        """Log `{stage}/loss` and `{stage}/acc` of `logits` `[B, classes]` (or log-probabilities) against `labels`
        `[B]`; return the loss."""
        smoothing = self.recipe.label_smoothing if stage == "train" else 0.0
        loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", prog_bar=stage != "test", **self._log_options(labels))
        self.log_accuracy(f"{stage}/acc", logits, labels, prog_bar=True)
        return loss

    def log_accuracy(self, name: str, logits: Tensor, labels: Tensor, prog_bar: bool = False) -> None:
        acc = (logits.argmax(dim=-1) == labels).float().mean()
        self.log(name, acc, on_step=False, prog_bar=prog_bar, **self._log_options(labels))

    @staticmethod
    def _log_options(labels: Tensor) -> dict[str, Any]:
        return {"on_epoch": True, "batch_size": len(labels), "sync_dist": True}

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        *inputs, labels = batch
        inputs = self.augment(tuple(inputs))
        self.count(**self.counted(inputs))
        return self._step(inputs, labels, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        *inputs, labels = batch
        self._step(tuple(inputs), labels, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        *inputs, labels = batch
        self._step(tuple(inputs), labels, "test")
