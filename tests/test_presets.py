"""A task's preset (conf/task/<name>.yaml) sets only what differs from the registered components' defaults: a default
is written once, in the constructor it belongs to, and the preset holds its recipe's choices alone (a null there
leaves a value to the task's size rule, whose values live in its recipe module). Experiments (conf/experiment/) pin
their measured recipe whole, on purpose: they may restate what the task's preset gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import attnkit
from attnkit import registry

CONF = Path(__file__).resolve().parents[1] / "conf"
TASKS = sorted(CONF.glob("task/*.yaml"))
GROUPS = ("model", "data", "attention", "pos_enc", "norm", "ffn")


def flat(node: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in (node or {}).items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def choices(preset: dict) -> dict[str, str]:
    """The component each group of a preset configures: its own `override /<group>: name`, else config.yaml's."""
    chosen = {}
    for entry in yaml.safe_load((CONF / "config.yaml").read_text())["defaults"]:
        if isinstance(entry, dict):
            chosen.update({k: v for k, v in entry.items() if k in GROUPS})
    for entry in preset.get("defaults", []):
        if isinstance(entry, dict):
            chosen.update({k.removeprefix("override /"): v for k, v in entry.items() if k.startswith("override /")})
    return chosen


def restated(values: dict, below: dict) -> list[str]:
    """The leaves of `values` that `below` (what lies under the preset) already has, with the same value."""
    below = flat(below)
    return [k for k, v in flat(values).items() if k in below and below[k] == v and not k.endswith(".name")]


@pytest.mark.parametrize("path", TASKS, ids=lambda p: p.stem)
def test_a_task_preset_restates_no_component_default(path: Path) -> None:
    attnkit.available("task")  # the built-in components, registered
    preset = yaml.safe_load(path.read_text())
    chosen = choices(preset)
    found = [
        f"{group}.{key}"
        for group in GROUPS
        if isinstance(preset.get(group), dict) and chosen.get(group) in registry.available(group)
        for key in restated(preset[group], registry.defaults(group, chosen[group]))
    ]
    assert not found, f"{path.name} restates the registered defaults of {found}: remove them from the preset"
