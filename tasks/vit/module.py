"""Lightning glue for ViT classification: a DataModule over a registered data source and a LightningModule."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from attnkit.registry import build_spec
from attnkit.train.optim import param_groups
from attnkit.train.schedule import warmup_cosine


def random_shift(images: Tensor, pixels: int) -> Tensor:
    """Translate each image by up to ±`pixels` in x and y (edge pixels replicated): `[B, C, H, W]` -> same."""
    if pixels <= 0:
        return images
    b, _, h, w = images.shape
    padded = F.pad(images, (pixels,) * 4, mode="replicate")
    dy = torch.randint(0, 2 * pixels + 1, (b, 1), device=images.device)
    dx = torch.randint(0, 2 * pixels + 1, (b, 1), device=images.device)
    rows = (dy + torch.arange(h, device=images.device))[:, :, None]  # [B, H, 1]
    cols = (dx + torch.arange(w, device=images.device))[:, None, :]  # [B, 1, W]
    batch = torch.arange(b, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


class ImageDataModule(pl.LightningDataModule):
    """Train/validation/test loaders over the splits of a registered image data source."""

    def __init__(self, source: Any) -> None:
        super().__init__()
        self.source = source
        self.splits = source.load()
        self.batch_size = int(source.batch_size)
        self.shift = int(getattr(source, "random_shift", 0))

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

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.trainer is not None and self.trainer.training and self.shift:
            images, labels = batch
            return random_shift(images, self.shift), labels
        return batch


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

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images)

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
        return self._step(batch, "train")

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
