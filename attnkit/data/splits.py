"""The three splits every data source returns (train, val, test), the usual names for them in data sets, and the
choice of which split of a loaded data set plays each part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attnkit.errors import DataError

SPLITS = ("train", "val", "test")
# split -> the names data sets give it, most usual first
SPLIT_ALIASES = {"val": ("validation", "valid", "val", "dev"), "test": ("test",)}


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
