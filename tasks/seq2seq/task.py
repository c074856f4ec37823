"""The base of text-to-text tasks: train, test and predict with an encoder-decoder on a registered text-pair source.

A concrete task (translation, summarization) subclasses `Seq2SeqTask`, names itself, provides its metrics
(`scorer()`) and registers. Data, tokenizers and the model are built before Lightning is imported, so bad paths
and options fail in seconds, with one line; repaired data problems come out as counted `warning: ...` lines.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch

from attnkit.errors import ConfigError, DataError
from attnkit.registry import available, build_spec, get
from attnkit.tasks.seq2seq.batches import EncodedPairs, encode_splits, source_limit
from attnkit.tasks.seq2seq.data.base import DataWarning, TextPairData, TextPairs, warn
from attnkit.tasks.seq2seq.generate import DecodeOptions
from attnkit.tasks.seq2seq.tokenizer import Tokenizers, check_tokenizer_options, load_tokenizers
from attnkit.train import run

DECODE_KEYS = ("beam", "length_penalty", "max_len_a", "max_len_b", "no_repeat_ngram", "min_len", "max_len")


class Scorer:
    """Corpus-level metrics of generated texts against references; `primary` is the one checkpoints select on."""

    primary = "score"

    def __call__(self, hypotheses: list[str], references: list[str]) -> dict[str, float]:
        raise NotImplementedError

    def signatures(self) -> dict[str, str]:
        """How each metric was computed (printed and saved beside the scores)."""
        return {}


class Seq2SeqTask:
    """Base of text-to-text tasks; subclasses set `name`, `title`, `sample_columns` and implement `scorer()`.

    Recipe: AdamW with `lr`, `weight_decay`, linear warm-up over `warmup_steps` then cosine decay to
    `min_lr_ratio`; label smoothing. Validation during training decodes with `val_beam` (1 = greedy, fast); the
    final validation and test decode with `beam`, `length_penalty`, at least `min_len` and at most `max_len_a` ·
    source length + `max_len_b` tokens (and at most `max_len`), never repeating an n-gram if `no_repeat_ngram`.
    `test_checkpoint`: `best` (best validation score) or `last`. `tokenizer`: options of `load_tokenizers`
    (vocab_size, joint, path, tgt_path, min_frequency, lowercase, cache_dir). Subclasses may also change
    `read_inputs` (what predict reads) and `baselines` (scores reported beside the model's).
    """

    name = "seq2seq"
    title = "text to text"
    sample_columns = ("source", "reference", "hypothesis")
    sample_source_chars: int | None = None  # sources in the sample table are cut to this many characters

    def __init__(
        self,
        lr: float = 5e-4,
        weight_decay: float = 1e-4,
        warmup_steps: int = 1000,
        min_lr_ratio: float = 0.0,
        label_smoothing: float = 0.1,
        beam: int = 5,
        val_beam: int = 1,
        length_penalty: float = 1.0,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        no_repeat_ngram: int = 0,
        min_len: int = 0,
        max_len: int | None = None,
        samples: int = 8,
        test_checkpoint: Literal["best", "last"] = "best",
        tokenizer: dict[str, Any] | None = None,
    ) -> None:
        if test_checkpoint not in ("best", "last"):
            raise ConfigError(f"task.test_checkpoint={test_checkpoint!r} must be best or last")
        if isinstance(val_beam, bool) or not isinstance(val_beam, int) or val_beam < 1:
            raise ConfigError(f"task.val_beam={val_beam!r} must be an int >= 1 (1 = greedy search)")
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"task.label_smoothing={label_smoothing!r} must be in [0, 1)")
        for key, value in (("warmup_steps", warmup_steps), ("samples", samples)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"task.{key}={value!r} must be an int >= 0")
        self.decode = DecodeOptions(beam, length_penalty, max_len_a, max_len_b, no_repeat_ngram, min_len, max_len)
        self.recipe = {
            "lr": lr,
            "weight_decay": weight_decay,
            "warmup_steps": warmup_steps,
            "min_lr_ratio": min_lr_ratio,
            "label_smoothing": label_smoothing,
            "val_beam": val_beam,
        }
        self.samples, self.test_checkpoint = samples, test_checkpoint
        self.tokenizer = check_tokenizer_options(tokenizer)

    def scorer(self) -> Scorer:
        raise NotImplementedError(f"{type(self).__name__} must implement scorer()")

    # -- modes -------------------------------------------------------------------------------------------------

    def train(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        """Fit on train (validating each epoch), then score validation and test with the final decoding; report."""
        run.seed(cfg["seed"])
        scorer = self.scorer()
        with reported_warnings() as seen:
            source = self._source(cfg["data"])
            pairs = source.load()
            tokenizers = load_tokenizers(pairs, **self.tokenizer)
            net = self._model(cfg["model"], tokenizers)
            splits = {name: pairs.split(name) for name in ("train", "val", "test")}
            encoded = encode_splits(
                splits,
                tokenizers,
                max_len=getattr(net, "max_len", None),
                on_long=source.on_long,
                max_source_len=source.max_source_len,
            )
        run.save_config(cfg, run_dir)

        from attnkit.tasks.seq2seq.module import Seq2SeqDataModule, Seq2SeqModule
        from attnkit.train.trainer import make_trainer

        datamodule = Seq2SeqDataModule(
            encoded, tokenizers, batch_size=source.batch_size, max_tokens=source.max_tokens, seed=cfg["seed"]
        )
        module = Seq2SeqModule(
            model=cfg["model"], vocab=_vocab(tokenizers), decode=self.decode.as_dict(), net=net, **self.recipe
        )
        module.attach(tokenizers, scorer, self._extras(cfg, tokenizers, self.decode, source))
        monitor = f"val/{scorer.primary}"
        trainer = make_trainer({**cfg["trainer"], "use_distributed_sampler": False}, run_dir, monitor=monitor)
        start = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        fit_s = time.perf_counter() - start
        callback = trainer.checkpoint_callback
        best = callback.best_model_path if callback else ""
        best_score = float(callback.best_model_score) if callback and callback.best_model_score is not None else None
        tested = best if self.test_checkpoint == "best" and best else None  # None: the weights as trained
        module.decoding["val"] = module.decoding["test"]  # the final scores use the final decoding
        val = trainer.validate(module, datamodule=datamodule, ckpt_path=tested, verbose=False)
        test = trainer.test(module, datamodule=datamodule, ckpt_path=tested, verbose=False)
        if not trainer.is_global_zero:
            return {}
        epochs = trainer.current_epoch if not trainer.fast_dev_run else 1
        metrics = {
            **_floats(val),
            **_floats(test),
            **self.baselines(pairs, scorer, ("val", "test")),
            **self._common_metrics(module, scorer, tokenizers, encoded, seen),
            "train_time_s": round(fit_s, 2),
            "epochs": epochs,
            "train_tokens_per_s": round(module.trained_tokens / fit_s, 1) if fit_s > 0 else 0.0,
            f"best_val_{scorer.primary}": best_score,
            "best_checkpoint": str(best),
            "tested": "best" if tested else "last",
        }
        self._report(cfg, run_dir, module, encoded, metrics, title=f"{self.title} — trained")
        return metrics

    def test(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        """Score a checkpoint on the test split of its own data (or of `data=...` given on the command line)."""
        ckpt = run.user_path(
            cfg.get("ckpt_path"), "ckpt_path", "give ckpt_path=outputs/<date>/<time>/checkpoints/best.ckpt"
        )
        payload = self.load_checkpoint(ckpt)
        extras = payload["seq2seq"]
        tokenizers = Tokenizers.from_state(extras["tokenizers"])
        decode = self._decode_options(cfg, overrides, extras)
        scorer = self.scorer()
        with reported_warnings() as seen:
            data_cfg = cfg["data"] if run.overridden(overrides, "data") else extras["data"]
            source = self._source(data_cfg)
            net = model_from_checkpoint(payload)
            pairs = source.load()
            encoded = encode_splits(
                {"test": pairs.test},
                tokenizers,
                max_len=getattr(net, "max_len", None),
                on_long=source.on_long,
                max_source_len=source.max_source_len,
            )

        from attnkit.tasks.seq2seq.module import Seq2SeqDataModule, Seq2SeqModule
        from attnkit.train.trainer import make_trainer

        module = Seq2SeqModule(**{**payload["hyper_parameters"], "decode": decode.as_dict()}, net=net)
        module.attach(tokenizers, scorer, extras)
        datamodule = Seq2SeqDataModule(encoded, tokenizers, batch_size=source.batch_size, max_tokens=source.max_tokens)
        trainer = make_trainer(
            {**cfg["trainer"], "max_epochs": 1, "use_distributed_sampler": False},
            run_dir,
            monitor=f"test/{scorer.primary}",
            checkpoints=False,
        )
        results = trainer.test(module, datamodule=datamodule, verbose=False)
        if not trainer.is_global_zero:
            return {}
        metrics = {
            **_floats(results),
            **self.baselines(pairs, scorer, ("test",)),
            **self._common_metrics(module, scorer, tokenizers, encoded, seen, decode),
            "checkpoint": str(ckpt),
        }
        cfg = {**cfg, "data": data_cfg}
        run.save_config(cfg, run_dir)
        self._report(cfg, run_dir, module, encoded, metrics, title=f"{self.title} — checkpoint evaluated")
        return metrics

    def predict(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        """Generate an output for each text of `read_inputs` (one output line each), saved to prediction.json."""
        from attnkit.tasks.seq2seq.generate import translate
        from attnkit.train.reports import write_json

        ckpt = run.user_path(
            cfg.get("ckpt_path"), "ckpt_path", "give ckpt_path=outputs/<date>/<time>/checkpoints/best.ckpt"
        )
        payload = self.load_checkpoint(ckpt)
        extras = payload["seq2seq"]
        texts = self.read_inputs(cfg.get("input"))
        tokenizers = Tokenizers.from_state(extras["tokenizers"])
        decode = self._decode_options(cfg, overrides, extras)
        model = model_from_checkpoint(payload)
        on_long = cfg["data"]["on_long"] if run.overridden(overrides, "data.on_long") else extras["on_long"]
        max_source_len = extras.get("max_source_len")
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
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "prediction.json", result)
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

    def load_checkpoint(self, ckpt: Path) -> dict[str, Any]:
        """The checkpoint's contents, refused with one line unless a run of this task wrote it."""
        try:
            payload = torch.load(ckpt, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise DataError(
                f"cannot read checkpoint {str(ckpt)!r} ({type(exc).__name__}); give a .ckpt file written by a "
                f"task={self.name} run"
            ) from exc
        extras = payload.get("seq2seq") if isinstance(payload, dict) else None
        if not isinstance(extras, dict) or "tokenizers" not in extras or "state_dict" not in payload:
            hparams = payload.get("hyper_parameters", {}) if isinstance(payload, dict) else {}
            writer = " (it was written by task=vit)" if "data_info" in hparams else ""
            raise ConfigError(
                f"checkpoint {str(ckpt)!r} was not written by task={self.name}{writer}; give a checkpoint of a "
                f"task={self.name} run, or use the task that wrote it (task=...)"
            )
        if extras.get("task") != self.name:
            raise ConfigError(
                f"checkpoint {str(ckpt)!r} was written by task={extras.get('task')}, not task={self.name}; "
                f"run it with task={extras.get('task')}"
            )
        return payload

    def _source(self, data_cfg: Any) -> TextPairData:
        source = build_spec("data", data_cfg)
        if not isinstance(source, TextPairData):
            name = data_cfg.get("name") if isinstance(data_cfg, dict) else data_cfg
            kinds = {n: get("data", n) for n in available("data")}
            choices = [n for n, obj in kinds.items() if isinstance(obj, type) and issubclass(obj, TextPairData)]
            raise ConfigError(
                f"data={name} is not a text-pair source, which task={self.name} needs; choose data={', '.join(choices)}"
            )
        return source

    def _model(self, model_cfg: dict[str, Any], tokenizers: Tokenizers) -> torch.nn.Module:
        name = model_cfg.get("name") if isinstance(model_cfg, dict) else model_cfg
        if not callable(getattr(get("model", name), "decode", None)):
            raise ConfigError(f"model={name} is not an encoder-decoder; task={self.name} needs model=transformer")
        return build_spec("model", model_cfg, **_vocab(tokenizers))

    def _extras(
        self, cfg: dict[str, Any], tokenizers: Tokenizers, decode: DecodeOptions, source: TextPairData
    ) -> dict[str, Any]:
        """What a checkpoint carries for test and predict besides weights and hyperparameters."""
        return {
            "task": self.name,
            "tokenizers": tokenizers.to_state(),
            "data": cfg["data"],
            "decode": decode.as_dict(),
            "on_long": source.on_long,
            "max_source_len": source.max_source_len,
            "config": cfg,
        }

    def _decode_options(
        self, cfg: dict[str, Any], overrides: list[str] | None, extras: dict[str, Any]
    ) -> DecodeOptions:
        """The checkpoint's decoding, with the `task.<key>=...` given on the command line on top."""
        saved = dict(extras.get("decode") or {})
        for key in DECODE_KEYS:
            if run.overridden(overrides, f"task.{key}") or key not in saved:
                saved[key] = cfg["task"].get(key, getattr(self.decode, key))
        return DecodeOptions(**{k: saved[k] for k in DECODE_KEYS})

    def _common_metrics(
        self,
        module: Any,
        scorer: Scorer,
        tokenizers: Tokenizers,
        encoded: dict[str, EncodedPairs],
        seen: list[str],
        decode: DecodeOptions | None = None,
    ) -> dict[str, Any]:
        return {
            "params": sum(p.numel() for p in module.model.parameters()),
            "primary_metric": f"test/{scorer.primary}",
            "signatures": scorer.signatures(),
            "decoding": (decode or self.decode).as_dict(),
            "tokenizer": {
                **{k: v for k, v in tokenizers.info.items() if k != "cache"},
                "src_vocab": tokenizers.src.vocab_size,
                "tgt_vocab": tokenizers.tgt.vocab_size,
                "joint": tokenizers.joint,
            },
            "pairs": {name: len(data) for name, data in encoded.items()},
            "warnings": list(seen),
        }

    def _report(
        self,
        cfg: dict[str, Any],
        run_dir: Path,
        module: Any,
        encoded: dict[str, EncodedPairs],
        metrics: dict[str, Any],
        title: str,
    ) -> None:
        from attnkit.tasks.seq2seq.reports import plot_curves, print_samples, sample_rows, write_outputs, write_samples
        from attnkit.train.reports import print_summary, read_metrics_csv, write_json

        primary = metrics["primary_metric"].split("/", 1)[1]
        rows: list[tuple] = []
        for stage, (indices, texts) in module.outputs.items():
            data = encoded[stage]
            sources, references = [data.sources[i] for i in indices], [data.references[i] for i in indices]
            write_outputs(run_dir / f"{stage}_outputs.jsonl", sources, references, texts)
            if stage == "test":
                rows = sample_rows(sources, references, texts, self.samples)
                if self.sample_source_chars:
                    rows = [(shorten(source, self.sample_source_chars), *rest) for source, *rest in rows]
        if rows:
            print_samples(f"{self.title}: test samples", rows, self.sample_columns)
            write_samples(run_dir / "samples.md", f"{self.title}: test samples", rows, self.sample_columns)
        write_json(run_dir / "metrics.json", metrics)
        plot_curves(
            read_metrics_csv(run_dir / "metrics.csv"),
            run_dir / "learning_curve.png",
            metric=primary,
            title=f"{cfg['task']['name']} on {cfg['data']['name']}",
        )
        summary: dict[str, Any] = {}
        for stage in ("test", "val"):
            for key in (*scorer_keys(metrics, stage), f"{stage}/loss"):
                if key in metrics:
                    summary[key] = metrics[key]
        summary["decoding"] = ", ".join(f"{k}={v}" for k, v in metrics["decoding"].items())
        summary["parameters"] = metrics["params"]
        labels = {
            "train_time_s": "training time (s)",
            "epochs": "epochs",
            "train_tokens_per_s": "throughput (train tokens/s)",
            "tested": "tested weights",
        }
        summary.update({label: metrics[key] for key, label in labels.items() if key in metrics})
        summary["run directory"] = str(run_dir)
        print_summary(title, summary)
        for name, signature in metrics["signatures"].items():
            print(f"{name} signature: {signature}")


def scorer_keys(metrics: dict[str, Any], stage: str) -> list[str]:
    """The metric keys of a stage other than loss and accuracy (e.g. test/bleu, test/chrf)."""
    return [k for k in metrics if k.startswith(f"{stage}/") and k not in (f"{stage}/loss", f"{stage}/acc")]


def shorten(text: str, chars: int) -> str:
    """`text` cut to at most `chars` characters at a word boundary, with an ellipsis when cut."""
    if len(text) <= chars:
        return text
    return text[: max(1, chars - 1)].rsplit(" ", 1)[0] + " …"


def model_from_checkpoint(payload: dict[str, Any]) -> torch.nn.Module:
    """The checkpoint's model in eval mode, as plain PyTorch (no Lightning needed)."""
    hparams = payload["hyper_parameters"]
    model = build_spec("model", hparams["model"], **hparams["vocab"])
    state = {k.removeprefix("model."): v for k, v in payload["state_dict"].items() if k.startswith("model.")}
    model.load_state_dict(state)
    return model.eval()


@contextlib.contextmanager
def reported_warnings() -> Iterator[list[str]]:
    """Print each DataWarning raised inside as one `warning: ...` line on stderr; the messages are collected."""
    seen: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            yield seen
        finally:
            for w in caught:
                if issubclass(w.category, DataWarning):
                    seen.append(str(w.message))
                    print(f"warning: {w.message}", file=sys.stderr, flush=True)
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def read_stdin() -> list[str]:
    """Lines of standard input (a hint goes to stderr when it is a terminal)."""
    if sys.stdin.isatty():
        print("reading sentences from stdin, one per line; end with Ctrl-D", file=sys.stderr, flush=True)
    lines = [line.rstrip("\n") for line in sys.stdin]
    if not any(line.strip() for line in lines):
        raise ConfigError('nothing to translate on stdin; pipe in lines of text, or give input="a sentence"')
    return lines


def _vocab(tokenizers: Tokenizers) -> dict[str, Any]:
    """What the model needs to know of the tokenizers (share_vocab applies only where the config leaves it null)."""
    return {
        "src_vocab": tokenizers.src.vocab_size,
        "tgt_vocab": tokenizers.tgt.vocab_size,
        "pad_id": tokenizers.tgt.pad_id,
        "share_vocab": tokenizers.joint,
    }


def _floats(results: list[dict[str, Any]]) -> dict[str, float]:
    return {k: float(v) for k, v in (results[0] if results else {}).items()}
