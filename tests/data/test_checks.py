"""Option checks of data sources: a bad value is a one-line ConfigError naming the key, the rule and the fix."""

from __future__ import annotations

import pytest
from checks import one_line

from attnkit import ConfigError
from attnkit.data.checks import check_choice, check_fractions, check_int


def test_good_values_pass() -> None:
    check_int("batch_size", 1, minimum=1)
    check_int("val_size", 0, minimum=0)
    check_choice("on_long", "error", ("truncate", "error"))
    check_fractions(0.0, 0.0, items="pairs")
    check_fractions(0.1, 0, items="pairs")
    check_fractions(0.5, 0.49, items="pairs")


@pytest.mark.parametrize("value", [0, -3, 1.5, "8", True, None])
def test_check_int(value) -> None:
    with pytest.raises(ConfigError) as exc:
        check_int("batch_size", value, minimum=1)
    assert one_line(exc) == f"data.batch_size={value!r} must be an int >= 1"


def test_check_choice() -> None:
    with pytest.raises(ConfigError) as exc:
        check_choice("on_long", "drop", ("truncate", "error"))
    assert one_line(exc) == "data.on_long='drop' is not an option; choose one of truncate, error"


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ((1.0, 0.1), "data.val_fraction=1.0 must be a number in [0, 1)"),
        ((0.1, -0.1), "data.test_fraction=-0.1 must be a number in [0, 1)"),
        ((True, 0.1), "data.val_fraction=True must be a number in [0, 1)"),
        ((0.1, "0.2"), "data.test_fraction='0.2' must be a number in [0, 1)"),
        ((0.6, 0.5), "data.val_fraction + data.test_fraction = 1.1 leaves no training images; lower them"),
        ((0.5, 0.5), "data.val_fraction + data.test_fraction = 1 leaves no training images; lower them"),
    ],
)
def test_check_fractions(fractions, message) -> None:
    with pytest.raises(ConfigError) as exc:
        check_fractions(*fractions, items="images")
    assert one_line(exc) == message
