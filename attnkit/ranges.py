"""Declared ranges of config values, and the one check of a value against its annotation.

A constructor argument, task field or trainer argument declares what it accepts in its annotation:
`patch_size: Annotated[int, Range(1), "the side of a square patch in pixels"]`, or a named alias
(`depth: PositiveInt`, `dropout: Rate`). A `Range` bounds a number; a plain string in `Annotated` says what the value
is. `check_value` reads both (and `Literal`, `Optional`, unions, lists) and refuses a value in one line naming the key,
the value and what is allowed. No torch, Lightning or Hydra here: `attnkit.nn` and plugins import it freely.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from attnkit.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """Bounds of a number: `low <= value <= high` (`<` where `low_open` / `high_open`), finite, or one of `also`
    (e.g. `-1` for "all"). `Range(1)`: at least 1; `Range(0, 1, high_open=True)`: in [0, 1)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    also: tuple[Any, ...] = ()

    def __contains__(self, value: Any) -> bool:
        if value in self.also and not isinstance(value, bool):
            return True
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        """`>= 1`, `> 0`, `in [0, 1)`, ... (and `or -1`)."""
        low, high = _num(self.low), _num(self.high)
        if self.low is not None and self.high is not None:
            text = f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        elif self.low is not None:
            text = f"{'>' if self.low_open else '>='} {low}"
        elif self.high is not None:
            text = f"{'<' if self.high_open else '<='} {high}"
        else:
            text = "finite"
        return text + "".join(f" or {a!r}" for a in self.also)


def _num(x: float | None) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


PositiveInt = Annotated[int, Range(1)]
NonNegativeInt = Annotated[int, Range(0)]
PositiveFloat = Annotated[float, Range(0, low_open=True)]
NonNegativeFloat = Annotated[float, Range(0)]
Fraction = Annotated[float, Range(0, 1)]
Rate = Annotated[float, Range(0, 1, high_open=True)]  # dropout, drop-path, label smoothing: 1 would drop everything
Seed = Annotated[int, Range(0, 2**32 - 1)]  # what torch, numpy and Lightning's seed_everything accept


def check_value(key: str, value: Any, annotation: Any) -> None:
    """Refuse `value` of config key `key` unless it fits `annotation`: one ConfigError line with the key, the value
    and what is allowed (`model.patch_size=0 must be an int >= 1 (the side of a square patch in pixels)`)."""
    if not matches(value, annotation):
        what = "; ".join(_notes(annotation))
        got = "" if matches(value, annotation, loose=True) else f", not {_kind(value)}"
        raise ConfigError(f"{key}={value!r} must be {allowed(annotation)}{got}" + (f" ({what})" if what else ""))


def matches(value: Any, expected: Any, *, loose: bool = False) -> bool:
    """Whether a config value fits an annotation: int, float, str, bool, None, Literal, unions, Annotated with
    `Range`, lists and tuples (element by element). Richer types (modules, mappings, callables, classes) pass: the
    component checks them itself. `loose`: the type only (ranges and Literal values ignored)."""
    if expected is Any or isinstance(expected, TypeVar):
        return True
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin is Annotated:
        base, ranges = args[0], [m for m in expected.__metadata__ if isinstance(m, Range)]
        inside = loose or not ranges or (_numeric(value) and all(value in r for r in ranges))
        return matches(value, base, loose=loose) and inside
    if origin in (typing.Union, types.UnionType):
        plain = [arg for arg in args if not _rich(arg)]
        if any(matches(value, arg, loose=loose) for arg in plain):
            return True
        if any(isinstance(arg, type) and isinstance(value, arg) for arg in args):  # a built object of a richer arm
            return True
        # a richer arm (`Path`, `Accelerator`, `timedelta`) takes what a config can hold for it, a string or a
        # mapping (`_target_: ...`), unless a plain arm of that type refused it (`int >= 1 | str | timedelta`)
        text = isinstance(value, (str, Mapping)) or type(value).__name__ == "DictConfig"
        refused = any(matches(value, arg, loose=True) for arg in plain)
        return text and not refused and any(_rich(arg) for arg in args)
    if origin is typing.Literal:
        return any((loose or value == a) and type(value) is type(a) for a in args)
    if expected is float:
        return _numeric(value)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected in (str, bool, type(None)):
        return isinstance(value, expected)
    if origin in (list, tuple, Sequence) or expected in (list, tuple):
        if isinstance(value, (str, Mapping)) or not _is_sequence(value):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(matches(v, a, loose=loose) for v, a in zip(value, args, strict=True))
        return not args or all(matches(v, args[0], loose=loose) for v in value)
    if origin in (dict, Mapping) or expected in (dict, Mapping):
        return isinstance(value, Mapping) or type(value).__name__ == "DictConfig"
    return True


