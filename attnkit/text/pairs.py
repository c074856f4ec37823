"""What every text data source shares: the splits it returns, its base class, cleaning and carving.

A data source turns some storage (generated numbers, local files, a Hugging Face dataset) into `TextPairs`:
three lists of (source text, target text); a labelled text is a pair whose target is its label. Tokenizing and
batching are the task's business, so summarization reads the same sources as translation and classification.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from attnkit.data.checks import check_choice, check_int
from attnkit.data.splits import SPLITS
from attnkit.data.warning import warn
from attnkit.errors import ConfigError, DataError
from attnkit.registry import available, build_spec, get

Pair = tuple[str, str]
OnEmpty = Literal["skip", "error"]
OnLong = Literal["truncate", "error"]


@dataclass
class TextPairs:
    """The three splits of a text-to-text data set; `src` and `tgt` name the two sides (languages or fields)."""

    train: list[Pair]
    val: list[Pair]
    test: list[Pair]
    src: str
    tgt: str

    def fingerprint(self) -> str:
        """A digest of the training pairs: what a tokenizer trained on them depends on."""
        digest = hashlib.sha256()
        for source, target in self.train:
            digest.update(source.encode())
            digest.update(b"\x00")
            digest.update(target.encode())
            digest.update(b"\x01")
        return digest.hexdigest()

    def split(self, name: str) -> list[Pair]:
        """`train`, `val` or `test`."""
        return {"train": self.train, "val": self.val, "test": self.test}[name]


class TextPairData:
    """Base class of text-pair data sources: subclasses implement `_load()`, `load()` caches it.

    `batch_size` (sentences) or `max_tokens` (padded tokens per batch, when set) size the training batches;
    `max_source_len` caps source tokens (null: the model's `max_len`); `on_long` says what the task does with a
    sequence over its cap: truncate it (counted in one warning) or refuse it.
    """

    def __init__(
        self,
        batch_size: int = 64,
        max_tokens: int | None = None,
        on_long: OnLong = "truncate",
        max_source_len: int | None = None,
    ) -> None:
        check_int("batch_size", batch_size, minimum=1)
        if max_tokens is not None:
            check_int("max_tokens", max_tokens, minimum=1)
        if max_source_len is not None:
            check_int("max_source_len", max_source_len, minimum=2)
        check_choice("on_long", on_long, ("truncate", "error"))
        self.batch_size, self.max_tokens, self.on_long = batch_size, max_tokens, on_long
        self.max_source_len = max_source_len
        self._pairs: TextPairs | None = None

    def load(self) -> TextPairs:
        """The splits, loaded on the first call and cached."""
        if self._pairs is None:
            pairs = self._load()
            for name in SPLITS:
                if not pairs.split(name):
                    raise DataError(
                        f"the {name} split of data={type(self).__name__} is empty; give it some pairs, "
                        f"or let it be carved from train"
                    )
            self._pairs = pairs
        return self._pairs

    def _load(self) -> TextPairs:
        raise NotImplementedError(f"{type(self).__name__} must implement _load()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_size={self.batch_size}, max_tokens={self.max_tokens})"


def clean_pairs(rows: Iterable[tuple[str, Any, Any]], where: str, on_empty: OnEmpty) -> list[Pair]:
    """(location, source, target) rows -> pairs of stripped strings.

    A pair whose source or target is empty (or missing as None) is skipped and counted in one DataWarning, or
    refused with a DataError naming its location when `on_empty="error"`.
    """
    pairs: list[Pair] = []
    skipped: list[str] = []
    for location, source, target in rows:
        src = "" if source is None else str(source).strip()
        tgt = "" if target is None else str(target).strip()
        if src and tgt:
            pairs.append((src, tgt))
            continue
        if on_empty == "error":
            side = "source" if not src else "target"
            raise DataError(
                f"{where} {location}: empty {side} text; remove that pair, or set data.on_empty=skip to skip "
                f"empty pairs"
            )
        skipped.append(location)
    if skipped:
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        warn(
            f"skipped {len(skipped)} pair(s) with an empty source or target in {where} ({shown}); "
            f"set data.on_empty=error to refuse them instead"
        )
    return pairs


def carve(parts: dict[str, list[Pair]], val_fraction: float, test_fraction: float, seed: int) -> dict[str, list[Pair]]:
    """Fill in a missing `val` or `test` split with a seeded random sample of train (fractions of its size).

    The pairs left in train keep their order; the same seed and data give the same splits.
    """
    out = dict(parts)
    train = list(parts["train"])
    rng = random.Random(seed)
    for split, fraction in (("test", test_fraction), ("val", val_fraction)):
        if split in out:
            continue
        want = max(1, round(fraction * len(parts["train"]))) if fraction > 0 else 0
        if want == 0 or want >= len(train):
            raise DataError(
                f"cannot carve a {split} split ({fraction:g} of {len(parts['train'])} training pairs) from train; "
                f"give data.{'validation' if split == 'val' else 'test'}=<file> or change data.{split}_fraction"
            )
        taken = set(rng.sample(range(len(train)), want))
        out[split] = [pair for i, pair in enumerate(train) if i in taken]
        train = [pair for i, pair in enumerate(train) if i not in taken]
    out["train"] = train
    return out


def text_pair_source(data_cfg: Any, task: str, what: str = "text-pair") -> TextPairData:
    """The data source that `data_cfg` names, refused with one line unless it gives text pairs (`what` names them
    in the message: "labelled-text" for a classification task)."""
    source = build_spec("data", data_cfg)
    if not isinstance(source, TextPairData):
        name = data_cfg.get("name") if isinstance(data_cfg, dict) else data_cfg
        kinds = {n: get("data", n) for n in available("data")}
        choices = [n for n, obj in kinds.items() if isinstance(obj, type) and issubclass(obj, TextPairData)]
        raise ConfigError(
            f"data={name} is not a {what} source, which task={task} needs; choose data={', '.join(choices)}"
        )
    return source
