"""What each `trainer.*` key accepts: the type of Lightning's `Trainer.__init__` argument it reaches, and the range
attnkit declares for it (Lightning's annotations say `int`, not `int >= 1`)."""

from __future__ import annotations

import typing
from typing import Any

from attnkit.ranges import Range, check_value, constrain

AT_LEAST_1 = Range(1)
AT_LEAST_0 = Range(0)

# argument -> (range of its numbers, what it is)
RANGES: dict[str, tuple[Range, str]] = {
    "accumulate_grad_batches": (AT_LEAST_1, "batches whose gradients are summed before each optimizer step"),
    "gradient_clip_val": (AT_LEAST_0, "the largest gradient norm (or value); null or 0 clip nothing"),
    "devices": (Range(1, also=(-1,)), "how many devices; -1 for all, or a list of device indices"),
    "num_nodes": (AT_LEAST_1, "machines"),
    "max_epochs": (Range(1, also=(-1,)), "epochs to train; -1 with trainer.max_steps; 0 trains nothing: use mode=test"),
    "min_epochs": (AT_LEAST_0, "epochs to train at least"),
    "max_steps": (Range(1, also=(-1,)), "optimizer steps to train; -1 for no limit"),
    "min_steps": (AT_LEAST_0, "optimizer steps to train at least"),
    "limit_train_batches": (Range(0, low_open=True), "a fraction of the batches (<= 1.0) or a number of batches"),
    "limit_val_batches": (AT_LEAST_0, "a fraction of the batches (<= 1.0) or a number of batches"),
    "limit_test_batches": (AT_LEAST_0, "a fraction of the batches (<= 1.0) or a number of batches"),
    "limit_predict_batches": (AT_LEAST_0, "a fraction of the batches (<= 1.0) or a number of batches"),
    "overfit_batches": (AT_LEAST_0, "a fraction of the batches (<= 1.0) or a number of batches; 0 for off"),
    "val_check_interval": (Range(0, low_open=True), "a fraction of an epoch (<= 1.0) or a number of batches"),
    "check_val_every_n_epoch": (AT_LEAST_1, "epochs between validations"),
    "num_sanity_val_steps": (Range(0, also=(-1,)), "validation batches before training; -1 for all"),
    "log_every_n_steps": (AT_LEAST_1, "steps between logged rows"),
    "reload_dataloaders_every_n_epochs": (AT_LEAST_0, "epochs between reloads; 0 for never"),
    "fast_dev_run": (AT_LEAST_0, "batches of a quick test run; true for 1"),
}


def trainer_annotations() -> dict[str, Any]:
    """Every Trainer argument's annotation, with attnkit's range and description on its numeric arms."""
    import pytorch_lightning as pl  # lazy: seconds to import; --help and mode=list never need it

    hints = typing.get_type_hints(pl.Trainer.__init__, include_extras=True)
    hints.pop("return", None)
    for key, (bounds, what) in RANGES.items():
        if key in hints:
            hints[key] = constrain(hints[key], bounds, what)
    return hints


def check_trainer_values(trainer_cfg: dict[str, Any]) -> None:
    """Each `trainer.<key>` value against its annotation and range (unknown keys: `check_trainer_config`)."""
    hints = trainer_annotations()
    for key, value in trainer_cfg.items():
        if key in hints:
            check_value(f"trainer.{key}", value, hints[key])
