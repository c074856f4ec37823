"""What each `trainer.*` key accepts: the type of Lightning's `Trainer.__init__` argument it reaches, and the range
attnkit declares for it (Lightning's annotations say `int`, not `int >= 1`)."""

from __future__ import annotations

import datetime
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


# Lightning's annotations of the arguments that RANGES bounds and of its on/off switches, written out so that a wrong
# value among them is refused before Lightning is imported (seconds); a test checks them against Lightning's own.
WRITTEN: dict[str, Any] = {
    "accumulate_grad_batches": int,
    "gradient_clip_val": int | float | None,
    "devices": list[int] | str | int,
    "num_nodes": int,
    "max_epochs": int | None,
    "min_epochs": int | None,
    "max_steps": int,
    "min_steps": int | None,
    "limit_train_batches": int | float | None,
    "limit_val_batches": int | float | None,
    "limit_test_batches": int | float | None,
    "limit_predict_batches": int | float | None,
    "overfit_batches": int | float,
    "val_check_interval": int | float | str | datetime.timedelta | dict[str, int] | None,
    "check_val_every_n_epoch": int | None,
    "num_sanity_val_steps": int | None,
    "log_every_n_steps": int | None,
    "reload_dataloaders_every_n_epochs": int,
    "fast_dev_run": int | bool,
    "enable_checkpointing": bool | None,
    "enable_progress_bar": bool | None,
    "enable_model_summary": bool | None,
    "benchmark": bool | None,
    "inference_mode": bool,
    "use_distributed_sampler": bool,
    "barebones": bool,
}


def constrained(hints: dict[str, Any]) -> dict[str, Any]:
    """`hints` with attnkit's range and description on the numeric arms of the keys RANGES bounds."""
    return {key: constrain(hint, *RANGES[key]) if key in RANGES else hint for key, hint in hints.items()}


def trainer_annotations() -> dict[str, Any]:
    """Every Trainer argument's annotation, with attnkit's range and description on its numeric arms."""
    import pytorch_lightning as pl  # lazy: seconds to import; --help and mode=list never need it

    hints = typing.get_type_hints(pl.Trainer.__init__, include_extras=True)
    hints.pop("return", None)
    return constrained(hints)


def check_trainer_values(trainer_cfg: dict[str, Any]) -> None:
    """Each `trainer.<key>` value against its annotation and range (unknown keys: `check_trainer_config`): first the
    keys of `WRITTEN`, without importing Lightning, then every key against Lightning's own annotations."""
    for hints in (constrained(WRITTEN), None):
        hints = hints if hints is not None else trainer_annotations()
        for key, value in trainer_cfg.items():
            if key in hints:
                check_value(f"trainer.{key}", value, hints[key])
