"""Every value of a composed config, checked against what its consumer declares, before anything runs.

The consumer of a key is what receives it: a registered component's constructor (`model.*`, `attention.*`, `data.*`,
nested specs such as `model.attention`), a task's dataclass field (`task.*`, nested option dataclasses such as
`task.tokenizer.*`), Lightning's `Trainer.__init__` (`trainer.*`, with the ranges of attnkit.train.trainer_args),
attnkit.train.compile (`compile`), or the declaration of the top-level keys below. Annotations and declared ranges
(attnkit.ranges) say what each accepts; the first value that does not fit is one ConfigError line. Plugins are
checked the same way, from their own annotations, the day they are registered. A task class may add a
`check_config(cfg)` classmethod for relations between groups. A null option of a component is left to the task's
recipe or the caller (as `registry.build_spec` does), and checked when the component is built.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Mapping
from typing import Annotated, Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from attnkit import registry
from attnkit.errors import ConfigError
from attnkit.ranges import PositiveInt, Seed, check_value
from attnkit.train.compile import compile_kwargs

# conf/config.yaml's keys outside the groups, and what each accepts
TOP_LEVEL: dict[str, Any] = {
    "seed": Annotated[Seed, "the seed of every random number generator"],
    "heads": Annotated[PositiveInt, "attention heads of every attention layer; model.heads follows it"],
    "plugins": list[str] | str | None,
    "ckpt_path": str | None,
    "resume": str | None,
    "init_from": str | None,
}

# group -> registry kind whose component (named by the node's `name`) consumes the node; the groups a user sets first
COMPONENT_GROUPS = ("attention", "pos_enc", "norm", "ffn", "seg_decoder", "model", "task", "data")
# options of a component that hold the spec of another component (a mapping with `name`): checked as that kind
NESTED_KINDS = ("attention", "pos_enc", "norm", "ffn", "copy", "seg_decoder")


def check_config(cfg: Any, *, trainer: bool = True) -> None:
    """Check every value of a composed config (an OmegaConf node or a plain mapping) against its consumer's
    declaration; `trainer=False` skips the trainer keys (which need Lightning's signature: seconds to import)."""
    resolved = _resolve(cfg)
    for key, annotation in TOP_LEVEL.items():
        if key in resolved:
            check_value(key, resolved[key], annotation)
    compile_kwargs(resolved.get("compile"))
    task = resolved.get("task")
    if isinstance(task, Mapping) and isinstance(task.get("name"), str):
        hook = getattr(registry.get("task", task["name"]), "check_config", None)
        if hook is not None:  # a task's relations between groups (`task=translation` needs an encoder-decoder)
            hook(resolved)
    for group in COMPONENT_GROUPS:
        node = resolved.get(group)
        if isinstance(node, Mapping) and "name" in node:
            check_component(group, group, node)
    if trainer and isinstance(resolved.get("trainer"), Mapping):
        from attnkit.train.trainer_args import check_trainer_values

        check_trainer_values(resolved["trainer"])
    callbacks = resolved.get("callbacks")
    if isinstance(callbacks, Mapping) and isinstance(callbacks.get("checkpoint"), Mapping):
        every = callbacks["checkpoint"].get("every_n_steps")
        check_value("callbacks.checkpoint.every_n_steps", every, PositiveInt | None)


def check_component(kind: str, path: str, node: Mapping[str, Any]) -> None:
    """The options of one component spec (`{name: ..., <option>: <value>}`) against its constructor's annotations;
    nested specs and option dataclasses recursively. `path` is the config key of the node (`model.attention`)."""
    name = node["name"]
    if not isinstance(name, str):
        raise ConfigError(f"{path}.name={name!r}: must be the name of a registered {kind}")
    obj = registry.get(kind, name)
    params = {
        n: p for n, p in _parameters(obj).items() if p.kind not in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    takes_any = any(p.kind is p.VAR_KEYWORD for p in _parameters(obj).values())
    hints = registry.type_hints(obj)
    for key, value in node.items():
        if key == "name":
            continue
        if key not in params:
            if takes_any:
                continue
            options = ", ".join(params) or "(none)"
            raise ConfigError(
                f"{path}.{key}: {kind} {name!r} has no option {key!r}{registry.did_you_mean(key, list(params))}; "
                f"options: {options}"
            )
        _check_option(f"{path}.{key}", key, value, hints.get(key, Any))
    check_widths(node)


def check_widths(node: Mapping[str, Any]) -> None:
    """The relations every model's width options keep, whatever the model (config keys are argument names):
    `heads` divides `dim`, `kv_heads` divides `heads`. Checked here too, so that a sweep's values are refused before
    its first job rather than when that job builds its model."""
    from attnkit.nn.capabilities import check_kv_heads, head_dim  # lazy: torch

    dim, heads, kv_heads = node.get("dim"), node.get("heads"), node.get("kv_heads")
    if isinstance(dim, int) and isinstance(heads, int):
        head_dim(dim, heads)
    if isinstance(heads, int) and isinstance(kv_heads, int):
        check_kv_heads(heads, kv_heads)


def _check_option(path: str, key: str, value: Any, annotation: Any) -> None:
    if (
        value is None
    ):  # null: the task's recipe or the caller decides (as `build_spec` lets it); built values are checked
        return
    if isinstance(value, Mapping) and "name" in value and key in NESTED_KINDS:
        check_component(key, path, value)
        return
    target = _dataclass_of(annotation)
    if target is not None and isinstance(value, Mapping):
        check_fields(path, target, value)
        return
    check_value(path, value, annotation)


def check_fields(path: str, cls: type, node: Mapping[str, Any]) -> None:
    """A mapping of options (`task.tokenizer`) against the fields of the dataclass that receives it."""
    fields = {f.name for f in dataclasses.fields(cls)}
    hints = registry.type_hints(cls)
    for key, value in node.items():
        if key not in fields:
            raise ConfigError(
                f"{path}.{key}: no such option{registry.did_you_mean(key, sorted(fields))}; "
                f"options: {', '.join(sorted(fields))}"
            )
        _check_option(f"{path}.{key}", key, value, hints.get(key, Any))


def _dataclass_of(annotation: Any) -> type | None:
    """The dataclass an annotation names (itself, or an arm of `X | None`), if any."""
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return annotation
    for arg in typing.get_args(annotation):
        if dataclasses.is_dataclass(arg) and isinstance(arg, type):
            return arg
    return None


def _parameters(obj: Any) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return {}


def _resolve(cfg: Any) -> dict[str, Any]:
    if isinstance(cfg, Mapping) and not hasattr(cfg, "_metadata"):
        return dict(cfg)
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        line = " ".join(str(exc).split("\n")[0].split())
        raise ConfigError(f"the config cannot be resolved: {line}") from exc
