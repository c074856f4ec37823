"""The base of text-to-text tasks: train, test and predict with an encoder-decoder on a registered text-pair source.

A concrete task (translation, summarization) subclasses `Seq2SeqTask`, names itself, provides its metrics
(`scorer()`) and registers. Data, tokenizers and the model are built before Lightning is imported, so bad paths
and options fail in seconds, with one line; repaired data problems come out as counted `warning: ...` lines.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from attnkit.data.warning import warn
from attnkit.errors import ConfigError
from attnkit.registry import get
from attnkit.tasks.seq2seq.batches import encode_splits, source_limit
from attnkit.tasks.seq2seq.data.base import TextPairs, text_pair_source
from attnkit.tasks.seq2seq.generate import DecodeOptions
from attnkit.tasks.seq2seq.tokenizer import TokenizerOptions, Tokenizers, load_tokenizers
from attnkit.train import run
from attnkit.train.checkpoints import model_from_checkpoint
from attnkit.train.task import Setup, Task, floats


class Scorer:
    """Corpus-level metrics of generated texts against references; `primary` is the one checkpoints select on."""

    primary = "score"

    def __call__(self, hypotheses: list[str], references: list[str]) -> dict[str, float]:
        raise NotImplementedError

    def signatures(self) -> dict[str, str]:
        """How each metric was computed (printed and saved beside the scores)."""
        return {}


@dataclass
class Seq2SeqTask(Task):
    """Base of text-to-text tasks; subclasses set `name`, `title`, `sample_columns`, implement `scorer()` and may
    change `read_inputs` (what predict reads) and `baselines` (scores reported beside the model's).

    Recipe: AdamW with `lr`, `weight_decay`, linear warm-up over `warmup_steps` then cosine decay to
    `min_lr_ratio`; label smoothing. Validation during training decodes with `val_beam` (1 = greedy, fast); the
    final validation and test decode with `beam`, `length_penalty`, at least `min_len` and at most `max_len_a` ·
    source length + `max_len_b` tokens (and at most `max_len`), never repeating an n-gram of words (or of pieces,
    `no_repeat_unit`) if `no_repeat_ngram`, with `repetition_penalty` on tokens already written.
    `test_checkpoint`: `best` (best validation score) or `last`; `samples`: rows of the sample table;
    `tokenizer`: how texts become tokens (see `TokenizerOptions`).
    """

    name: ClassVar[str] = "seq2seq"
    title: ClassVar[str] = "text to text"
    sample_columns: ClassVar[tuple[str, ...]] = ("source", "reference", "hypothesis")
    sample_source_chars: ClassVar[int | None] = None  # sources in the sample table are cut to this many characters

    lr: float = 5e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 1000
    min_lr_ratio: float = 0.0
    label_smoothing: float = 0.1
    beam: int = 5
    val_beam: int = 1
    length_penalty: float = 1.0
    max_len_a: float = 1.5
    max_len_b: int = 10
    no_repeat_ngram: int = 0
    no_repeat_unit: Literal["word", "piece"] = "word"
    repetition_penalty: float = 1.0
    min_len: int = 0
    max_len: int | None = None
    samples: int = 8
    test_checkpoint: Literal["best", "last"] = "best"
    tokenizer: TokenizerOptions = field(default_factory=TokenizerOptions)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.test_checkpoint not in ("best", "last"):
            raise ConfigError(f"task.test_checkpoint={self.test_checkpoint!r} must be best or last")
        if isinstance(self.val_beam, bool) or not isinstance(self.val_beam, int) or self.val_beam < 1:
            raise ConfigError(f"task.val_beam={self.val_beam!r} must be an int >= 1 (1 = greedy search)")
        for key in ("warmup_steps", "samples"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"task.{key}={value!r} must be an int >= 0")
        self.tokenizer = TokenizerOptions.of(self.tokenizer)
        self.decode = DecodeOptions.of(dataclasses.asdict(self))

    @property
    def monitor(self) -> str:  # type: ignore[override]
        return f"val/{self.scorer().primary}"

    def scorer(self) -> Scorer:
        raise NotImplementedError(f"{type(self).__name__} must implement scorer()")

    # -- the hooks of Task ---------------------------------------------------------------------------------------

    def setup(self, cfg: dict[str, Any], overrides: list[str] | None, checkpoint: dict[str, Any] | None) -> Setup:
        """Data, tokenizers (trained, cached or from the checkpoint), the model and the encoded splits."""
        saved = checkpoint["attnkit"] if checkpoint is not None else None
        data_cfg = saved["data"] if saved is not None and not run.overridden(overrides, "data") else cfg["data"]
        source = text_pair_source(data_cfg, self.name)
        pairs = source.load()
        if saved is None:
            tokenizers = load_tokenizers(pairs, self.tokenizer)
            self._check_model(cfg["model"])
        else:
            tokenizers = Tokenizers.from_state(saved["tokenizers"])
        net, context = self.build_model(cfg, vocab(tokenizers), checkpoint)
        stages = ("train", "val", "test") if saved is None else ("test",)
        encoded = encode_splits(
            {name: pairs.split(name) for name in stages},
            tokenizers,
            max_len=getattr(net, "max_len", None),
            on_long=source.on_long,
            max_source_len=source.max_source_len,
        )
        extras = {
            "tokenizers": tokenizers.to_state(),
            "data": data_cfg,
            "on_long": source.on_long,
            "max_source_len": source.max_source_len,
        }
        setup = Setup(source, pairs, data_cfg, context, net, extras=extras)
        setup.tokenizers, setup.encoded = tokenizers, encoded
        return setup

    def example(self, setup: Setup) -> Any:
        from attnkit.tasks.seq2seq.batches import collate

        data, tok = setup.encoded["train"], setup.tokenizers.tgt
        longest = max(range(len(data)), key=lambda i: data.lengths()[i])
        batch = collate([data[longest]], pad_id=tok.pad_id, bos_id=tok.bos_id, eos_id=tok.eos_id)
        return lambda: setup.net(batch["src"], batch["tgt_in"], batch["src_mask"])

    def lightning(self, cfg: dict[str, Any], setup: Setup, checkpoint: dict[str, Any] | None) -> tuple[Any, Any]:
        from torch.utils.data import DataLoader

        from attnkit.tasks.seq2seq.batches import LengthBatchSampler, collate
        from attnkit.tasks.seq2seq.module import Seq2SeqModule
        from attnkit.train.datamodule import SplitsDataModule

        module = self.make_module(Seq2SeqModule, cfg, setup, checkpoint)
        module.attach(setup.tokenizers, self.scorer(), setup.encoded)
        tok, source = setup.tokenizers.tgt, setup.source
        seed = cfg["seed"]

        def loader(split: str, train: bool) -> DataLoader:
            data = setup.encoded[split]
            sampler = LengthBatchSampler(
                data.lengths(), batch_size=source.batch_size, max_tokens=source.max_tokens, shuffle=train, seed=seed
            )
            pad = functools.partial(collate, pad_id=tok.pad_id, bos_id=tok.bos_id, eos_id=tok.eos_id)
            return DataLoader(data, batch_sampler=sampler, collate_fn=pad, num_workers=0)

        return module, SplitsDataModule(loader)

    def train(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        trainer = {**cfg["trainer"], "use_distributed_sampler": False}  # the batch sampler shards by itself
        return super().train({**cfg, "trainer": trainer}, run_dir=run_dir, overrides=overrides)

    def test(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        trainer = {**cfg["trainer"], "use_distributed_sampler": False}
        return super().test({**cfg, "trainer": trainer}, run_dir=run_dir, overrides=overrides)

    def evaluate(self, trainer: Any, module: Any, datamodule: Any, ckpt_path: str | None) -> dict[str, float]:
        """Validation and test, both with the final decoding."""
        module.decoding["val"] = module.decoding["test"]
        val = trainer.validate(module, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
        test = trainer.test(module, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
        return {**floats(val), **floats(test)}

    def metrics(self, setup: Setup, module: Any) -> dict[str, Any]:
        scorer, tokenizers = module.scorer, setup.tokenizers  # the scorer that scored: it knows its signatures
        stages = tuple(stage for stage in ("val", "test") if stage in setup.encoded)
        return {
            **self.baselines(setup.data, scorer, stages),
            "primary_metric": f"test/{scorer.primary}",
            "signatures": scorer.signatures(),
            "decoding": module.decoding["test"].as_dict(),
            "tokenizer": {
                **{k: v for k, v in tokenizers.info.items() if k != "cache"},
                "src_vocab": tokenizers.src.vocab_size,
                "tgt_vocab": tokenizers.tgt.vocab_size,
                "joint": tokenizers.joint,
            },
            "pairs": {name: len(data) for name, data in setup.encoded.items()},
        }

    def artifacts(self, cfg: dict[str, Any], run_dir: Path, module: Any, setup: Setup, metrics: dict) -> dict:
        """<stage>_outputs.jsonl with every generated text, and samples.md (also printed)."""
        from attnkit.tasks.seq2seq.reports import print_samples, sample_rows, write_outputs, write_samples

        rows: list[tuple] = []
        for stage, (indices, texts) in module.outputs.items():
            data = setup.encoded[stage]
            sources, references = [data.sources[i] for i in indices], [data.references[i] for i in indices]
            write_outputs(run_dir / f"{stage}_outputs.jsonl", sources, references, texts)
            if stage == "test":
                rows = sample_rows(sources, references, texts, self.samples)
                if self.sample_source_chars:
                    rows = [(shorten(source, self.sample_source_chars), *rest) for source, *rest in rows]
        if rows:
            print_samples(f"{self.title}: test samples", rows, self.sample_columns)
            write_samples(run_dir / "samples.md", f"{self.title}: test samples", rows, self.sample_columns)
        for name, signature in metrics["signatures"].items():
            print(f"{name} signature: {signature}")
        return {"decoding": ", ".join(f"{k}={v}" for k, v in metrics["decoding"].items())}

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Next-token accuracy stays in metrics.json; the table shows the task's scores (and its baselines')."""
        return super().summary({k: v for k, v in metrics.items() if not k.endswith("/acc")})

    def predict(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        """Generate an output for each text of `read_inputs` (one output line each), saved to prediction.json."""
        from attnkit.data.warning import reported_warnings
        from attnkit.tasks.seq2seq.generate import translate

        ckpt, payload = self.checkpoint(cfg)
        saved = payload["attnkit"]
        texts = self.read_inputs(cfg.get("input"))
        tokenizers = Tokenizers.from_state(saved["tokenizers"])
        decode = DecodeOptions.of(self.saved_recipe(payload, overrides))
        model = model_from_checkpoint(payload)
        on_long = cfg["data"]["on_long"] if run.overridden(overrides, "data.on_long") else saved["on_long"]
        max_source_len = saved.get("max_source_len")
        with reported_warnings():
            outputs, cut = translate(model, texts, tokenizers, decode, on_long=on_long, max_source_len=max_source_len)
            if cut:
                limit, key = source_limit(model.max_len, max_source_len)
                warn(
                    f"truncated {cut} of {len(texts)} inputs to {key}={limit} tokens; "
                    f"set data.on_long=error to refuse them"
                )
        for output in outputs:
            print(output, flush=True)
        result = {
            "checkpoint": str(ckpt),
            "decoding": decode.as_dict(),
            "predictions": [{"source": s, "output": o} for s, o in zip(texts, outputs, strict=True)],
        }
        self.write_prediction(run_dir, result)
        return result

    # -- what tasks may change ---------------------------------------------------------------------------------

    def read_inputs(self, value: Any) -> list[str]:
        """What `mode=predict` generates from: `input="a sentence"`, else every line of stdin."""
        if value is not None and not str(value).strip():
            raise ConfigError('input is empty; give input="a sentence", or leave input unset to read lines from stdin')
        return [str(value)] if value is not None else read_stdin()

    def baselines(self, pairs: TextPairs, scorer: Scorer, stages: tuple[str, ...]) -> dict[str, Any]:
        """Scores of simple baselines on `stages` (e.g. `test/lead_rougeL`), reported beside the model's."""
        return {}

    # -- pieces ------------------------------------------------------------------------------------------------

    def _check_model(self, model_cfg: Any) -> None:
        name = model_cfg.get("name") if isinstance(model_cfg, dict) else model_cfg
        if not callable(getattr(get("model", name), "decode", None)):
            raise ConfigError(f"model={name} is not an encoder-decoder; task={self.name} needs model=transformer")


def shorten(text: str, chars: int) -> str:
    """`text` cut to at most `chars` characters at a word boundary, with an ellipsis when cut."""
    if len(text) <= chars:
        return text
    return text[: max(1, chars - 1)].rsplit(" ", 1)[0] + " …"


def read_stdin() -> list[str]:
    """Lines of standard input (a hint goes to stderr when it is a terminal)."""
    if sys.stdin.isatty():
        print("reading sentences from stdin, one per line; end with Ctrl-D", file=sys.stderr, flush=True)
    lines = [line.rstrip("\n") for line in sys.stdin]
    if not any(line.strip() for line in lines):
        raise ConfigError('nothing to translate on stdin; pipe in lines of text, or give input="a sentence"')
    return lines


def vocab(tokenizers: Tokenizers) -> dict[str, Any]:
    """What the model needs to know of the tokenizers (share_vocab applies only where the config leaves it null)."""
    return {
        "src_vocab": tokenizers.src.vocab_size,
        "tgt_vocab": tokenizers.tgt.vocab_size,
        "pad_id": tokenizers.tgt.pad_id,
        "share_vocab": tokenizers.joint,
    }
