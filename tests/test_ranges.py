"""attnkit.ranges: declared ranges and the one check of a config value against its annotation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
from checks import one_line

from attnkit.errors import ConfigError
from attnkit.ranges import (
    Fraction,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Range,
    Rate,
    Seed,
    allowed,
    check_value,
    constrain,
    matches,
)

PATCH = Annotated[int, Range(1), "the side of a square patch in pixels"]


@pytest.mark.parametrize(
    ("value", "annotation", "ok"),
    [
        (1, PositiveInt, True),
        (0, PositiveInt, False),
        (-4, PositiveInt, False),
        (True, PositiveInt, False),  # a bool is not an int here
        (2.0, PositiveInt, False),
        (0, NonNegativeInt, True),
        (0.5, Rate, True),
        (1.0, Rate, False),
        (1.0, Fraction, True),
        (0, PositiveFloat, False),
        (float("inf"), PositiveFloat, False),  # a declared range is finite
        (float("nan"), Rate, False),
        (2**32, Seed, False),
        (None, PositiveInt | None, True),
        (0, PositiveInt | None, False),
        ("cls", Literal["cls", "mean"], True),
        ("max", Literal["cls", "mean"], False),
        ([2, 3], list[PositiveInt], True),
        ([2, 0], list[PositiveInt], False),
        ((4, 4), tuple[PositiveInt, PositiveInt], True),
        ([4], tuple[PositiveInt, PositiveInt], False),
        (-1, Annotated[int, Range(1, also=(-1,))], True),
        ("run/a.ckpt", Path | None, True),  # a class the check cannot judge takes a string
        (5, str | Path, False),  # ... but not a number
        (0, constrain(int | str | Path, Range(1)), False),  # a plain arm's refusal stands
    ],
)
def test_matches(value, annotation, ok) -> None:
    assert matches(value, annotation) is ok


@pytest.mark.parametrize(
    ("key", "value", "annotation", "line"),
    [
        ("model.patch_size", 0, PATCH, "model.patch_size=0 must be an int >= 1 (the side of a square patch in pixels)"),
        ("seed", "abc", Seed, "seed='abc' must be an int in [0, 4294967295], not a string"),
        ("seed", 1.5, Seed, "seed=1.5 must be an int in [0, 4294967295], not a fractional number"),
        ("model.dropout", 1, Rate, "model.dropout=1 must be a number in [0, 1)"),
        ("model.kv_heads", 0, PositiveInt | None, "model.kv_heads=0 must be an int >= 1 or null"),
        ("model.pool", "max", Literal["cls", "mean"], "model.pool='max' must be one of 'cls', 'mean'"),
    ],
)
def test_check_value_is_one_line_with_key_value_and_what_is_allowed(key, value, annotation, line) -> None:
    with pytest.raises(ConfigError) as exc:
        check_value(key, value, annotation)
    assert one_line(exc) == line


def test_constrain_puts_the_range_on_numeric_arms_only() -> None:
    annotation = constrain(int | float | str | None, Range(0), "clip")
    assert allowed(annotation) == "a number >= 0 or a string or null"
    assert matches("norm", annotation) and matches(None, annotation) and not matches(-1, annotation)


def test_describe() -> None:
    assert Range(0, 1, high_open=True).describe() == "in [0, 1)"
    assert Range(0, low_open=True).describe() == "> 0"
    assert Range(1, also=(-1,)).describe() == ">= 1 or -1"
