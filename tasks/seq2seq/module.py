"""Lightning glue for text-to-text tasks: a LightningModule that trains an encoder-decoder with teacher forcing and
label smoothing, and evaluates by generating (greedy or beam) and scoring the texts with the task's metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.tasks.seq2seq.batches import EncodedPairs
from attnkit.tasks.seq2seq.generate import DecodeOptions, generate_ids
from attnkit.text.tokenizer import Tokenizers
from attnkit.text.words import Lexicon, WordConstraint, non_word_rate
from attnkit.train.module import TaskModule

Scorer = Callable[[list[str], list[str]], dict[str, float]]


class Seq2SeqModule(TaskModule):
    """Teacher-forced cross-entropy (label smoothing, padding ignored) on a registered encoder-decoder model.

    Logs {train,val,test}/loss and /acc (next-token accuracy); validation and test also generate every output and
    log the corpus scores of `scorer` (e.g. val/bleu). Validation during training decodes with the recipe's
    `val_beam`, the final validation and test with its decoding options. `tokenizers` and `scorer` are attached by
    the task, not hyperparameters.
    """

    betas = (0.9, 0.98)

    def __init__(
        self, task: dict[str, Any], model: dict[str, Any], context: dict[str, Any], net: nn.Module | None = None
    ) -> None:
        super().__init__(task, model, context, net)
        self.pad_id = int(context["pad_id"])
        final = DecodeOptions.of(task)
        self.decoding = {"val": replace(final, beam=self.recipe.val_beam), "test": final}
        self.tokenizers: Tokenizers | None = None
        self.scorer: Scorer | None = None
        self.encoded: dict[str, EncodedPairs] = {}
        self.outputs: dict[str, tuple[list[int], list[str]]] = {}  # stage -> (pair indices, generated texts)
        self.lexicon: Lexicon | None = None
        self.words: WordConstraint | None = None
        self._generated: list[tuple[int, list[int]]] = []

    def attach(
        self,
        tokenizers: Tokenizers | None,
        scorer: Scorer | None,
        encoded: dict[str, EncodedPairs],
        lexicon: Lexicon | None = None,
    ) -> None:
        """What evaluation needs besides weights: the tokenizers (to decode outputs), the metric, the references
        (`encoded` splits) and the known words (`lexicon`: what `non_word_rate` and `task.words=real` go by)."""
        self.tokenizers, self.scorer, self.encoded, self.lexicon = tokenizers, scorer, encoded, lexicon
        real = any(options.words == "real" for options in self.decoding.values())
        if tokenizers is not None and lexicon is not None and real:
            self.words = WordConstraint.for_tokenizers(tokenizers.tgt, lexicon, tokenizers.src)

    def forward(self, src: Tensor, tgt_in: Tensor, src_mask: Tensor | None = None) -> Tensor:
        return self.model(src, tgt_in, src_mask)

    def _step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        logits = self(batch["src"], batch["tgt_in"], batch["src_mask"])
        labels = batch["tgt_out"]
        smoothing = self.recipe.label_smoothing if stage == "train" else 0.0
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
        self.count(tokens=int((~batch["src_mask"]).sum()) + int(batch["tgt_out"].ne(self.pad_id).sum()))
        return self._step(batch, "train")

    # -- evaluation: teacher-forced loss, then generation and corpus scores ---------------------------------------

    def _eval_step(self, batch: dict[str, Tensor], stage: str) -> None:
        self._step(batch, stage)
        if self.tokenizers is None:
            return
        ids = generate_ids(
            self.model, batch["src"], batch["src_mask"], self.tokenizers, self.decoding[stage], self.words
        )
        self._generated.extend(zip(batch["index"].tolist(), ids, strict=True))

    def _eval_end(self, stage: str) -> None:
        if self.tokenizers is None:
            return
        generated = dict(_gather(self._generated))  # every pair evaluated (a subset with limit_*_batches)
        self._generated = []
        data = self.encoded[stage]
        indices = sorted(generated)
        texts = self.tokenizers.tgt.decode([generated[i] for i in indices])
        self.outputs[stage] = (indices, texts)
        if self.lexicon is not None:
            rate = non_word_rate(self.lexicon, texts, [data.sources[i] for i in indices])
            self.log(f"{stage}/non_word_rate", rate)
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


def _gather(items: list[Any]) -> list[Any]:
    """Every process's items, concatenated (the items themselves under a single process)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return items
    parts: list[list[Any]] = [[] for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather_object(parts, items)
    return [item for part in parts for item in part]
