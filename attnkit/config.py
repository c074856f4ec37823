"""The bridge between the registry and Hydra: config nodes for registered components, composition checks.

Hydra is imported here and in the CLI only (`attnkit.api.compose` imports this module when called); `attnkit.nn` and
the registry never need it.
"""

from __future__ import annotations

import importlib.util
from importlib import resources
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from attnkit import registry
from attnkit.errors import ConfigError

CONFIG_MODULE = "attnkit.conf"
CONFIG_NAME = "config"
MODES = ("train", "test", "predict", "list", "compare", "info", "generate")
# Every task's recipe node (its registered fields) is also stored here, for a task preset (conf/task/<name>.yaml) to
# pull in with `- /hydra/task_recipe@task: <name>`: the preset sets data, model and trainer, never the recipe again.
# Under hydra/ so that `--help` does not list it as a group of its own.
RECIPE_GROUP = "hydra/task_recipe"


def has_preset(group: str, name: str) -> bool:
    """Whether conf/<group>/<name>.yaml ships with the package (a preset replaces the generated node)."""
    return resources.files(CONFIG_MODULE).joinpath(group, f"{name}.yaml").is_file()


def store_components() -> None:
    """Store a config node for every registered component in Hydra's ConfigStore (group = kind)."""
    store = ConfigStore.instance()
    for kind in registry.kinds():
        for name in registry.available(kind):
            node = registry.defaults(kind, name)
            if not has_preset(kind, name):
                store.store(group=kind, name=name, node=node, provider="attnkit")
            if kind == "task":
                store.store(group=RECIPE_GROUP, name=name, node=node, provider="attnkit")


def groups() -> dict[str, list[str]]:
    """Every config group (`group=option`) and its options: the registered components of each kind and the YAML
    presets of conf/<group>/. Read from the registry and the config package, not from Hydra's repository, which
    copies every stored node each time it lists a group: so `--help`, `mode=list` and a config error cost the same
    however many components are registered."""
    root = resources.files(CONFIG_MODULE)
    kinds = registry.kinds()
    options: dict[str, set[str]] = {kind: set(registry.available(kind)) for kind in kinds}
    for folder in root.iterdir():
        if folder.is_dir() and folder.name not in ("hydra", "__pycache__"):
            found = {f.name[: -len(".yaml")] for f in folder.iterdir() if f.name.endswith(".yaml")}
            options.setdefault(folder.name, set()).update(found)
    return {group: sorted(names) for group, names in sorted(options.items()) if names}


def compose(overrides: list[str]) -> Any:
    """Compose the config as `python -m attnkit` would, turning Hydra's errors into one-line ConfigErrors."""
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base=None):
        try:
            parsed = OverridesParser.create().parse_overrides(overrides)
        except HydraException as exc:
            raise ConfigError(
                f"cannot parse the overrides: {_first_line(exc)}; write key=value or group=option"
            ) from exc
        listed = groups()
        for override in parsed:
            key = override.key_or_group
            if key in listed and not override.is_delete() and isinstance(override.value(), str):
                _check_choice(key, override.value(), listed[key])
        try:
            cfg = hydra_compose(CONFIG_NAME, overrides=overrides)
        except (HydraException, OmegaConfBaseException) as exc:
            raise ConfigError(_explain(exc)) from exc
    check_mode(cfg.mode)
    return cfg


def sweep_samples(overrides: list[str]) -> list[list[str]]:
    """Override lists that use every value of a multirun's sweeps at least once (`a=1,2 b=x,y` gives 3 lists,
    not the 4 jobs): composing each checks every value before Hydra launches a job. A search space a sweeper samples
    (`interval(a,b)`, and `tag(...)`/`choice` forms) is checked at its ends; it needs such a sweeper (e.g.
    `hydra/sweeper=optuna`)."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as exc:
        raise ConfigError(f"cannot parse the overrides: {_first_line(exc)}; write key=value or group=option") from exc
    sampler = any(o.key_or_group == "hydra/sweeper" and o.value() not in (None, "basic") for o in parsed)
    for override in parsed:
        if override.key_or_group.startswith("hydra/"):
            check_hydra_plugin(override.key_or_group, override.value())
    options = []
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override():
            if override.is_interval_sweep():
                if not sampler:
                    raise ConfigError(
                        f"{override.input_line!r}: an interval is sampled by a sweeper such as Optuna; add "
                        f"hydra/sweeper=optuna (pip install attnkit[optuna]) or list values, e.g. {key}=a,b"
                    )
                sweep = override.value()
                options.append([f"{key}={sweep.start}", f"{key}={sweep.end}"])
                continue
            values = [f"{key}={value}" for value in override.sweep_string_iterator()]
            options.append(values or [override.input_line])
        else:
            options.append([override.input_line])
    base = [values[0] for values in options]
    samples = [base]
    for i, values in enumerate(options):
        samples.extend([*base[:i], value, *base[i + 1 :]] for value in values[1:])
    return samples


# Hydra plugins attnkit's extras install: (group, choice) -> (module that provides it, extra)
HYDRA_PLUGINS = {
    ("hydra/launcher", "joblib"): ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    ("hydra/launcher", "submitit_slurm"): ("hydra_plugins.hydra_submitit_launcher", "submitit"),
    ("hydra/launcher", "submitit_local"): ("hydra_plugins.hydra_submitit_launcher", "submitit"),
    ("hydra/launcher", "slurm"): ("hydra_plugins.hydra_submitit_launcher", "submitit"),
    ("hydra/sweeper", "optuna"): ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
}


def check_hydra_plugin(group: str, choice: Any) -> None:
    """A Hydra launcher or sweeper that is not installed: one line naming the extra that installs it."""
    needs = HYDRA_PLUGINS.get((group, str(choice)))
    if needs and importlib.util.find_spec(needs[0]) is None:
        raise ConfigError(f"{group}={choice} is not installed; pip install 'attnkit[{needs[1]}]'")


def _check_choice(group: str, value: str, options: list[str]) -> None:
    if value not in options:
        hint = registry.did_you_mean(value, options)
        raise ConfigError(
            f"unknown {group} {value!r}{hint}; choices: {', '.join(options)} "
            f"(a plugin's components need plugins=[path/to/plugin.py])"
        )


def check_mode(mode: Any) -> None:
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} is not a mode; choose one of {', '.join(MODES)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _explain(exc: BaseException) -> str:
    text = str(exc)
    if "Could not override" in text or "not in struct" in text:
        key = text.split("'")[1] if "'" in text else "?"
        if key == "mixer":  # a kind that is chosen per layer, not a group of its own
            return (
                "mixer is chosen per layer, in the attention's place: model.layers=[gla,softmax] (one entry per "
                "layer) or 'model.layers={0-:gla}' (every layer)"
            )
        if key.split(".")[0] == "seg_decoder":  # a group that only task=segment's preset has
            if key == "seg_decoder":
                return "seg_decoder chooses the decoder of model=segmenter, which task=segment builds: add task=segment"
            return (
                f"no config key {key!r}: the chosen decoder has no option {key.split('.', 1)[1]!r} (seg_decoder=linear "
                f"has none; `python -m attnkit mode=list` shows the others'), or the task is not task=segment"
            )
        return (
            f"no config key {key!r}; check its spelling with `python -m attnkit --cfg job`, "
            f"or add a new key with +{key}=..."
        )
    return _first_line(exc) + " (see `python -m attnkit --help`)"
