"""The base of text-to-text tasks: train, test and predict with an encoder-decoder on a registered text-pair source.

A concrete task (translation, summarization) subclasses `Seq2SeqTask`, names itself, provides its metrics
(`scorer()`) and registers. Data, tokenizers and the model are built before Lightning is imported, so bad paths
and options fail in seconds, with one line; repaired data problems come out as counted `warning: ...` lines.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from torch.utils.data import DataLoader

from attnkit.data.warning import reported_warnings, warn
from attnkit.errors import ConfigError
from attnkit.ranges import Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Range, Rate
from attnkit.registry import did_you_mean, get
from attnkit.tasks.seq2seq.batches import collate, encode_splits, source_limit
from attnkit.tasks.seq2seq.denoise import (
    OPTION_KEYS,
    DenoiseOptions,
    describe_pretrained,
    encode_documents,
    pretrained_info,
    read_texts,
)
from attnkit.tasks.seq2seq.generate import DecodeOptions, translate
from attnkit.tasks.seq2seq.recipe import fill
from attnkit.tasks.seq2seq.reports import print_samples, sample_rows, write_outputs, write_samples
from attnkit.text import LengthBatchSampler, TextPairs, TokenizerOptions, Tokenizers, load_tokenizers, text_pair_source
from attnkit.text.words import MARKS, Lexicon, WordConstraint
from attnkit.train import run
from attnkit.train.checkpoints import model_from_checkpoint
from attnkit.train.task import Given, LoadedData, Resolved, Setup, Task, floats


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
    `no_repeat_unit`) if `no_repeat_ngram`, with `repetition_penalty` on tokens already written, and, with `words`
    `real` (the default), finishing only words of the training text or of the source (`free`: any string of pieces).
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
    inherits: ClassVar[tuple[str, ...]] = ("dim", "depth", "decoder_depth")  # an init_from run's, where left null
    batches_shard: ClassVar[bool] = True
    # what test and predict take from the command line: how to decode, the sample table, what to do with long inputs
    evaluation_keys: ClassVar[tuple[str, ...]] = (
        *(f"task.{f.name}" for f in dataclasses.fields(DecodeOptions)),
        "task.samples",
        "data.on_long",
    )

    lr: PositiveFloat = 5e-4
    weight_decay: NonNegativeFloat = 1e-4
    warmup_steps: NonNegativeInt = 1000
    min_lr_ratio: Fraction = 0.0
    label_smoothing: Rate = 0.1
    beam: PositiveInt = 5
    val_beam: PositiveInt = 1
    length_penalty: Annotated[float, Range()] = 1.0
    max_len_a: NonNegativeFloat = 1.5
    max_len_b: NonNegativeInt = 10
    no_repeat_ngram: NonNegativeInt = 0
    no_repeat_unit: Literal["word", "piece"] = "word"
    repetition_penalty: PositiveFloat = 1.0
    min_len: NonNegativeInt = 0
    max_len: PositiveInt | None = None
    words: Literal["real", "free"] = "real"
    samples: NonNegativeInt = 8
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

    def load(self, cfg: dict[str, Any], given: Given) -> LoadedData:
        """The text-pair source of the data config (a test's: the checkpoint's) and its pairs."""
        data_cfg = self.data_config(cfg, given)
        source = text_pair_source(data_cfg, self.name)
        return LoadedData(source, source.load(), data_cfg)

    @classmethod
    def check_config(cls, cfg: dict[str, Any]) -> None:
        """Before anything runs (attnkit.schema): the model must be an encoder-decoder."""
        _check_model(cfg["model"], cls.name)

    def resolve(self, cfg: dict[str, Any], loaded: LoadedData, given: Given) -> Resolved:
        """What the config leaves null (vocabulary, width, depth, dropout, epochs) chosen for the training pairs by
        the rule of `attnkit.tasks.seq2seq.recipe`; with `init_from` a run of this task, the vocabulary is that run's
        (its tokenizers are reused)."""
        _check_model(cfg["model"], self.name)
        pretrained = given.start.checkpoint if given.start is not None else None
        if pretrained is not None:
            theirs = run.value(pretrained, "hyper_parameters.task.tokenizer") or {}
            for key, mine in dataclasses.asdict(self.tokenizer).items():
                if run.overridden(given.overrides, f"task.tokenizer.{key}") and theirs.get(key, mine) != mine:
                    raise ConfigError(
                        f"task.tokenizer.{key}={mine} differs from the {theirs[key]} of init_from={cfg['init_from']}, "
                        f"whose tokenizers this run reuses (the weights it starts from were trained for them); drop "
                        f"the task.tokenizer.{key} override"
                    )
            if self.tokenizer.vocab_size is None and theirs.get("vocab_size") is not None:
                cfg = run.with_values(cfg, {"task.tokenizer.vocab_size": int(theirs["vocab_size"])})
        filled, recipe, line = fill(
            cfg,
            loaded.data.train,
            batch_size=int(loaded.source.batch_size),
            lowercase=self.tokenizer.lowercase,
            overrides=given.overrides,
        )
        return Resolved(filled, recipe, [line] if line else [])

    def setup(self, cfg: dict[str, Any], loaded: LoadedData, given: Given) -> Setup:
        """Tokenizers (trained, cached, from the checkpoint, or from the `init_from` run's checkpoint), the model and
        the encoded splits (text pairs; or noised documents and their originals with `objective=denoise`)."""
        source, pairs, saved = loaded.source, loaded.data, given.checkpoint
        marker = saved["attnkit"] if saved is not None else None
        pretrained = given.start.checkpoint if given.start is not None else None
        extra = read_texts(self.denoise.texts) if self.denoising and marker is None else []
        extras: dict[str, Any] = {}
        if marker is not None:
            tokenizers = Tokenizers.from_state(marker["tokenizers"])
            if "pretrained" in marker:
                extras["pretrained"] = marker["pretrained"]
        elif pretrained is not None:  # the weights it starts from were trained for its tokenizers
            tokenizers = Tokenizers.from_state(pretrained["attnkit"]["tokenizers"])
            tokenizers.info = {"origin": "init_from", "path": str(given.start.path)}
            extras["pretrained"] = pretrained_info(given.start, tokenizers)
            print(f"init_from: {describe_pretrained(extras['pretrained'])}", flush=True)
        else:
            tokenizers = load_tokenizers(pairs, self.tokenizer, extra_texts=extra)
        net, context = self.build_model(cfg, vocab(tokenizers), saved)
        stages = ("train", "val", "test") if marker is None else ("test",)
        limits = {
            "max_len": getattr(net, "max_len", None),
            "on_long": source.on_long,
            "max_source_len": source.max_source_len,
        }
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
        if not self.denoising:  # the words outputs may use; a checkpoint made before they were kept: the data's
            known = marker.get("words") if marker is not None else None
            lexicon = Lexicon(known) if known is not None else Lexicon.of(t for pair in pairs.train for t in pair)
            extras["words"] = lexicon.to_state()
        extras = {
            "tokenizers": tokenizers.to_state(),
            "data": loaded.cfg,
            "on_long": source.on_long,
            "max_source_len": source.max_source_len,
            **extras,
        }
        return Setup(loaded, context, net, extras=extras, encoded=encoded, tokenizers=tokenizers)

    def example(self, setup: Setup) -> Any:
        data, tok = setup.encoded["train"], setup.tokenizers.tgt
        longest = max(range(len(data)), key=lambda i: data.lengths()[i])
        batch = collate([data[longest]], pad_id=tok.pad_id, bos_id=tok.bos_id, eos_id=tok.eos_id)
        return lambda: setup.net(batch["src"], batch["tgt_in"], batch["src_mask"])

    def lightning(self, cfg: dict[str, Any], setup: Setup, checkpoint: dict[str, Any] | None) -> tuple[Any, Any]:
        # Lightning is imported only when a run starts: it takes seconds, which --help and mode=list do not pay
        from attnkit.tasks.seq2seq.module import Seq2SeqModule
        from attnkit.train.datamodule import SplitsDataModule

        module = self.make_module(Seq2SeqModule, cfg, setup, checkpoint)
        if self.denoising:  # no tokenizers: evaluation logs loss and accuracy, it generates nothing
            module.attach(None, None, setup.encoded)  # type: ignore[arg-type]
        else:
            module.attach(setup.tokenizers, self.scorer(), setup.encoded, Lexicon(setup.extras["words"]))
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
            "known_words": len(module.lexicon) if module.lexicon is not None else None,
            "tokenizer": tokenizer,
            "pairs": pairs,
            **pretrained,
        }

    def artifacts(self, cfg: dict[str, Any], run_dir: Path, module: Any, setup: Setup, metrics: dict) -> dict:
        """<stage>_outputs.jsonl with every generated text, and samples.md (also printed)."""
        rows: list[tuple] = []
        lexicon: Lexicon | None = module.lexicon
        for stage, (indices, texts) in module.outputs.items():
            data = setup.encoded[stage]
            sources, references = [data.sources[i] for i in indices], [data.references[i] for i in indices]
            pairs = list(zip(texts, sources, strict=True))
            bad = [lexicon.non_words(t, s) for t, s in pairs] if lexicon is not None else None
            write_outputs(run_dir / f"{stage}_outputs.jsonl", sources, references, texts, bad)
            if stage == "test":
                shown = [lexicon.mark(t, s) for t, s in pairs] if lexicon is not None else texts
                rows = sample_rows(sources, references, shown, self.samples)
                if self.sample_source_chars:
                    rows = [(shorten(source, self.sample_source_chars), *rest) for source, *rest in rows]
        if rows:
            title = f"{self.title}: test samples"
            if any(MARKS[0] in str(row[-1]) for row in rows):
                title += f" ({MARKS[0]}x{MARKS[1]}: not a word of the training text or the source)"
            print_samples(title, rows, self.sample_columns)
            write_samples(run_dir / "samples.md", title, rows, self.sample_columns)
        if self.denoising:
            self._noise_samples(run_dir, setup)
            denoise = metrics["denoise"]
            docs = denoise["documents"]
            counted = ", ".join(f"{docs[name]:,} {name}" for name in ("train", "val", "test") if name in docs)
            extra = f" ({denoise['extra_documents']:,} from task.denoise.texts)" if denoise["extra_documents"] else ""
            options = DenoiseOptions.of({k: denoise[k] for k in OPTION_KEYS})
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
        ckpt, payload = self.checkpoint(cfg, overrides)
        saved = payload["attnkit"]
        texts = self.read_inputs(cfg.get("input"))
        tokenizers = Tokenizers.from_state(saved["tokenizers"])
        decode = DecodeOptions.of(self.saved_recipe(payload, overrides))
        model = model_from_checkpoint(payload)
        on_long = cfg["data"]["on_long"] if run.overridden(overrides, "data.on_long") else saved["on_long"]
        max_source_len = saved.get("max_source_len")
        words = None
        if decode.words == "real":
            if "words" not in saved:
                raise ConfigError(
                    f"checkpoint {ckpt} keeps no list of the training text's words (it was trained before "
                    f"task.words existed); add task.words=free"
                )
            words = WordConstraint.for_tokenizers(tokenizers.tgt, Lexicon(saved["words"]), tokenizers.src)
        with reported_warnings():
            outputs, cut = translate(
                model, texts, tokenizers, decode, on_long=on_long, max_source_len=max_source_len, words=words
            )
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
        """What `mode=predict` generates from: `input="a sentence"`, each line of the file `input=sentences.txt`,
        else every line of stdin."""
        fix = 'give input="a sentence" or input=sentences.txt, or leave input unset to read lines from stdin'
        empty = 'nothing to translate on stdin; pipe in lines of text, or give input="a sentence"'
        return run.text_inputs(value, fix) or run.stdin_lines("sentences", empty, keep_blank=True)

    def baselines(self, pairs: TextPairs, scorer: Scorer, stages: tuple[str, ...]) -> dict[str, Any]:
        """Scores of simple baselines on `stages` (e.g. `test/lead_rougeL`), reported beside the model's."""
        return {}

    # -- pieces ------------------------------------------------------------------------------------------------

    def _noise_samples(self, run_dir: Path, setup: Setup) -> None:
        """samples.md of a denoising run: what the encoder reads (the noise of epoch 0) beside the document."""
        data = setup.encoded.get("test")
        if data is None or not self.samples:
            return
        rows = sample_rows(list(range(len(data))), data.references, data.references, self.samples)
        tokenizer = setup.tokenizers.src.tokenizer
        rows = [(tokenizer.decode(data.noised(i, epoch=0), skip_special_tokens=False), ref) for i, ref, _ in rows]
        if self.sample_source_chars:
            rows = [tuple(shorten(text, self.sample_source_chars) for text in row) for row in rows]
        write_samples(run_dir / "samples.md", f"{self.title}: denoising, test samples", rows, ("noised", "document"))


def _check_model(model_cfg: Any, task: str) -> None:
    name = model_cfg.get("name") if isinstance(model_cfg, dict) else model_cfg
    if not callable(getattr(get("model", name), "decode", None)):
        raise ConfigError(f"model={name} is not an encoder-decoder; task={task} needs model=transformer")


OBJECTIVES = ("supervised", "denoise")


def shorten(text: str, chars: int) -> str:
    """`text` cut to at most `chars` characters at a word boundary, with an ellipsis when cut."""
    if len(text) <= chars:
        return text
    return text[: max(1, chars - 1)].rsplit(" ", 1)[0] + " …"


def vocab(tokenizers: Tokenizers) -> dict[str, Any]:
    """What the model needs to know of the tokenizers (share_vocab applies only where the config leaves it null)."""
    return {
        "src_vocab": tokenizers.src.vocab_size,
        "tgt_vocab": tokenizers.tgt.vocab_size,
        "pad_id": tokenizers.tgt.pad_id,
        "share_vocab": tokenizers.joint,
    }
