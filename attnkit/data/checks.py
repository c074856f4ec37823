"""Checks of a data source's options: a bad value is a one-line ConfigError naming `data.<key>`, what it must be,
and the fix.
"""

from __future__ import annotations

from typing import Any

from attnkit.errors import ConfigError


def check_int(key: str, value: Any, minimum: int) -> None:
    """`data.<key>` must be an int (not a bool) of at least `minimum`."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"data.{key}={value!r} must be an int >= {minimum}")


def check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    """`data.<key>` must be one of `choices`."""
    if value not in choices:
        raise ConfigError(f"data.{key}={value!r} is not an option; choose one of {', '.join(choices)}")


def check_fractions(val_fraction: float, test_fraction: float, *, items: str) -> None:
    """The fractions of train carved into val and test: each a number in [0, 1), leaving some training `items`."""
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ConfigError(f"data.{key}={value!r} must be a number in [0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction:g} leaves no training {items}; "
            f"lower them"
        )
