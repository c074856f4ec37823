"""What every task's train / test / predict does with the run: user paths, the seed, the saved config, overrides."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

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
    import torch

    random.seed(value)
    torch.manual_seed(value)


def save_config(cfg: dict[str, Any], run_dir: Path) -> None:
    """The resolved config as `<run_dir>/config.yaml`."""
    from omegaconf import OmegaConf

    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(cfg), run_dir / "config.yaml")


def overridden(overrides: list[str] | None, key: str) -> bool:
    """Whether the command line set `key` or something under it (`data`, `data.src`, `task.beam`)."""
    for text in overrides or []:
        name = text.lstrip("+~").split("=", 1)[0]
        if name == key or name.startswith(key + "."):
            return True
    return False
