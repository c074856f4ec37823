"""The split names and their aliases: which loaded split plays val and test, or None to carve it from train."""

from __future__ import annotations

import pytest
from checks import one_line

from attnkit import DataError
from attnkit.data.splits import SPLIT_ALIASES, SPLITS, find_split


def test_split_names() -> None:
    assert SPLITS == ("train", "val", "test")
    assert SPLIT_ALIASES["val"] == ("validation", "valid", "val", "dev")


def test_find_split_uses_aliases_or_carves() -> None:
    loaded = {"train": 1, "dev": 2}
    assert find_split(loaded, "validation", "val") == "dev"
    assert find_split(loaded, "dev", "val") == "dev"
    assert find_split({"train": 1, "valid": 2, "dev": 3}, "val", "val") == "valid"  # the most usual name first
    assert find_split(loaded, "test", "test") is None  # absent usual name: carve from train
    assert find_split(loaded, None, "val") is None
    with pytest.raises(DataError) as exc:
        find_split(loaded, "heldout", "test")
    message = one_line(exc)
    assert "heldout" in message and "train, dev" in message and "data.test_split" in message
    with pytest.raises(DataError) as exc:
        find_split(loaded, "heldout", "val")
    assert "data.val_split" in one_line(exc)
