"""The `lm` task: a decoder-only language model (`model=decoder`) trained on next-token prediction, and generation.

Data is any registered source whose `load()` gives `attnkit.text.lm.LMData`: `data=mqar` (built in, the default) or
`data=text`. Windows of `context` tokens; the run reports validation and test loss, perplexity, bits per unit
(character, byte or token), accuracy over the scored positions (MQAR: the answers), tokens per second and peak
memory, and writes the learning curve and an attention map. `mode=generate` continues prompts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from attnkit.errors import ConfigError
from attnkit.nn.decoding import sample
from attnkit.ranges import Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Range, Rate, Seed
from attnkit.registry import register
from attnkit.tasks.lm.mqar import MQARSplits, answers
from attnkit.text.lm import LMData
from attnkit.text.lm_source import load_lm_data
from attnkit.text.words import Lexicon, WordConstraint, non_word_rate
from attnkit.train import run
from attnkit.train.checkpoints import model_from_checkpoint
from attnkit.train.reports import write_json
from attnkit.train.task import Given, LoadedData, Resolved, Setup, Task

ROLES = ("train", "val", "test")
GENERATION = ("max_new_tokens", "temperature", "top_k", "top_p", "repetition_penalty", "seed", "truncate", "words")
CHECKED_ANSWERS = 16  # test sequences whose MQAR answers are generated and checked by the reference


class EpochSampler(Sampler[int]):
    """A shuffled order per epoch from (`seed`, epoch), so a resumed run sees the same batches; `set_epoch` also
    tells the dataset (windows drawn anew each epoch)."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if callable(getattr(self.dataset, "set_epoch", None)):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(len(self.dataset), generator=generator).tolist())


