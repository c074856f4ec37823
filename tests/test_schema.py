"""attnkit.schema: every value of a composed config against what its consumer declares, in one line."""

from __future__ import annotations

import inspect
import math
import typing
from typing import Annotated

import pytest
from checks import compose, one_line

import attnkit
from attnkit import registry
from attnkit.errors import ConfigError
from attnkit.ranges import Range, matches
from attnkit.schema import check_component, check_config

TASKS = ("vit", "classify", "translation", "summarization")


@pytest.mark.parametrize("task", TASKS)
def test_every_tasks_default_config_passes(task) -> None:
    check_config(compose(f"task={task}"))


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["seed=abc"], "seed='abc' must be an int in [0, 4294967295], not a string"),
        (["seed=1.5"], "seed=1.5 must be an int in [0, 4294967295]"),
        (["model.patch_size=0"], "model.patch_size=0 must be an int >= 1 (the side of a square patch in pixels)"),
        (["+trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches=0 must be an int >= 1"),
        (["heads=-4"], "heads=-4 must be an int >= 1"),
        (["trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val=-1 must be a number >= 0 or null"),
        (["task.random_rotate=-10"], "task.random_rotate=-10 must be a number in [0, 180] or null"),
        (["task=classify", "model.max_len=0"], "model.max_len=0 must be an int >= 1"),
        (["attention=local", "attention.window=0"], "attention.window=0 must be an int >= 1"),
        (["pos_enc=rope", "pos_enc.fraction=0"], "pos_enc.fraction=0 must be a number in (0, 1]"),
        (["task=translation", "task.tokenizer.min_frequency=0"], "task.tokenizer.min_frequency=0 must be an int >= 1"),
        (["task=translation", "task.denoise.mask_ratio=1"], "task.denoise.mask_ratio=1 must be a number in [0, 1)"),
        (["data.batch_size=0"], "data.batch_size=0 must be an int >= 1"),
        (["trainer.precision=bf17"], "trainer.precision='bf17' must be one of 64, 32, 16,"),
        (["trainer.devices=0"], "trainer.devices=0 must be"),
        (["trainer.max_epochs=1.5"], "trainer.max_epochs=1.5 must be an int >= 1 or -1 or null"),
        (["callbacks.checkpoint.every_n_steps=0"], "callbacks.checkpoint.every_n_steps=0 must be an int >= 1"),
        (["heads=7"], "heads=7 does not divide the width model.dim=64"),
        (["model.kv_heads=3"], "kv_heads=3 must divide heads=8"),
        (["+model.depht=2"], "model.depht: model 'vit' has no option 'depht' (did you mean 'depth'?)"),
    ],
)
def test_a_bad_value_is_one_line_naming_key_value_and_what_is_allowed(overrides, line) -> None:
    with pytest.raises(ConfigError) as exc:
        check_config(compose(*overrides))
    assert one_line(exc).startswith(line), one_line(exc)


def test_null_options_are_left_to_the_recipe() -> None:
    check_config(compose("model.patch_size=null", "task.random_rotate=null"))


def test_trainer_keys_can_be_skipped_without_lightning() -> None:
    check_config(compose("trainer.gradient_clip_val=-1"), trainer=False)


def numeric_options() -> list[tuple[str, str, str, typing.Any]]:
    """(kind, name, option, annotation) of every registered component's int or float option with a default."""
    out = []
    for kind in registry.kinds():
        for entry in registry.entries(kind):
            hints = registry.type_hints(entry.obj)
            for key, param in inspect.signature(entry.obj).parameters.items():
                if param.default is inspect.Parameter.empty or key not in hints:
                    continue
                arms = typing.get_args(hints[key]) if typing.get_origin(hints[key]) is typing.Union else (hints[key],)
                numeric = [a for a in arms if _base(a) in (int, float)]
                if numeric:
                    out.append((kind, entry.name, key, numeric[0]))
    return out


def _base(annotation):
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is Annotated else annotation


NUMERIC = numeric_options()
IDS = [f"{k}-{n}-{o}" for k, n, o, _ in NUMERIC]


@pytest.mark.parametrize(("kind", "name", "option", "annotation"), NUMERIC, ids=IDS)
def test_every_numeric_option_declares_a_range(kind, name, option, annotation) -> None:
    """A built-in's number says what it may be (dims, depths, heads >= 1; rates in [0, 1); ...)."""
    assert typing.get_origin(annotation) is Annotated, f"{kind} {name!r} option {option}: declare a Range"
    assert any(isinstance(m, Range) for m in annotation.__metadata__)


def outside(annotation) -> list[float]:
    """Values just outside the declared range (and a string, and infinity for a number)."""
    (bounds,) = [m for m in annotation.__metadata__ if isinstance(m, Range)]
    is_int = _base(annotation) is int
    step = 1 if is_int else 0.5
    bad: list = ["x"]
    if bounds.low is not None:
        bad += [bounds.low if bounds.low_open else bounds.low - step]
    if bounds.high is not None:
        bad += [bounds.high if bounds.high_open else bounds.high + step]
    if not is_int:
        bad += [math.inf]
    return [b for b in bad if b not in bounds.also]


@pytest.mark.parametrize(("kind", "name", "option", "annotation"), NUMERIC, ids=IDS)
def test_every_numeric_option_refuses_values_outside_its_range(kind, name, option, annotation) -> None:
    for value in outside(annotation):
        assert not matches(value, annotation)
        with pytest.raises(ConfigError) as exc:
            check_component(kind, kind, {"name": name, option: value})
        assert one_line(exc).startswith(f"{kind}.{option}={value!r} must be"), one_line(exc)


def test_a_plugins_declared_ranges_are_checked_the_day_it_is_registered() -> None:
    @attnkit.register("attention", "ranged_for_test")
    class Ranged(registry.get("attention", "eager")):
        def __init__(self, window: Annotated[int, Range(2), "keys each query sees"] = 8) -> None:
            super().__init__()

    try:
        with pytest.raises(ConfigError) as exc:
            check_component("attention", "attention", {"name": "ranged_for_test", "window": 1})
        assert one_line(exc) == "attention.window=1 must be an int >= 2 (keys each query sees)"
        with pytest.raises(ConfigError):  # and when it is built from Python
            attnkit.build("attention", "ranged_for_test", window=1)
        assert registry.defaults("attention", "ranged_for_test") == {"name": "ranged_for_test", "window": 8}
    finally:
        registry._registry["attention"].pop("ranged_for_test")


def test_a_nested_spec_is_checked_as_its_kind() -> None:
    node = {"name": "vit", "attention": {"name": "local", "window": 0}, "depth": 2}
    with pytest.raises(ConfigError) as exc:
        check_component("model", "model", node)
    assert one_line(exc).startswith("model.attention.window=0 must be an int >= 1")
