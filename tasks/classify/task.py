"""The `classify` task: one label per token sequence (ListOps, sentiment, ...): an encoder, pooling and a head.

Labelled texts are text pairs whose target is the label: `data=listops` (built in), `data=text_files` and
`data=hf_text` (`data.src` names the text field, `data.tgt` the label field).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch.utils.data import DataLoader

from attnkit.errors import ConfigError
from attnkit.ranges import Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat, Rate
from attnkit.registry import register
from attnkit.tasks.classify.labels import majority_baseline
from attnkit.tasks.classify.sequences import collate, encode_labelled, label_names
from attnkit.text import LengthBatchSampler, TokenizerOptions, Tokenizers, load_tokenizers, text_pair_source
from attnkit.train import run
from attnkit.train.checkpoints import model_from_checkpoint
from attnkit.train.task import Given, LoadedData, Setup, Task


@register("task", "classify")
@dataclass
class ClassifyTask(Task):
    """Sequence classification: accuracy beside the majority class, throughput and peak memory.

    AdamW (`lr`, `weight_decay`) with linear warm-up over `warmup_steps` then cosine decay to `min_lr_ratio`;
    label smoothing; evaluation with a moving average of the weights (`ema_decay`, 0 = off;
    `ema_warmup`: null = only in runs too short to forget their initial weights); `test_checkpoint`:
    `best` validation accuracy or `last`; `tokenizer`: words (default: space-separated symbols, as ListOps),
    chars or bpe, trained on the training texts.
    """

    name: ClassVar[str] = "classify"
    title: ClassVar[str] = "sequence classification"
    batches_shard: ClassVar[bool] = True

    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.05
    warmup_steps: NonNegativeInt = 200
    min_lr_ratio: Fraction = 0.01
    label_smoothing: Rate = 0.0
    ema_decay: Rate = 0.0
    ema_warmup: bool | None = None
    test_checkpoint: Literal["best", "last"] = "best"
    tokenizer: TokenizerOptions = field(
        default_factory=lambda: TokenizerOptions(kind="words", vocab_size=8000, joint=False, min_frequency=1)
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.tokenizer = TokenizerOptions.of(self.tokenizer)

    def load(self, cfg: dict[str, Any], given: Given) -> LoadedData:
        """The labelled-text source of the data config (a test's: the checkpoint's) and its texts."""
        data_cfg = self.data_config(cfg, given)
        source = text_pair_source(data_cfg, self.name, "labelled-text")
        return LoadedData(source, source.load(), data_cfg)

    def setup(self, cfg: dict[str, Any], loaded: LoadedData, given: Given) -> Setup:
        source, pairs = loaded.source, loaded.data
        saved = given.checkpoint["attnkit"] if given.checkpoint is not None else None
        if saved is None:
            tokenizer = load_tokenizers(pairs, self.tokenizer).src
            classes = label_names([label for _, label in pairs.train])
            if len(classes) < 2:
                raise ConfigError(
                    f"the training split has a single label ({classes[0]!r}); a classifier needs at least two "
                    f"classes: check data.tgt (the label field)"
                )
        else:
            tokenizer = Tokenizers.from_state(saved["tokenizers"]).src
            classes = list(saved["classes"])
        context = {"vocab_size": tokenizer.vocab_size, "num_classes": len(classes), "pad_id": tokenizer.pad_id}
        net, context = self.build_model(cfg, context, given.checkpoint)
        stages = ("train", "val", "test") if saved is None else ("test",)
        limit = source.max_source_len or getattr(net, "max_len", None)
        key = "data.max_source_len" if source.max_source_len else "model.max_len"
        encoded = encode_labelled(
            {s: pairs.split(s) for s in stages},
            tokenizer,
            classes,
            max_len=limit,
            on_long=source.on_long,
            limit_key=key,
        )
        extras = {
            "data": loaded.cfg,
            "classes": classes,
            "tokenizers": Tokenizers(tokenizer, tokenizer, {}).to_state(),
            "max_len": limit,
        }
        return Setup(loaded, context, net, extras=extras, encoded=encoded)

    def example(self, setup: Setup) -> Any:
        data = setup.encoded["train"]
        lengths = data.lengths()
        tokens, mask, _ = collate([data[max(range(len(data)), key=lengths.__getitem__)]], setup.context["pad_id"])
        return lambda: setup.net(tokens, mask)

    def lightning(self, cfg: dict[str, Any], setup: Setup, checkpoint: dict[str, Any] | None) -> tuple[Any, Any]:
        # Lightning is imported only when a run starts: it takes seconds, which --help and mode=list do not pay
        from attnkit.tasks.classify.module import SequenceClassifierModule
        from attnkit.train.datamodule import SplitsDataModule

        pad = functools.partial(collate, pad_id=setup.context["pad_id"])
        source, seed = setup.source, cfg["seed"]

        def loader(split: str, train: bool) -> DataLoader:
            data = setup.encoded[split]
            sampler = LengthBatchSampler(
                data.lengths(), batch_size=source.batch_size, max_tokens=source.max_tokens, shuffle=train, seed=seed
            )
            return DataLoader(data, batch_sampler=sampler, collate_fn=pad, num_workers=0)

        return self.make_module(SequenceClassifierModule, cfg, setup, checkpoint), SplitsDataModule(loader)

    def metrics(self, setup: Setup, module: Any) -> dict[str, Any]:
        baseline = majority_baseline(setup.data, "test")
        lengths = [n for data in setup.encoded.values() for n in data.lengths()]
        return {
            "test/majority_acc": baseline.share,
            "majority_class": baseline.label,
            "classes": len(setup.extras["classes"]),
            "sequences": {name: len(data) for name, data in setup.encoded.items()},
            "tokens_per_sequence": {
                "min": min(lengths),
                "mean": round(sum(lengths) / len(lengths), 1),
                "max": max(lengths),
            },
        }

    def predict(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        """Classify `input="a text"`, each line of the file `input=texts.txt`, or each line of stdin: print the label
        and its probability."""

        ckpt, payload = self.checkpoint(cfg, overrides)
        saved = payload["attnkit"]
        fix = 'give input="a text" or input=texts.txt, or leave input unset to read lines from stdin'
        empty = 'nothing to classify on stdin; pipe in lines of text, or give input="a text"'
        texts = run.text_inputs(cfg.get("input"), fix) or run.stdin_lines("texts", empty)
        tokenizer = Tokenizers.from_state(saved["tokenizers"]).src
        model = model_from_checkpoint(payload)
        classes, limit = saved["classes"], saved["max_len"]
        ids = [x[:limit] if limit else x for x in tokenizer.encode(texts)]
        predictions = []
        with torch.no_grad():
            for start in range(0, len(ids), 64):
                chunk = [(x or [tokenizer.unk_id], 0) for x in ids[start : start + 64]]
                tokens, mask, _ = collate(chunk, pad_id=tokenizer.pad_id)
                probs = torch.softmax(model(tokens, mask), dim=-1)
                for row in probs:
                    p, i = row.max(dim=-1)
                    predictions.append({"label": classes[int(i)], "probability": round(float(p), 4)})
        for text, prediction in zip(texts, predictions, strict=True):
            print(f"{prediction['label']}\t{prediction['probability']:.4f}\t{text[:80]}", flush=True)
        result = {
            "checkpoint": str(ckpt),
            "predictions": [{"input": t, **p} for t, p in zip(texts, predictions, strict=True)],
        }
        self.write_prediction(run_dir, result)
        return result
