"""The split names and their aliases (which loaded split plays val and test, or None to carve it from train), and
the sizes a split needs to train on or to score."""

from __future__ import annotations

import warnings

import pytest
from checks import one_line

from attnkit import DataError
from attnkit.data.splits import SPLIT_ALIASES, SPLITS, check_sizes, find_split, split_sizes
from attnkit.data.warning import reported_warnings


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


def test_split_sizes_read_attributes_or_keys() -> None:
    from attnkit.text import TextPairs

    pairs = TextPairs(train=[("a", "b")] * 3, val=[("c", "d")], test=[], src="x", tgt="y")
    assert split_sizes(pairs) == {"train": 3, "val": 1, "test": 0}
    assert split_sizes({"train": [1, 2], "test": [3]}, ("test", "val")) == {"test": 1}


def test_splits_that_cannot_train_or_score_are_refused_with_the_numbers() -> None:
    with pytest.raises(DataError) as exc:
        check_sizes({"train": 20, "val": 5, "test": 0}, options={"test_fraction": 0.1})
    assert "the test split has no example" in one_line(exc) and "data.test_fraction" in one_line(exc)
    with pytest.raises(DataError) as exc:
        check_sizes({"train": 2, "val": 10, "test": 10}, classes=3)
    assert "the train split has 2 examples for 3 classes" in one_line(exc)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_sizes({"train": 3, "val": 10, "test": 12}, classes=3)  # large enough: not a word
        check_sizes({"test": 10})  # test mode: the test split alone


def test_splits_too_small_to_score_are_warned_in_one_line_each() -> None:
    with reported_warnings() as seen:
        check_sizes({"train": 2, "val": 1, "test": 1}, classes=2, options={"val_fraction": 0.1, "test_size": 1})
        check_sizes({"train": 50, "val": 20, "test": 12}, classes=16)
    assert len(seen) == 3 and all("\n" not in line for line in seen)
    assert (
        seen[0].startswith("the val split has 1 example for 2 classes, fewer than 10")
        and "data.val_fraction" in seen[0]
    )
    assert seen[1].startswith("the test split has 1 example for 2 classes") and "data.test_size" in seen[1]
    assert seen[2].startswith("the test split has 12 examples for 16 classes, fewer than 16")
