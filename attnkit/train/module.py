"""The LightningModule every task's module builds on: the model from its spec, an optional moving average of the
weights for evaluation, AdamW with warm-up and cosine decay, a count of what training saw, and the checkpoint's
attnkit marker (the task that wrote it, and what test and predict need besides the weights)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

import attnkit
from attnkit.registry import build_spec
from attnkit.train.ema import EMA, needs_warmup, whole_weights
from attnkit.train.optim import adamw, param_groups
from attnkit.train.schedule import warmup_cosine


class TaskModule(pl.LightningModule):
    """Hyperparameters: `task` (the task's config node: its name and recipe), `model` (the model spec) and
    `context` (what the data fixes: vocabulary or image size, classes, ...); `net` is an already built model.

    The recipe keys read here: `lr`, `weight_decay`, `min_lr_ratio`, `ema_decay` (0 or absent = no average),
    `ema_warmup` (true / false; absent or null: only when the run is too short to forget its initial weights, see
    `needs_warmup`) and the warm-up of the learning rate (`warmup_steps`, or a subclass's `warmup(total_steps)`).
    What training saw (`trained`) and its time (`train_seconds`) are kept in
    checkpoints, so a resumed run reports the whole run's.
    """

    betas: tuple[float, float] = (0.9, 0.999)

    def __init__(
        self, task: dict[str, Any], model: dict[str, Any], context: dict[str, Any], net: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        self.recipe = SimpleNamespace(**task)
        self.model = net if net is not None else build_spec("model", model, **context)
        ema_decay = float(getattr(self.recipe, "ema_decay", 0.0) or 0.0)
        self.ema = EMA(self.model, ema_decay) if ema_decay > 0 else None
        self.trained: dict[str, int] = {}  # what training steps saw, by unit (images, tokens, ...)
        self.extras: dict[str, Any] = {}  # saved in the checkpoint for test and predict (set by the task)
        self._seconds_before = 0.0  # training time of the run before it was resumed
        self._started: float | None = None

    @property
    def eval_model(self) -> nn.Module:
        """The weights that validation, test and prediction use: the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def count(self, **amounts: int) -> None:
        """Add to the training counts (throughput = count / training time)."""
        for unit, amount in amounts.items():
            self.trained[unit] = self.trained.get(unit, 0) + int(amount)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            with whole_weights(self.trainer.model):  # trainer=fsdp: whole weights, not this process's shards
                self.ema.update(self.model)

    def on_train_start(self) -> None:
        self._started = time.perf_counter()
        if self.ema is not None:
            warmup = getattr(self.recipe, "ema_warmup", None)
            steps = int(self.trainer.estimated_stepping_batches)
            self.ema.warmup = needs_warmup(self.ema.decay, steps) if warmup is None else bool(warmup)

    @property
    def train_seconds(self) -> float:
        """Training time so far, over every resumption of the run."""
        running = time.perf_counter() - self._started if self._started is not None else 0.0
        return self._seconds_before + running

    def warmup(self, total_steps: int) -> int:
        """Warm-up steps of the schedule."""
        return int(getattr(self.recipe, "warmup_steps", 0))

    def configure_optimizers(self) -> Any:
        r = self.recipe
        mixed = "mixed" in str(self.trainer.precision)  # AMP: gradients clipped after unscaling, not fused
        optimizer = adamw(param_groups(self.model, r.weight_decay), lr=r.lr, betas=self.betas, mixed_precision=mixed)
        total = int(self.trainer.estimated_stepping_batches)
        factor = warmup_cosine(total, self.warmup(total), r.min_lr_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        progress = {"trained": dict(self.trained), "seconds": self.train_seconds}
        checkpoint["attnkit"] = {"task": self.recipe.name, "version": attnkit.__version__, **self.extras, **progress}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("attnkit", {})
        self.trained = dict(saved.get("trained", {}))
        self._seconds_before = float(saved.get("seconds", 0.0))
