"""Lightning glue for ViT classification: a DataModule over a registered data source and a LightningModule."""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from attnkit.registry import build_spec
from attnkit.train.optim import param_groups
from attnkit.train.schedule import warmup_cosine


def random_affine(images: Tensor, shift: float = 0.0, rotate: float = 0.0, scale: float = 0.0) -> Tensor:
    """Per image: translate by up to ±`shift` pixels, rotate by up to ±`rotate` degrees, zoom by up to ±`scale`
    (a fraction), resampled bilinearly with edge pixels repeated. `[B, C, H, W]` -> same."""
    if shift <= 0 and rotate <= 0 and scale <= 0:
        return images
    b, _, h, w = images.shape
    uniform = lambda *shape: torch.rand(*shape, device=images.device) * 2 - 1  # noqa: E731  in [-1, 1)
    angle = uniform(b) * math.radians(rotate)
    zoom = 1 + uniform(b) * scale
    offset = uniform(b, 2) * shift * 2 / torch.tensor([w, h], device=images.device)  # pixels -> [-1, 1] units
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


class ImageDataModule(pl.LightningDataModule):
    """Train/validation/test loaders over the splits of a registered image data source."""

    def __init__(self, source: Any) -> None:
        super().__init__()
        self.source = source
        self.splits = source.load()
        self.batch_size = int(source.batch_size)

    def _loader(self, dataset: Any, train: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else 2 * self.batch_size,
            shuffle=train,
            drop_last=train and len(dataset) > self.batch_size,
            num_workers=0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.splits.train, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.splits.val, False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.splits.test, False)


class ImageClassifier(pl.LightningModule):
    """Cross-entropy training of a registered image model; logs {train,val,test}/{loss,acc}."""

    def __init__(
        self,
        model: dict[str, Any],
        data_info: dict[str, Any],
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        warmup_epochs: float = 5.0,
        min_lr_ratio: float = 0.01,
        label_smoothing: float = 0.1,
        random_shift: float = 0.0,
        random_rotate: float = 0.0,
        random_scale: float = 0.0,
        ema_decay: float = 0.0,
        data_spec: dict[str, Any] | None = None,
        net: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        self.model = (
            net
            if net is not None
            else build_spec(
                "model",
                model,
                image_size=data_info["image_size"],
                in_channels=data_info["in_channels"],
                num_classes=data_info["num_classes"],
            )
        )
        # an exponential moving average of the weights, used for evaluation when ema_decay > 0
        self.ema = (
            AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
            if ema_decay > 0
            else None
        )
        if self.ema is not None:
            self.ema.requires_grad_(False)  # updated by averaging, not by gradients (and DDP must not wait for them)

    @property
    def eval_model(self) -> nn.Module:
        """The weights that validation, test and prediction use: the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images) if self.training else self.eval_model(images)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        images, labels = batch
        logits = self(images)
        smoothing = self.hparams.label_smoothing if stage == "train" else 0.0
        loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        acc = (logits.argmax(dim=-1) == labels).float().mean()
        on_step = stage == "train"
        self.log(
            f"{stage}/loss",
            loss,
            on_step=on_step,
            on_epoch=True,
            prog_bar=stage != "test",
            batch_size=len(labels),
            sync_dist=True,
        )
        self.log(
            f"{stage}/acc",
            acc,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(labels),
            sync_dist=True,
        )
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        hp = self.hparams
        return self._step((random_affine(images, hp.random_shift, hp.random_rotate, hp.random_scale), labels), "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        optimizer = torch.optim.AdamW(param_groups(self.model, hp.weight_decay), lr=hp.lr)
        total = int(self.trainer.estimated_stepping_batches)
        per_epoch = total / max(1, self.trainer.max_epochs or 1)
        factor = warmup_cosine(total, round(hp.warmup_epochs * per_epoch), hp.min_lr_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
