"""Lightning glue for language modelling: batches are `(input [B, N], target [B, N])`, target -100 where unscored."""

from __future__ import annotations

import math
from typing import Any

import torch.nn.functional as F
from torch import Tensor

from attnkit.tasks.lm.mqar import IGNORE as IGNORE_INDEX
from attnkit.train.module import TaskModule

SPARSE = 0.5  # at most this share of positions scored: the head maps the scored ones alone


class LanguageModelModule(TaskModule):
    """Next-token cross-entropy over the scored positions of a causal model `model(ids [B, N]) -> [B, N, V]`.

    Logs {train,val,test}/loss (nats per scored token) and /acc (the most probable token is the target; MQAR:
    answer accuracy); at the end of a validation or test epoch also /ppl and /bits_per_<unit> (bits per character,
    byte or token: the loss in bits over `units_per_token`, set by the task). Throughput counts tokens."""

    units_per_token: dict[str, float]
    unit: str = "token"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.units_per_token = {}
        self._sums: dict[str, list[float]] = {}

    def forward(self, ids: Tensor) -> Tensor:
        return self.model(ids) if self.training else self.eval_model(ids)

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        ids, target = batch
        scored = target.ne(IGNORE_INDEX)
        n = int(scored.sum())
        model = self.model if self.training else self.eval_model
        if n <= SPARSE * target.numel() and callable(getattr(model, "features", None)):
            # a few scored positions (MQAR's answers): the output projection maps those alone
            logits, target = model.head(model.features(ids)[scored]), target[scored]
        else:
            logits, target = self(ids).flatten(0, 1), target.flatten()
        loss = F.cross_entropy(logits.float(), target, ignore_index=IGNORE_INDEX)
        acc = logits.argmax(dim=-1).eq(target).sum() / max(n, 1)
        opts = {"on_epoch": True, "batch_size": max(n, 1), "sync_dist": True}
        self.log(f"{stage}/loss", loss, on_step=stage == "train", prog_bar=stage != "test", **opts)
        self.log(f"{stage}/acc", acc, on_step=False, prog_bar=stage != "train", **opts)
        if stage != "train":
            sums = self._sums.setdefault(stage, [0.0, 0.0])
            sums[0] += float(loss) * n
            sums[1] += n
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        self.count(tokens=batch[0].numel(), sequences=len(batch[0]))
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def _derived(self, stage: str) -> None:
        total, n = self._sums.pop(stage, (0.0, 0.0))
        if n == 0:
            return
        loss = total / n
        self.log(f"{stage}/ppl", math.exp(min(loss, 700.0)), sync_dist=True)
        per_unit = self.units_per_token.get(stage, 1.0)
        self.log(f"{stage}/bits_per_{self.unit}", loss / math.log(2) / per_unit, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self._derived("val")

    def on_test_epoch_end(self) -> None:
        self._derived("test")

    def on_validation_epoch_start(self) -> None:
        self._sums.pop("val", None)
