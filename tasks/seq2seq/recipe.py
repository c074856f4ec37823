"""Data-size-aware defaults of the text tasks: what the recipe leaves unset (null) is chosen from the training pairs.

The rule, for N training pairs (documented in docs/tasks/summarization.md, printed in one line at the start of a run):

- vocabulary: a quarter of the word types of the training texts (sources and targets, after the tokenizer's
  lower-casing), rounded to 500, within 1,000 … 8,000 (BPE pieces must each be seen often enough to be learned);
- model: width 128 and 2 + 2 layers below 10,000 pairs or 5,000 word types, width 512 and 6 + 6 layers from
  100,000 pairs and 50,000 word types, width 256 and 3 + 3 layers between (the match reports, 8,000 pairs, and the
  number words, 60 word types, learn with the small size; AESLC, 14,436 emails, needs the middle one);
- dropout 0.3 below 5,000 pairs (a small corpus is memorised within a few epochs), else 0.1;
- epochs: enough for about 750 optimizer steps (N / batch size steps per epoch), within 4 … 60; validation at most
  about 12 times a run (`check_val_every_n_epoch`), and early stopping after 3 validations without a better score
  when the run has more than 12 epochs (the best validation checkpoint is the one tested);
- warm-up: at most a third of the run's steps.

Values the config sets (the command line, an experiment file or the task's preset) are kept as they are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from attnkit.train.run import overridden, value, with_values

TARGET_STEPS = 750
EPOCHS = (4, 60)
VALIDATIONS = 12
PATIENCE = 3
WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class TextRecipe:
    """What the rule chose for `pairs` training pairs of `word_types` distinct words, `batch_size` pairs a batch."""

    pairs: int
    word_types: int
    vocab_size: int
    dim: int
    depth: int
    dropout: float
    max_epochs: int
    check_val_every_n_epoch: int
    patience: int | None
    warmup_steps: int

    def as_dict(self) -> dict[str, int | float | None]:
        return asdict(self)


def word_types(texts: Iterable[str], lowercase: bool) -> int:
    """Distinct words (runs of letters and digits) of `texts`."""
    seen: set[str] = set()
    for text in texts:
        seen.update(WORD.findall(text.lower() if lowercase else text))
    return len(seen)


def text_recipe(pairs: int, types: int, batch_size: int, warmup_steps: int) -> TextRecipe:
    """The rule of the module docstring; `warmup_steps` is the recipe's, capped at a third of the run."""
    vocab = min(8000, max(1000, 500 * round(types / 4 / 500)))
    if pairs < 10_000 or types < 5_000:
        dim, depth = 128, 2
    else:
        dim, depth = (512, 6) if pairs >= 100_000 and types >= 50_000 else (256, 3)
    dropout = 0.3 if pairs < 5_000 else 0.1
    steps_per_epoch = max(1, math.ceil(pairs / max(1, batch_size)))
    epochs = min(EPOCHS[1], max(EPOCHS[0], math.ceil(TARGET_STEPS / steps_per_epoch)))
    every = max(1, math.ceil(epochs / VALIDATIONS))
    epochs = every * math.ceil(epochs / every)  # the last epoch is validated
    patience = PATIENCE if epochs > VALIDATIONS else None
    warmup = min(warmup_steps, (epochs * steps_per_epoch) // 3)
    return TextRecipe(pairs, types, vocab, dim, depth, dropout, epochs, every, patience, warmup)


def describe(recipe: TextRecipe, chosen: list[str]) -> str:
    """One line: what was chosen (`chosen`: the keys the config left to the rule) and why."""
    values = {
        "task.tokenizer.vocab_size": f"vocabulary {recipe.vocab_size:,}",
        "model.dim": f"width {recipe.dim}",
        "model.depth": f"{recipe.depth} + {recipe.depth} layers",
        "model.dropout": f"dropout {recipe.dropout}",
        "trainer.max_epochs": f"{recipe.max_epochs} epochs"
        + (f" (early stopping after {recipe.patience} validations without gain)" if recipe.patience else ""),
        "task.warmup_steps": f"warm-up {recipe.warmup_steps} steps",
    }
    parts = [values[key] for key in values if key in chosen]
    return (
        f"recipe: {recipe.pairs:,} training pairs, {recipe.word_types:,} word types -> {', '.join(parts)}; "
        f"set {' / '.join(key for key in values if key in chosen)} to choose yourself"
    )


# where each value the rule can choose lives in the run's config
KEYS = {
    "task.tokenizer.vocab_size": "vocab_size",
    "model.dim": "dim",
    "model.depth": "depth",
    "model.dropout": "dropout",
    "trainer.max_epochs": "max_epochs",
}


def fill(
    cfg: dict[str, Any],
    train: list[tuple[str, str]],
    *,
    batch_size: int,
    lowercase: bool,
    overrides: list[str] | None,
) -> tuple[dict[str, Any], TextRecipe | None, str | None]:
    """A copy of `cfg` with the values it leaves null chosen by the rule for the `train` pairs in batches of
    `batch_size`, the recipe, and the line to print (None when the config chose everything). The recipe's warm-up is
    capped at a third of the run unless the command line set it; with the epochs chosen, validation is spaced and
    stops early."""
    chosen = [key for key in KEYS if value(cfg, key) is None]
    if not chosen:
        return cfg, None, None
    types = word_types((text for pair in train for text in pair), lowercase)
    recipe = text_recipe(len(train), types, batch_size, int(value(cfg, "task.warmup_steps") or 0))
    values = {key: getattr(recipe, KEYS[key]) for key in chosen}
    if "trainer.max_epochs" in chosen:
        if not overridden(overrides, "trainer.check_val_every_n_epoch"):
            values["trainer.check_val_every_n_epoch"] = recipe.check_val_every_n_epoch
        if recipe.patience and not value(cfg, "callbacks.early_stopping"):
            values["callbacks.early_stopping"] = {"patience": recipe.patience, "min_delta": 0.0}
    warmup = value(cfg, "task.warmup_steps")
    if not overridden(overrides, "task.warmup_steps") and warmup is not None and recipe.warmup_steps < warmup:
        values["task.warmup_steps"] = recipe.warmup_steps
        chosen.append("task.warmup_steps")
    return with_values(cfg, values), recipe, describe(recipe, chosen)
