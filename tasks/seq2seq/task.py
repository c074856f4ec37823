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
from attnkit.errors import ConfigError, DataError
from attnkit.registry import did_you_mean, get
from attnkit.tasks.seq2seq.batches import encode_splits, source_limit
from attnkit.tasks.seq2seq.data.base import TextPairs, text_pair_source
from attnkit.tasks.seq2seq.denoise import DenoiseOptions, encode_documents, read_texts
from attnkit.tasks.seq2seq.generate import DecodeOptions
from attnkit.tasks.seq2seq.tokenizer import TokenizerOptions, Tokenizers, load_tokenizers
from attnkit.train import init_from, run
from attnkit.train.checkpoints import model_from_checkpoint, read
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

    `objective`: `supervised` (source -> target pairs) or `denoise`: self-supervised pretraining on the data's
    source documents alone (and the extra texts of `denoise.texts`), BART's noise as `denoise` says (see
    tasks/seq2seq/denoise.py). A denoising run validates and tests on loss and next-token accuracy, without
    generating; the best checkpoint is the lowest val/loss. `init_from=<a seq2seq run>` then fine-tunes from it
    with the checkpoint's tokenizers.
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
    tokenizer: TokenizerOptions = field(default_factory=lambda: TokenizerOptions(vocab_size=None))
    objective: Literal["supervised", "denoise"] = "supervised"
    denoise: DenoiseOptions = field(default_factory=DenoiseOptions)

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
        if self.objective not in OBJECTIVES:
            raise ConfigError(
                f"task.objective={self.objective!r} is not an objective{did_you_mean(str(self.objective), OBJECTIVES)};"
                f" choose {' or '.join(OBJECTIVES)}"
            )
        self.denoise = DenoiseOptions.of(self.denoise)
        if self.denoise.texts and not self.denoising:
            raise ConfigError(
                "task.denoise.texts is set but task.objective=supervised trains on pairs only; set "
                "task.objective=denoise to pretrain on them, or drop task.denoise.texts"
            )
        self.decode = DecodeOptions.of(dataclasses.asdict(self))

    @property
    def denoising(self) -> bool:
        return self.objective == "denoise"

    @property
    def monitor(self) -> str:  # type: ignore[override]
        return "val/loss" if self.denoising else f"val/{self.scorer().primary}"

    @property
    def monitor_mode(self) -> str:  # type: ignore[override]
        return "min" if self.denoising else "max"

    def scorer(self) -> Scorer:
        raise NotImplementedError(f"{type(self).__name__} must implement scorer()")

    # -- the hooks of Task ---------------------------------------------------------------------------------------

    def setup(self, cfg: dict[str, Any], overrides: list[str] | None, checkpoint: dict[str, Any] | None) -> Setup:
        """Data, tokenizers (trained, cached, from the checkpoint, or from the `init_from` run's checkpoint), the
        model and the encoded splits (text pairs; or noised documents and their originals with `objective=denoise`)."""
        saved = checkpoint["attnkit"] if checkpoint is not None else None
        data_cfg = saved["data"] if saved is not None and not run.overridden(overrides, "data") else cfg["data"]
        source = text_pair_source(data_cfg, self.name)
        pairs = source.load()
        chosen = None
        if saved is None:  # the values the config leaves null: init_from's sizes, else chosen from the pairs
            started = self._init_checkpoint(cfg)
            cfg = self._sizes_of(cfg, *started) if started else cfg
            cfg, chosen = self._size_recipe(cfg, pairs, overrides)
        extra = read_texts(self.denoise.texts) if self.denoising and saved is None else []
        pretrained = None
        if saved is None:
            self._check_model(cfg["model"])
            pretrained = self._pretrained(cfg, overrides)
            tokenizers = (
                pretrained.pop("_tokenizers")
                if pretrained
                else load_tokenizers(pairs, self.tokenizer, extra_texts=extra)
            )
        else:
            tokenizers = Tokenizers.from_state(saved["tokenizers"])
        net, context = self.build_model(cfg, vocab(tokenizers), checkpoint)
        stages = ("train", "val", "test") if saved is None else ("test",)
        limits = {
            "max_len": getattr(net, "max_len", None),
            "on_long": source.on_long,
            "max_source_len": source.max_source_len,
        }
        extras: dict[str, Any] = {}
        if self.denoising:
            documents = {name: [document for document, _ in pairs.split(name)] for name in stages}
            if "train" in documents:
                documents["train"] += extra
            encoded: dict[str, Any] = encode_documents(
                documents, tokenizers, options=self.denoise, seed=int(cfg["seed"]), **limits
            )
            extras["denoise"] = {
                "documents": {name: len(docs) for name, docs in documents.items()},
                "extra_documents": len(extra),
                **dataclasses.asdict(self.denoise),
            }
        else:
            encoded = encode_splits({name: pairs.split(name) for name in stages}, tokenizers, **limits)
        if pretrained:
            extras["pretrained"] = pretrained
        elif saved is not None and "pretrained" in saved:
            extras["pretrained"] = saved["pretrained"]
        extras = {
            "tokenizers": tokenizers.to_state(),
            "data": data_cfg,
            "on_long": source.on_long,
            "max_source_len": source.max_source_len,
            **extras,
        }
        setup = Setup(source, pairs, data_cfg, context, net, extras=extras, config=cfg if chosen else None)
        setup.tokenizers, setup.encoded = tokenizers, encoded
        return setup

    def _size_recipe(
        self, cfg: dict[str, Any], pairs: TextPairs, overrides: list[str] | None
    ) -> tuple[dict[str, Any], Any]:
        """`cfg` with what it leaves null (vocabulary, width, depth, dropout, epochs) chosen for the training pairs by
        the rule of `attnkit.tasks.seq2seq.recipe`, said in one line; the task's fields follow."""
        from attnkit.tasks.seq2seq.recipe import fill

        task_cfg = {**dict(cfg.get("task") or {}), **self.recipe()}
        filled, recipe, line = fill(
            {**cfg, "task": task_cfg}, pairs.train, lowercase=self.tokenizer.lowercase, overrides=overrides
        )
        if recipe is None:
            return cfg, None
        print(line, flush=True)
        self.tokenizer = TokenizerOptions.of(filled["task"]["tokenizer"])
        self.warmup_steps = int(filled["task"]["warmup_steps"])
        return filled, recipe

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
        if self.denoising:  # no tokenizers: evaluation logs loss and accuracy, it generates nothing
            module.attach(None, None, setup.encoded)  # type: ignore[arg-type]
        else:
            module.attach(setup.tokenizers, self.scorer(), setup.encoded)
        tok, source = setup.tokenizers.tgt, setup.source
        seed = cfg["seed"]

        def loader(split: str, train: bool) -> DataLoader:
            data = setup.encoded[split]
            sampler = LengthBatchSampler(
                data.lengths(),
                batch_size=source.batch_size,
                max_tokens=source.max_tokens,
                shuffle=train,
                seed=seed,
                on_epoch=getattr(data, "set_epoch", None) if train else None,  # fresh noise every epoch
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
        tokenizers = setup.tokenizers
        tokenizer = {
            **{k: v for k, v in tokenizers.info.items() if k != "cache"},
            "src_vocab": tokenizers.src.vocab_size,
            "tgt_vocab": tokenizers.tgt.vocab_size,
            "joint": tokenizers.joint,
        }
        pairs = {name: len(data) for name, data in setup.encoded.items()}
        pretrained = {"pretrained": setup.extras["pretrained"]} if "pretrained" in setup.extras else {}
        if self.denoising:
            denoise = setup.extras["denoise"]
            return {
                "objective": "denoise",
                "primary_metric": "test/loss",
                "denoise": denoise,
                "tokenizer": tokenizer,
                **pretrained,
            }
        scorer = module.scorer  # the scorer that scored: it knows its signatures
        stages = tuple(stage for stage in ("val", "test") if stage in setup.encoded)
        return {
            **self.baselines(setup.data, scorer, stages),
            "objective": "supervised",
            "primary_metric": f"test/{scorer.primary}",
            "signatures": scorer.signatures(),
            "decoding": module.decoding["test"].as_dict(),
            "tokenizer": tokenizer,
            "pairs": pairs,
            **pretrained,
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
        if self.denoising:
            self._noise_samples(run_dir, setup)
            denoise = metrics["denoise"]
            docs = denoise["documents"]
            counted = ", ".join(f"{docs[name]:,} {name}" for name in ("train", "val", "test") if name in docs)
            extra = f" ({denoise['extra_documents']:,} from task.denoise.texts)" if denoise["extra_documents"] else ""
            options = DenoiseOptions.of({k: denoise[k] for k in ("mask_ratio", "span_mean", "permute_sentences")})
            return {"objective": f"denoise: {counted} documents{extra}; {options.describe()}"}
        for name, signature in metrics["signatures"].items():
            print(f"{name} signature: {signature}")
        rows = {"decoding": ", ".join(f"{k}={v}" for k, v in metrics["decoding"].items())}
        if "pretrained" in metrics:
            rows["pretrained"] = describe_pretrained(metrics["pretrained"])
        return rows

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Next-token accuracy stays in metrics.json; the table shows the task's scores (and its baselines'); a
        denoising run's only scores are loss and accuracy, both shown."""
        if self.denoising:
            return super().summary(metrics)
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

    def _noise_samples(self, run_dir: Path, setup: Setup) -> None:
        """samples.md of a denoising run: what the encoder reads (the noise of epoch 0) beside the document."""
        from attnkit.tasks.seq2seq.reports import sample_rows, write_samples

        data = setup.encoded.get("test")
        if data is None or not self.samples:
            return
        rows = sample_rows(list(range(len(data))), data.references, data.references, self.samples)
        tokenizer = setup.tokenizers.src.tokenizer
        rows = [(tokenizer.decode(data.noised(i, epoch=0), skip_special_tokens=False), ref) for i, ref, _ in rows]
        if self.sample_source_chars:
            rows = [tuple(shorten(text, self.sample_source_chars) for text in row) for row in rows]
        write_samples(run_dir / "samples.md", f"{self.title}: denoising, test samples", rows, ("noised", "document"))

    def _pretrained(self, cfg: dict[str, Any], overrides: list[str] | None) -> dict[str, Any] | None:
        """With `init_from=<a checkpoint of a task=<this task> run>`: what that run was (printed in one line, kept in
        metrics.json as `pretrained`) and, under `_tokenizers`, its tokenizers, which this run reuses (the weights
        it starts from were trained for them); None for any other `init_from` (a state dict: `init_from.apply`
        reads it, or refuses it in one line)."""
        started = self._init_checkpoint(cfg)
        if started is None:
            return None
        value, (path, payload) = cfg.get("init_from"), started
        marker = payload["attnkit"]
        recipe = (payload.get("hyper_parameters") or {}).get("task") or {}
        theirs, mine = recipe.get("tokenizer") or {}, dataclasses.asdict(self.tokenizer)
        for key in mine:
            if run.overridden(overrides, f"task.tokenizer.{key}") and key in theirs and theirs[key] != mine[key]:
                raise ConfigError(
                    f"task.tokenizer.{key}={mine[key]} differs from the {theirs[key]} of init_from={value}, whose "
                    f"tokenizers this run reuses (the weights it starts from were trained for them); drop the "
                    f"task.tokenizer.{key} override"
                )
        tokenizers = Tokenizers.from_state(marker["tokenizers"])
        tokenizers.info = {"origin": "init_from", "path": str(path)}
        info: dict[str, Any] = {"path": str(path), "objective": recipe.get("objective", "supervised")}
        if info["objective"] == "denoise":
            info["denoise"] = marker.get("denoise", {})
        info.update(_run_record(path, payload))
        info["tokenizers"] = f"reused ({tokenizers.src.vocab_size:,} tokens{', joint' if tokenizers.joint else ''})"
        print(f"init_from: {describe_pretrained(info)}", flush=True)
        return {**info, "_tokenizers": tokenizers}

    def _init_checkpoint(self, cfg: dict[str, Any]) -> tuple[Path, dict[str, Any]] | None:
        """(path, checkpoint) if `init_from` is a checkpoint of a run of this task (with its tokenizers), else None."""
        value = cfg.get("init_from")
        if value in (None, ""):
            return None
        path = init_from.resolve(value, self.name)
        if path.suffix.lower() == ".safetensors":
            return None
        try:
            payload = read(path, self.name)
        except DataError:
            return None
        marker = payload.get("attnkit") if isinstance(payload, dict) else None
        if not isinstance(marker, dict) or marker.get("task") != self.name or not marker.get("tokenizers"):
            return None
        return path, payload

    def _sizes_of(self, cfg: dict[str, Any], path: Path, payload: dict[str, Any]) -> dict[str, Any]:
        """`cfg` with the model sizes it leaves null (`model.dim`, `model.depth`, `model.decoder_depth`) taken from the
        `init_from` checkpoint, whose weights must fit, instead of the size rule's (said in one line); the
        vocabulary is the checkpoint's already (its tokenizers are reused)."""
        theirs = (payload.get("hyper_parameters") or {}).get("model") or {}
        mine = dict(cfg.get("model") or {})
        taken = {key: theirs[key] for key in SIZES if mine.get(key) is None and theirs.get(key) is not None}
        vocab_size = ((payload["hyper_parameters"].get("task") or {}).get("tokenizer") or {}).get("vocab_size")
        if self.tokenizer.vocab_size is None and vocab_size is not None:
            self.tokenizer = dataclasses.replace(self.tokenizer, vocab_size=int(vocab_size))
        if not taken:
            return cfg
        sizes = ", ".join(f"model.{key}={value}" for key, value in taken.items())
        print(f"init_from: {sizes} as in {path} (its weights must fit; give them to choose yourself)", flush=True)
        return {**cfg, "model": {**mine, **taken}}

    def _check_model(self, model_cfg: Any) -> None:
        name = model_cfg.get("name") if isinstance(model_cfg, dict) else model_cfg
        if not callable(getattr(get("model", name), "decode", None)):
            raise ConfigError(f"model={name} is not an encoder-decoder; task={self.name} needs model=transformer")


OBJECTIVES = ("supervised", "denoise")
SIZES = ("dim", "depth", "decoder_depth")  # model keys an init_from checkpoint fixes when the config leaves them


def _run_record(path: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """How long the run that wrote checkpoint `path` trained and its final losses: from the metrics.json of its run
    directory when there is one, else from the checkpoint (steps and the best val/loss its checkpoint callback saw)."""
    import json

    record: dict[str, Any] = {}
    metrics_file = path.parent.parent / "metrics.json" if path.parent.name == "checkpoints" else None
    try:
        saved = json.loads(metrics_file.read_text()) if metrics_file is not None else {}
    except (OSError, ValueError):
        saved = {}
    for key in ("epochs", "steps", "val/loss", "test/loss", "train_time_s"):
        if isinstance(saved.get(key), (int, float)):
            record[key] = saved[key]
    if "steps" not in record and isinstance(payload.get("global_step"), int):
        record["steps"] = payload["global_step"]
    if "val/loss" not in record:
        for key, state in (payload.get("callbacks") or {}).items():
            monitor = state.get("monitor") if isinstance(state, dict) else None
            if str(key).startswith("ModelCheckpoint") and monitor == "val/loss" and state.get("best_model_score"):
                record["best val/loss"] = round(float(state["best_model_score"]), 4)
    return record


def describe_pretrained(info: dict[str, Any]) -> str:
    """One line: the run an `init_from` checkpoint comes from, as `Seq2SeqTask._pretrained` records it."""
    parts = []
    denoise = info.get("denoise") or {}
    if denoise:
        train = (denoise.get("documents") or {}).get("train")
        extra = denoise.get("extra_documents", 0)
        if train is not None:
            parts.append(f"{train:,} documents" + (f" ({extra:,} from task.denoise.texts)" if extra else ""))
    for key, label in (("epochs", "epochs"), ("steps", "steps")):
        if key in info:
            parts.append(f"{info[key]:,} {label}")
    for key in ("val/loss", "best val/loss", "test/loss"):
        if key in info:
            parts.append(f"{key} {info[key]:.4f}")
    if denoise:
        options = DenoiseOptions.of(
            {k: v for k, v in denoise.items() if k in ("mask_ratio", "span_mean", "permute_sentences")}
        )
        parts.append(options.describe())
    kind = "a denoising (self-supervised) run" if info.get("objective") == "denoise" else "a supervised run"
    return f"starts from {kind} ({'; '.join(parts)}), {info['path']}; tokenizers {info.get('tokenizers', 'reused')}"


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