@register("task", "lm")
@dataclass
class LMTask(Task):
    """Language modelling: next-token cross-entropy over windows of `context` tokens (MQAR: its sequence length).

    AdamW (`lr`, `weight_decay`), linear warm-up over `warmup_steps` then cosine decay to `min_lr_ratio`; optional
    moving average (`ema_decay`, 0 = off); `test_checkpoint`: `best` validation loss or `last`. Generation
    (`mode=generate`, `attnkit.load(run).generate`): `max_new_tokens`, `temperature` (0 = greedy), `top_k` (0 = off),
    `top_p` (1 = off), `repetition_penalty` (1 = off), `seed`, `words` (`real`: finish only words of the training
    text or the prompt, on text data; `free`: any); a prompt that leaves no room for `max_new_tokens` in the model's
    context is refused, or cut from the left with `truncate=left`. `attention_map`: write
    attention_map.png (kernels that return weights).
    """

    name: ClassVar[str] = "lm"
    title: ClassVar[str] = "language model"
    monitor: ClassVar[str] = "val/loss"
    monitor_mode: ClassVar[str] = "min"
    evaluation_keys: ClassVar[tuple[str, ...]] = ("task.eval_lengths",)

    context: Annotated[int, Range(2), "the tokens of one training window"] = 32
    lr: PositiveFloat = 3e-3
    weight_decay: NonNegativeFloat = 0.1
    warmup_steps: NonNegativeInt = 50
    min_lr_ratio: Fraction = 0.1
    ema_decay: Rate = 0.0
    test_checkpoint: Literal["best", "last"] = "last"
    attention_map: bool = True
    max_new_tokens: PositiveInt = 100
    temperature: Annotated[float, Range(0), "0 = greedy"] = 1.0
    top_k: Annotated[int, Range(0), "0 = every token"] = 0
    top_p: Annotated[float, Range(0, 1, low_open=True)] = 1.0
    repetition_penalty: PositiveFloat = 1.0
    seed: Seed = 0
    truncate: Literal["error", "left"] = "error"
    words: Literal["real", "free"] = "real"
    eval_lengths: Annotated[list[int], "test windows, in multiples of task.context"] = dataclasses.field(
        default_factory=lambda: [1]
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.context, bool) or not isinstance(self.context, int) or self.context < 2:
            raise ConfigError(f"task.context={self.context!r} must be an integer >= 2 (tokens per window)")
        if self.truncate not in ("error", "left"):
            raise ConfigError(f"task.truncate={self.truncate!r} must be error (refuse long prompts) or left")
        lengths = list(self.eval_lengths) if isinstance(self.eval_lengths, (list, tuple)) else None
        if not lengths or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in lengths):
            raise ConfigError(
                f"task.eval_lengths={self.eval_lengths!r} must be a list of positive integers (multiples of "
                f"task.context), such as [1,2,4]"
            )

    # -- from a config to a model ----------------------------------------------------------------------------------

    def load(self, cfg: dict[str, Any], given: Given) -> LoadedData:
        """The data config's source (a test's: the checkpoint's, unless data... is given) and its data."""
        data_cfg = self.data_config(cfg, given)
        source, data = load_lm_data(data_cfg)
        return LoadedData(source, data, data_cfg)

    def resolve(self, cfg: dict[str, Any], loaded: LoadedData, given: Given) -> Resolved:
        """model.max_len null -> the context."""
        if cfg["model"].get("max_len") is not None:
            return Resolved(cfg)
        model = {**cfg["model"], "max_len": self.context}
        return Resolved({**cfg, "model": model}, lines=[f"model.max_len={self.context} (task.context)"])

    def setup(self, cfg: dict[str, Any], loaded: LoadedData, given: Given) -> Setup:
        data = loaded.data
        net, context = self.build_model(cfg, {"vocab_size": data.vocab_size}, given.checkpoint)
        if context["vocab_size"] != data.vocab_size:
            raise ConfigError(
                f"the checkpoint's model has a vocabulary of {context['vocab_size']} tokens, the data "
                f"{data.vocab_size}; evaluate it on the data it was trained on"
            )
        limit = getattr(net, "max_len", None)
        if limit is not None and self.context > limit:
            raise ConfigError(
                f"task.context={self.context} exceeds model.max_len={limit}; raise model.max_len (or leave it null: "
                f"the context) or lower task.context"
            )
        longest, limit = self.context * max(self.eval_lengths), net.position_limit()
        if limit is not None and longest > limit:
            raise ConfigError(
                f"task.eval_lengths={list(self.eval_lengths)} asks for test windows of {longest} tokens; this model "
                f"holds {limit} positions (a learned table without pos_enc.interpolate=true, or a kernel's "
                f"max_length); lower task.eval_lengths, or train with pos_enc=rope, alibi, t5, sinusoidal or none"
            )
        roles = ROLES if given.checkpoint is None else ("test",)
        seed = cfg["seed"]
        encoded = {r: data.dataset(r, self.context, seed=seed, epoch_offsets=r == "train") for r in roles}
        for multiple in sorted(set(self.eval_lengths) - {1}):
            encoded[f"test@{self.context * multiple}"] = data.dataset(
                "test", self.context * multiple, seed=seed, epoch_offsets=False
            )
        for role, dataset in encoded.items():
            if len(dataset) == 0:
                raise ConfigError(f"the {role} split gives no window of task.context={self.context} tokens")
        extras = {"data": loaded.cfg, "unit": data.unit}
        return Setup(loaded, context, net, extras=extras, encoded=encoded)

    def example(self, setup: Setup) -> Any:
        ids = setup.encoded["train"][0][0][None]
        return lambda: setup.net(ids)

    def lightning(self, cfg: dict[str, Any], setup: Setup, checkpoint: dict[str, Any] | None) -> tuple[Any, Any]:
        from attnkit.tasks.lm.module import LanguageModelModule
        from attnkit.train.datamodule import SplitsDataModule

        batch_size, seed = setup.source.batch_size, cfg["seed"]

        def loader(split: str, train: bool) -> DataLoader:
            data = setup.encoded[split]
            sampler = EpochSampler(data, seed) if train else None
            return DataLoader(data, batch_size=batch_size, sampler=sampler, drop_last=train, num_workers=0)

        module = self.make_module(LanguageModelModule, cfg, setup, checkpoint)
        module.unit = setup.data.unit
        module.units_per_token = {r: setup.data.units_per_token(r) for r in setup.encoded if r in ROLES}
        return module, SplitsDataModule(loader)

    # -- what is reported ------------------------------------------------------------------------------------------

    def evaluate(self, trainer: Any, module: Any, datamodule: Any, ckpt_path: str | None) -> dict[str, float]:
        """Validation and test scores of the tested weights."""
        from attnkit.train.task import floats

        validated = floats(trainer.validate(module, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False))
        return {**validated, **floats(trainer.test(module, datamodule=datamodule, ckpt_path=None, verbose=False))}

    def metrics(self, setup: Setup, module: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": setup.data.unit, "context": self.context}
        out["windows"] = {role: len(data) for role, data in setup.encoded.items()}
        if isinstance(setup.data, MQARSplits):
            out.update(self._checked_answers(module.eval_model, setup))
        if self.eval_lengths != [1]:
            out.update(self._losses_by_length(module.eval_model, setup))
        return out

    def _losses_by_length(self, model: Any, setup: Setup) -> dict[str, Any]:
        """Test loss (nats per scored token) and bits per unit on windows of each `eval_lengths` multiple of the
        context: `test/loss@<tokens>`, `test/bits_per_<unit>@<tokens>`, and `lengths` (tokens -> both)."""
        import torch.nn.functional as F

        from attnkit.tasks.lm.mqar import IGNORE

        model, unit = model.cpu().eval(), setup.data.unit
        per_unit = setup.data.units_per_token("test")
        out: dict[str, Any] = {"lengths": {}}
        for multiple in sorted(set(self.eval_lengths)):
            n = self.context * multiple
            data = setup.encoded["test" if multiple == 1 else f"test@{n}"]
            if len(data) == 0:
                continue
            total, count = 0.0, 0
            with torch.no_grad():
                for ids, target in DataLoader(data, batch_size=setup.source.batch_size):
                    logits = model(ids).float()
                    total += float(
                        F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=IGNORE, reduction="sum")
                    )
                    count += int(target.ne(IGNORE).sum())
            loss = total / max(count, 1)
            bits = loss / math.log(2) / per_unit
            out["lengths"][str(n)] = {
                "multiple": multiple,
                "loss": loss,
                f"bits_per_{unit}": bits,
                "windows": len(data),
            }
            out[f"test/loss@{n}"], out[f"test/bits_per_{unit}@{n}"] = loss, bits
        return out

    def _checked_answers(self, model: Any, setup: Setup) -> dict[str, Any]:
        """MQAR: the model generates (greedily, with its cache) the answer after each query of a few test sequences;
        the reference (`answers`) recomputes each from the tokens and judges it."""
        data, num_kv_pairs = setup.encoded["test"], setup.data.source.num_kv_pairs
        model = model.cpu().eval()
        right = total = 0
        for i in range(min(CHECKED_ANSWERS, len(data))):
            ids = data[i][0].tolist()
            for position, value in answers(ids, num_kv_pairs).items():
                prompt = torch.tensor([ids[: position + 1]])
                token = sample(model, prompt, max_new_tokens=1, temperature=0)
                right += int(token[0, 0]) == value
                total += 1
        return {"test/generated_answer_acc": right / max(total, 1), "generated_answers_checked": total}

    def artifacts(self, cfg: dict[str, Any], run_dir: Path, module: Any, setup: Setup, metrics: dict) -> dict:
        """attention_map.png: the last block's attention over one test window, per head."""
        from attnkit.tasks.lm.plots import plot_attention

        model = module.eval_model.cpu().eval()
        last = model.blocks[-1].attn if hasattr(model, "blocks") else None
        kernel = getattr(last, "attention", last)  # a token mixer other than attention has no kernel
        if not self.attention_map:
            return {}
        if not getattr(kernel, "supports_weights", False):
            return {"attention map": "skipped: this attention variant cannot return weights"}
        ids = setup.encoded["test"][0][0][None]
        with torch.no_grad():
            weights = model.attention_weights(ids)[0]
        plot_attention(weights, run_dir / "attention_map.png", title="last block's attention over a test window")
        return {}

    # -- generation ------------------------------------------------------------------------------------------------

    def generate(self, cfg: dict[str, Any], *, run_dir: Path | None, overrides: list[str] | None = None) -> dict:
        """Continue `input="a prompt"`, or each line of stdin, with this task's generation settings; print the tokens
        as they come and write generation.json (prompts, texts, settings)."""
        ckpt, payload = self.checkpoint(cfg)
        value = cfg.get("input")
        fix = 'give input="a prompt" or input=prompts.txt (one per line), or input=- to read prompts from stdin'
        empty = 'no prompt on stdin; pipe in lines of text, or give input="a prompt"'
        prompts = run.text_inputs(None if value == "-" else value, fix) or run.stdin_lines("prompts", empty)
        _, data = load_lm_data(payload["attnkit"]["data"])
        model = model_from_checkpoint(payload, ckpt)
        settings = {k: getattr(self, k) for k in GENERATION}
        results = [{"prompt": p, "text": self.continue_text(model, data, p, echo=run_dir is not None)} for p in prompts]
        lexicon = known_words(data)
        if lexicon is not None:  # text data: how many generated words are not words of the training text or prompt
            for item in results:
                item["non_words"] = lexicon.non_words(item["text"], item["prompt"])
            texts, given = [r["text"] for r in results], [r["prompt"] for r in results]
            settings["non_word_rate"] = non_word_rate(lexicon, texts, given)
        else:
            settings["words"] = "free (the data is not text)"
        result = {"checkpoint": str(ckpt), "settings": settings, "generations": results}
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(run_dir / "generation.json", result)
        return result

    def continue_text(self, model: Any, data: LMData, prompt: str, *, echo: bool = True) -> str:
        """The text `model` generates after `prompt`, printed as it comes when `echo`."""
        ids = data.encode(prompt)
        room = model.max_len - self.max_new_tokens
        if room < 1:
            raise ConfigError(
                f"task.max_new_tokens={self.max_new_tokens} leaves no room for a prompt in the model's context of "
                f"{model.max_len} tokens; lower task.max_new_tokens to at most {model.max_len - 1}"
            )
        if len(ids) > room:
            if self.truncate != "left":
                raise ConfigError(
                    f"a prompt of {len(ids)} tokens and task.max_new_tokens={self.max_new_tokens} exceed the "
                    f"model's context of {model.max_len}; set task.truncate=left (keep the prompt's last {room} "
                    f"tokens) or lower task.max_new_tokens"
                )
            ids = ids[len(ids) - room :]
        shown: list[int] = []
        printed = data.decode(ids)  # what the terminal shows of the prompt and its continuation, as decoded

        def stream(token: torch.Tensor) -> None:
            nonlocal printed
            shown.append(int(token[0]))
            text = data.decode(ids + shown)  # the continuation as the data joins it to the prompt
            if echo and text.startswith(printed):
                print(text[len(printed) :], end="", flush=True)
                printed = text

        if echo:
            print(prompt, end="", flush=True)
        constraint = word_constraint(data) if self.words == "real" else None
        out = sample(
            model,
            torch.tensor([ids]),
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            repetition_penalty=self.repetition_penalty,
            seed=self.seed,
            stream=stream,
            allowed=constraint,
        )
        new = out[0].tolist()
        if constraint is not None:  # a last word cut by max_new_tokens is dropped
            new = new[: max(0, len(constraint.trim(ids + new)) - len(ids))]
        text = data.decode(new)
        if echo:
            print(data.decode(ids + new)[len(printed) :], flush=True)
        return text

    def loaded_data(self, config: dict[str, Any]) -> LMData:
        """The data of a trained run (its config), for its tokens."""
        return load_lm_data(config["data"])[1]

    def with_settings(self, **settings: Any) -> LMTask:
        """This task with other generation settings (`max_new_tokens`, `temperature`, ...), refused in one line
        unless each is one."""
        unknown = sorted(set(settings) - set(GENERATION))
        if unknown:
            raise ConfigError(f"no generation setting {', '.join(unknown)}; settings: {', '.join(GENERATION)}")
        return dataclasses.replace(self, **settings)


def known_words(data: LMData) -> Lexicon | None:
    """The words of the training text of text data (None for data that is not text, such as MQAR's symbols),
    computed once per data object."""
    if not hasattr(data, "text"):
        return None
    lexicon = getattr(data, "_known_words", None)
    if lexicon is None:
        lexicon = data._known_words = Lexicon.of([data.text("train")])  # type: ignore[attr-defined]
    return lexicon


def word_constraint(data: LMData) -> WordConstraint | None:
    """Real words only, for sampling from a model of text data (None where the data is not text): the pieces are
    the tokens as they decode one by one, the prompt is the source, and a word may begin in it."""
    lexicon = known_words(data)
    if lexicon is None:
        return None
    constraint = getattr(data, "_word_constraint", None)
    if constraint is None:
        texts = [data.decode([i]) for i in range(data.vocab_size)]
        constraint = WordConstraint(texts, lexicon, read_source=data.decode, prompted=True)
        data._word_constraint = constraint  # type: ignore[attr-defined]
    return constraint
