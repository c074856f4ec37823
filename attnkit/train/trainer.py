"""A Lightning Trainer from the `trainer` config group, writing checkpoints and metrics into the run directory."""

from __future__ import annotations

import inspect
import logging
import warnings
from pathlib import Path
from typing import Any

from attnkit.errors import ConfigError
from attnkit.registry import did_you_mean


def quiet_lightning() -> None:
    """Keep Lightning's start-up chatter (tips, accelerator inventory, known-harmless warnings) off the terminal."""
    for name in (
        "pytorch_lightning.utilities.rank_zero",
        "lightning.pytorch.utilities.rank_zero",
        "lightning_fabric.utilities.rank_zero",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (
        ".*exists and is not empty.*",
        ".*isinstance\\(treespec, LeafSpec\\).*",
        ".*does not have many workers.*",
        ".*grad strides do not match bucket view strides.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)


def make_trainer(
    trainer_cfg: dict[str, Any],
    run_dir: Path,
    *,
    monitor: str,
    mode: str = "max",
    callbacks: list | None = None,
    checkpoints: bool = True,
):
    """`pytorch_lightning.Trainer(**trainer_cfg)` with a CSV logger in `run_dir` and best/last checkpoints."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    quiet_lightning()

    accepted = inspect.signature(pl.Trainer.__init__).parameters
    for key in trainer_cfg:
        if key not in accepted:
            raise ConfigError(f"trainer.{key} is not a Lightning Trainer argument{did_you_mean(key, list(accepted))}")
    callbacks = list(callbacks or [])
    if checkpoints:
        callbacks.append(
            ModelCheckpoint(
                dirpath=run_dir / "checkpoints",
                filename="best",
                monitor=monitor,
                mode=mode,
                save_last=True,
                auto_insert_metric_name=False,
                enable_version_counter=False,
            )
        )
    logger = CSVLogger(save_dir=str(run_dir), name="", version="")
    try:
        return pl.Trainer(
            **trainer_cfg,
            callbacks=callbacks,
            logger=logger,
            default_root_dir=str(run_dir),
            enable_checkpointing=checkpoints,
            enable_model_summary=False,
        )
    except (ValueError, TypeError) as exc:  # e.g. an accelerator this machine does not have
        raise ConfigError(f"trainer config refused by Lightning: {exc}") from exc
