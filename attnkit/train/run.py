"""What every task's train / test / predict does with the run: user paths, the seed, the saved config, overrides."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from attnkit.errors import ConfigError, DataError


def user_path(value: Any, what: str, fix: str) -> Path:
    """A path the user gave, relative to the launch directory (the CLI does not chdir); it must exist."""
    if value in (None, ""):
        raise ConfigError(f"{what} is required; {fix}")
    path = Path(str(value)).expanduser().resolve()
    if not path.exists():
        raise DataError(f"{what} {str(path)!r} does not exist; {fix}")
    return path


def seed(value: int) -> None:
    """Seed Python's and torch's generators."""
    random.seed(value)
    torch.manual_seed(value)


def save_config(cfg: dict[str, Any], run_dir: Path) -> None:
    """The resolved config as `<run_dir>/config.yaml`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(cfg), run_dir / "config.yaml")


def overridden(overrides: list[str] | None, key: str) -> bool:
    """Whether the command line set `key` or something under it (`data`, `data.src`, `task.beam`)."""
    for text in overrides or []:
        name = text.lstrip("+~").split("=", 1)[0]
        if name == key or name.startswith(key + "."):
            return True
    return False


def value(cfg: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted key of a config (`data.batch_size`); None where a part is missing."""
    node: Any = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def with_values(cfg: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `cfg` with `values` (dotted key -> value) set; the nodes on their paths are copied, not changed."""
    out = dict(cfg)
    for key, new in values.items():
        node, *path, last = [out, *key.split(".")]
        for part in path:
            node[part] = dict(node.get(part) or {})
            node = node[part]
        node[last] = new
    return out