def allowed(expected: Any) -> str:
    """What an annotation allows, in words: `an int >= 1 or null`, `one of 'cls', 'mean'`."""
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin is Annotated:
        ranges = [m.describe() for m in expected.__metadata__ if isinstance(m, Range)]
        return " ".join([allowed(args[0]), *ranges])
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        choices = [c for a in args if typing.get_origin(a) is typing.Literal for c in typing.get_args(a)]
        numbers = any(_base(a) is float for a in args)  # `an int >= 0 or a number >= 0`: the number says it all
        words = [
            allowed(a) for a in args if typing.get_origin(a) is not typing.Literal and not (numbers and _base(a) is int)
        ]
        if choices:
            words.insert(0, allowed(typing.Literal[tuple(choices)]))
        return " or ".join(dict.fromkeys(words))
    if origin in (list, tuple, Sequence):
        each = args[0] if args and (origin is not tuple or args[-1] is Ellipsis) else None
        return "a list" if each is None or each is Any else f"a list of {allowed(each).split(' ', 1)[-1]} values"
    names = {int: "an int", float: "a number", str: "a string", bool: "true or false", type(None): "null"}
    names |= {dict: "a mapping", Mapping: "a mapping", list: "a list", tuple: "a list"}
    return names.get(expected, getattr(expected, "__name__", str(expected)))


def constrain(annotation: Any, *metadata: Any) -> Any:
    """`annotation` with `metadata` (a Range, a description) on its numeric arms: `int | None` with Range(1) is
    `Annotated[int, Range(1)] | None`. For annotations declared elsewhere (Lightning's Trainer arguments)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.Union[tuple(constrain(arg, *metadata) for arg in typing.get_args(annotation))]  # noqa: UP007
    return Annotated[(annotation, *metadata)] if annotation in (int, float) else annotation


def _notes(expected: Any) -> list[str]:
    """The descriptions (plain strings in Annotated) anywhere in an annotation, once each."""
    if typing.get_origin(expected) is Annotated:
        own = [m for m in expected.__metadata__ if isinstance(m, str)]
        return list(dict.fromkeys(own + _notes(typing.get_args(expected)[0])))
    return list(dict.fromkeys(n for arg in typing.get_args(expected) for n in _notes(arg)))


def _rich(annotation: Any) -> bool:
    """An annotation `matches` cannot judge (a class such as `Path` or `timedelta`): the component judges it."""
    base = _base(annotation)
    origin = typing.get_origin(base)
    if base is Any or isinstance(base, TypeVar) or base in (int, float, str, bool, type(None), list, tuple, dict):
        return False
    if origin in (typing.Union, types.UnionType):
        return any(_rich(arg) for arg in typing.get_args(base))
    return origin not in (typing.Literal, list, tuple, Sequence, dict, Mapping)


def _base(annotation: Any) -> Any:
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is Annotated else annotation


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an int"
    if isinstance(value, float):
        return "a fractional number"
    if isinstance(value, Mapping):
        return "a mapping"
    if _is_sequence(value):
        return "a list"
    return type(value).__name__
