"""The three splits every data source returns (train, val, test), the usual names for them in data sets, the
choice of which split of a loaded data set plays each part, and whether each is large enough to train or score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attnkit.data.warning import warn
from attnkit.errors import DataError

SPLITS = ("train", "val", "test")
# split -> the names data sets give it, most usual first
SPLIT_ALIASES = {"val": ("validation", "valid", "val", "dev"), "test": ("test",)}
MIN_SCORED = 10  # the fewest examples whose score says something: below, a score moves by 0.1 or more per example


def find_split(loaded: Mapping[str, Any], wanted: str | None, split: str) -> str | None:
    """The split to use for `val` or `test`; None to carve it from train (unset, or a usual name that is absent)."""
    if wanted is None:
        return None
    if wanted in loaded:
        return wanted
    aliases = SPLIT_ALIASES[split]
    if wanted in aliases:
        return next((a for a in aliases if a in loaded), None)
    key = "val_split" if split == "val" else "test_split"
    raise DataError(
        f"the dataset has no split {wanted!r}; splits: {', '.join(loaded)}; set data.{key}=<one of them>, "
        f"or null to carve it from train"
    )


def split_sizes(data: Any, splits: Sequence[str] = SPLITS) -> dict[str, int]:
    """The number of examples of each of `splits` that `data` holds (as attributes or keys; absent ones left out)."""
    sizes = {}
    for split in splits:
        part = data.get(split) if isinstance(data, Mapping) else getattr(data, split, None)
        if part is not None and hasattr(part, "__len__"):
            sizes[split] = len(part)
    return sizes


def check_sizes(
    sizes: Mapping[str, int],
    classes: int | None = None,
    options: Mapping[str, Any] | None = None,
    minimum: int = MIN_SCORED,
) -> None:
    """Splits too small to train on or to score, every task's (Task.prepare calls it on the splits a mode uses).

    Refused in one line: an empty split, or a training split with fewer examples than `classes` (a class it has
    no example of cannot be learnt). Warned in one line with the numbers, since the run can still go on: a
    validation or test split with fewer than `minimum` examples or than `classes`, whose score says little (of one
    example: 0 or 1). `options`: the data config, whose keys that size a split (`val_fraction`, `test_size`, ...)
    the fix names.
    """

    def fix(split: str) -> str:
        keys = [f"data.{k}" for k in (f"{split}_size", f"{split}_fraction") if k in (options or {})]
        return f"give more data{', or a larger ' + ' or '.join(keys) if keys else ''}"

    for split, n in sizes.items():
        if n == 0:
            raise DataError(
                f"the {split} split has no example, so nothing can be {'trained' if split == 'train' else 'scored'}; "
                f"{fix(split)}"
            )
    train = sizes.get("train")
    if train is not None and classes and train < classes:
        raise DataError(
            f"the train split has {train} example{'s' if train != 1 else ''} for {classes} classes, so some class has "
            f"none to learn from; {fix('train')}"
        )
    for split in ("val", "test"):
        n = sizes.get(split)
        need = max(minimum, classes or 0)
        if n is None or n >= need:
            continue
        of = f" for {classes} classes" if classes else ""
        warn(
            f"the {split} split has {n} example{'s' if n != 1 else ''}{of}, fewer than {need}: its score says little "
            f"(one example more or less moves it by {1 / n:.2g}); {fix(split)}"
        )
