"""Lightning glue for text-to-text tasks: a DataModule over encoded splits and a LightningModule that trains an
encoder-decoder with teacher forcing and label smoothing, and evaluates by generating (greedy or beam) and scoring
the texts with the task's metrics."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from attnkit.registry import build_spec
from attnkit.tasks.seq2seq.batches import EncodedPairs, LengthBatchSampler, collate
from attnkit.tasks.seq2seq.generate import DecodeOptions, generate_ids
from attnkit.tasks.seq2seq.tokenizer import Tokenizers
from attnkit.train.optim import param_groups
from attnkit.train.schedule import warmup_cosine

Scorer = Callable[[list[str], list[str]], dict[str, float]]


class Seq2SeqDataModule(pl.LightningDataModule):
    """Loaders over encoded splits (`train`, `val`, `test`): length-bucketed batches, padded on the fly."""

    def __init__(
        self,
        encoded: dict[str, EncodedPairs],
        tokenizers: Tokenizers,
        *,
        batch_size: int,
        max_tokens: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.encoded, self.batch_size, self.max_tokens, self.seed = encoded, batch_size, max_tokens, seed
        tok = tokenizers.tgt
        self.collate = partial(collate, pad_id=tok.pad_id, bos_id=tok.bos_id, eos_id=tok.eos_id)

    def _loader(self, split: str, train: bool) -> DataLoader:
        data = self.encoded[split]
        sampler = LengthBatchSampler(
            data.lengths(), batch_size=self.batch_size, max_tokens=self.max_tokens, shuffle=train, seed=self.seed
        )
        return DataLoader(data, batch_sampler=sampler, collate_fn=self.collate, num_workers=0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)


class Seq2SeqModule(pl.LightningModule):
    """Teacher-forced cross-entropy (label smoothing, padding ignored) on a registered encoder-decoder model.

    Logs {train,val,test}/loss and /acc (next-token accuracy); validation and test also generate every output and
    log the corpus scores of `scorer` (e.g. val/bleu). `tokenizers`, `scorer` and `extras` (what a checkpoint
    must carry for prediction) are attached by the task, not hyperparameters.
    """

    def __init__(
        self,
        model: dict[str, Any],
        vocab: dict[str, Any],
        lr: float = 5e-4,
        weight_decay: float = 1e-4,
        warmup_steps: int = 1000,
        min_lr_ratio: float = 0.0,
        label_smoothing: float = 0.1,
        decode: dict[str, Any] | None = None,
        val_beam: int = 1,
        net: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        self.model = net if net is not None else build_spec("model", model, **vocab)
        self.pad_id = int(vocab["pad_id"])
        final = DecodeOptions(**(decode or {}))
        self.decoding = {"val": DecodeOptions(**{**final.as_dict(), "beam": val_beam}), "test": final}
        self.tokenizers: Tokenizers | None = None
        self.scorer: Scorer | None = None
        self.extras: dict[str, Any] = {}
        self.outputs: dict[str, tuple[list[int], list[str]]] = {}  # stage -> (pair indices, generated texts)
        self._generated: list[tuple[int, list[int]]] = []
        self.trained_tokens = 0  # source and target tokens seen by training steps (padding excluded)

    def attach(self, tokenizers: Tokenizers, scorer: Scorer | None, extras: dict[str, Any] | None = None) -> None:
        """What evaluation needs besides weights: the tokenizers (to decode outputs) and the metric."""
        self.tokenizers, self.scorer = tokenizers, scorer
        if extras is not None:
            self.extras = extras

    def forward(self, src: Tensor, tgt_in: Tensor, src_mask: Tensor | None = None) -> Tensor:
        return self.model(src, tgt_in, src_mask)

    def _step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        logits = self(batch["src"], batch["tgt_in"], batch["src_mask"])
        labels = batch["tgt_out"]
        smoothing = self.hparams.label_smoothing if stage == "train" else 0.0
        loss = F.cross_entropy(
            logits.flatten(0, 1).float(), labels.flatten(), ignore_index=self.pad_id, label_smoothing=smoothing
        )
        real = labels.ne(self.pad_id)
        tokens = int(real.sum())
        acc = (logits.argmax(-1).eq(labels) & real).sum() / max(1, tokens)
        opts = {"on_epoch": True, "batch_size": tokens, "sync_dist": True}
        self.log(f"{stage}/loss", loss, on_step=stage == "train", prog_bar=stage != "test", **opts)
        self.log(f"{stage}/acc", acc, on_step=False, prog_bar=True, **opts)
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        self.trained_tokens += int((~batch["src_mask"]).sum()) + int(batch["tgt_out"].ne(self.pad_id).sum())
        return self._step(batch, "train")

    # -- evaluation: teacher-forced loss, then generation and corpus scores ---------------------------------------

    def _eval_step(self, batch: dict[str, Tensor], stage: str) -> None:
        self._step(batch, stage)
        if self.tokenizers is None:
            return
        ids = generate_ids(self.model, batch["src"], batch["src_mask"], self.tokenizers, self.decoding[stage])
        self._generated.extend(zip(batch["index"].tolist(), ids, strict=True))

    def _eval_end(self, stage: str) -> None:
        if self.tokenizers is None:
            return
        generated = dict(_gather(self._generated))  # every pair evaluated (a subset with limit_*_batches)
        self._generated = []
        data: EncodedPairs = self.trainer.datamodule.encoded[stage]
        indices = sorted(generated)
        texts = self.tokenizers.tgt.decode([generated[i] for i in indices])
        self.outputs[stage] = (indices, texts)
        if self.scorer is None:
            return
        for key, value in self.scorer(texts, [data.references[i] for i in indices]).items():
            self.log(f"{stage}/{key}", value, prog_bar=True)

    def on_validation_epoch_start(self) -> None:
        self._generated = []

    def on_test_epoch_start(self) -> None:
        self._generated = []

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._eval_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")

    # -- optimisation and checkpoints ---------------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        optimizer = torch.optim.AdamW(param_groups(self.model, hp.weight_decay), lr=hp.lr, betas=(0.9, 0.98))
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, hp.warmup_steps, hp.min_lr_ratio))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["seq2seq"] = self.extras


def _gather(items: list[Any]) -> list[Any]:
    """Every process's items, concatenated (the items themselves under a single process)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return items
    parts: list[list[Any]] = [[] for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather_object(parts, items)
    return [item for part in parts for item in part]
