"""Lightning glue for segmentation: per-pixel cross-entropy on augmented crops, and confusion matrices over whole
images (sliding windows) for validation and test."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from attnkit.tasks.segment.augment import random_crops
from attnkit.tasks.segment.data.base import IGNORE
from attnkit.tasks.segment.metrics import confusion, scores
from attnkit.tasks.segment.window import sliding_window
from attnkit.train.module import TaskModule


class SegmentModule(TaskModule):
    """Batches are `(images [B, C, H, W], masks [B, H, W])`. Training: `random_crops` of the model's input size
    (`context["image_size"]`) with the recipe's scale range and flips, cross-entropy over labelled pixels with the
    recipe's `label_smoothing` and class `weights` (a context entry: one per class, or None). Validation and test:
    the whole image through `sliding_window`, its pixels counted in a confusion matrix; logs {stage}/loss,
    {stage}/miou, {stage}/pixel_acc, {stage}/class_acc. The last test's per-class scores are `tested`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        weights = self.hparams.context.get("class_weights")
        self.register_buffer("weights", None if weights is None else torch.tensor(weights, dtype=torch.float32))
        self.crop = tuple(int(v) for v in self.hparams.context["image_size"])
        self.num_classes = int(self.hparams.context["num_classes"])
        self.class_names = list(self.hparams.context.get("class_names") or map(str, range(self.num_classes)))
        self._confusion: Tensor | None = None
        self.tested: dict[str, Any] = {}

    def forward(self, images: Tensor) -> Tensor:
        model = self.model if self.training else self.eval_model
        return sliding_window(model, images, self.crop, self.recipe.window_overlap)

    def _loss(self, logits: Tensor, masks: Tensor, smoothing: float = 0.0) -> Tensor:
        return F.cross_entropy(logits, masks, weight=self.weights, ignore_index=IGNORE, label_smoothing=smoothing)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        images, masks = batch
        r = self.recipe
        crops, labels = random_crops(images, masks, self.crop, r.min_scale, r.max_scale, r.flip)
        self.count(images=len(images))
        logits = self.model(crops)
        loss = self._loss(logits, labels, r.label_smoothing)
        labelled = labels != IGNORE
        acc = (logits.argmax(1)[labelled] == labels[labelled]).float().mean() if labelled.any() else loss.new_zeros(())
        opts = {"on_epoch": True, "batch_size": len(images), "sync_dist": True}
        self.log("train/loss", loss, on_step=True, prog_bar=True, **opts)
        self.log("train/pixel_acc", acc, on_step=False, **opts)
        return loss

    def _evaluate(self, batch: Any, stage: str) -> None:
        images, masks = batch
        logits = self(images)
        loss = self._loss(logits, masks)
        if not torch.isnan(loss):  # every pixel ignored: no loss to count
            self.log(f"{stage}/loss", loss, on_epoch=True, batch_size=len(images), sync_dist=True)
        counts = confusion(logits.argmax(1), masks, self.num_classes)
        self._confusion = counts if self._confusion is None else self._confusion + counts

    def _scores(self, stage: str) -> None:
        counts = self._confusion
        self._confusion = None
        if counts is None:
            return
        counts = self.trainer.strategy.reduce(counts.to(self.device), reduce_op="sum") if self.trainer else counts
        result = scores(counts.cpu(), self.class_names)
        for key in ("miou", "pixel_acc", "class_acc"):
            value = result[key]
            self.log(f"{stage}/{key}", float("nan") if value is None else value, prog_bar=key == "miou")
        if stage == "test":
            self.tested = {**result, "confusion": counts.cpu()}

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_validation_epoch_start(self) -> None:
        self._confusion = None

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_epoch_end(self) -> None:
        self._scores("val")

    def on_test_epoch_end(self) -> None:
        self._scores("test")

    def warmup(self, total_steps: int) -> int:
        return round(self.recipe.warmup_fraction * total_steps)
