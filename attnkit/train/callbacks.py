"""What makes a run resumable and its files trustworthy, as Lightning plugins and callbacks.

- `WholeCheckpointIO`: checkpoints written whole (temporary file beside the target, renamed) and read with
  `weights_only=True`;
- `RandomState`: the random generators' states saved in each checkpoint and restored on resume, so that a resumed
  run draws the same data order, dropout masks and random features as an uninterrupted one;
- `FiniteTraining`: a loss that is not a finite number stops training in one line (its step, the last finite loss,
  what to change), before the step that would spoil the weights; and no checkpoint of weights that are not finite is
  ever written (over a good one or at all);
- `InterruptNotice`: Ctrl-C or SIGTERM ends with one line naming the last checkpoint and the command that resumes
  it (SIGTERM: exit status 143, as a shell reports a process that the signal ended);
- `ResumableCSVLogger`: Lightning's CSV logger, which on resume keeps the rows logged up to the checkpoint (instead
  of deleting metrics.csv), flushes its rows whenever a checkpoint is written (`FlushMetrics`) and never leaves half
  a file (`WholeRowsWriter`).
"""

from __future__ import annotations

import csv
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.utilities.exceptions import SIGTERMException

from attnkit.errors import TrainingError
from attnkit.train.checkpoints import save_whole


class WholeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, but atomic on the local disk and never unpickling code."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        save_whole(checkpoint, path)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


class RandomState(pl.Callback):
    """Saves torch's (and CUDA's) and Python's random states in each checkpoint; restores them on resume."""

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": list(_flatten(random.getstate()))}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        random.setstate(_unflatten(state_dict["python"]))
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


def _flatten(state: tuple) -> tuple:
    version, internal, gauss = state
    return (version, *internal, gauss)


def _unflatten(values: list) -> tuple:
    return values[0], tuple(values[1:-1]), values[-1]


class FiniteTraining(pl.Callback):
    """Stops a run whose training loss is NaN or infinite (checked before its backward pass, so the weights of the
    last step are still those of a finite loss), and refuses to write a checkpoint of weights that are not finite:
    the checkpoints already written stay as they were. One line says the step, the last finite loss and the fix."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.last: tuple[int, Any] | None = None  # (step, loss tensor) of the last finite loss

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: Any) -> None:
        if bool(torch.isfinite(loss.detach()).all()):
            self.last = (trainer.global_step, loss.detach())
            return
        value = loss.detach().float().flatten()[0].item() if loss.numel() else float("nan")
        before = "no finite loss before it"
        if self.last is not None:
            before = f"the last finite one was {self.last[1].float().mean().item():.4g} at step {self.last[0]}"
        raise TrainingError(
            f"the training loss became {value} at step {trainer.global_step} ({before}); training stopped"
            f"{self._kept()}; {_advice(trainer, pl_module)}"
        )

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        spoilt = [name for name, p in pl_module.named_parameters() if not bool(torch.isfinite(p.detach()).all())]
        if spoilt:
            raise TrainingError(
                f"the weights are no longer finite numbers at step {trainer.global_step} ({', '.join(spoilt[:3])}"
                f"{', ...' if len(spoilt) > 3 else ''}), so no checkpoint was written{self._kept()}; "
                f"{_advice(trainer, pl_module)}"
            )

    def _kept(self) -> str:
        last = self.run_dir / "checkpoints" / "last.ckpt"
        return f"; the last good checkpoint {last} is kept" if last.is_file() else " before its first checkpoint"


def _advice(trainer: pl.Trainer, pl_module: pl.LightningModule) -> str:
    """What usually fixes a diverging run: a lower learning rate, gradient clipping."""
    lr = getattr(getattr(pl_module, "recipe", None), "lr", None)
    lower = f"lower task.lr (now {lr:g})" if isinstance(lr, (int, float)) else "lower task.lr"
    clip = trainer.gradient_clip_val
    clipping = "clip gradients (trainer.gradient_clip_val=1.0)" if not clip else f"clip harder than {clip:g}"
    return f"{lower} or {clipping}, and start again"


class InterruptNotice(pl.Callback):
    """On Ctrl-C or SIGTERM: one line with the last checkpoint written and the command that resumes the run.

    Lightning stops at the next batch on SIGTERM (a checkpoint being written is finished first, and checkpoints are
    written whole anyway) by raising `SIGTERMException`, a `SystemExit` without a status, which would end the process
    with status 0 as if the run had finished: it is given status 143 (128 + SIGTERM) here.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and exception.code in (None, 0):
            exception.code = 128 + signal.SIGTERM  # on every rank: the process must not look like it finished
        if not isinstance(exception, (KeyboardInterrupt, SIGTERMException)) or not trainer.is_global_zero:
            return
        last = self.run_dir / "checkpoints" / "last.ckpt"
        if last.is_file():
            print(
                f"interrupted: the last checkpoint is {last}; resume with: python -m attnkit resume={self.run_dir}",
                file=sys.stderr,
                flush=True,
            )
        else:
            print("interrupted before the first checkpoint: nothing to resume", file=sys.stderr, flush=True)


class ResumableCSVLogger(CSVLogger):
    """CSV metrics in `<run_dir>/metrics.csv`; `resumed_step` (the checkpoint's global step) keeps the rows logged
    up to it."""

    def __init__(self, run_dir: Path, resumed_step: int | None = None) -> None:
        super().__init__(save_dir=str(run_dir), name="", version="")
        self.resumed_step = resumed_step

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._experiment = WholeRowsWriter(self.log_dir, self._rows_to_keep())
        return self._experiment

    def _rows_to_keep(self) -> list[dict[str, Any]]:
        path = Path(self.log_dir) / "metrics.csv"
        if self.resumed_step is None or not path.is_file():
            return []
        with path.open(newline="") as f:
            rows = [{k: v for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
        return [row for row in rows if int(float(row.get("step", 0))) <= self.resumed_step]


class WholeRowsWriter(ExperimentWriter):
    """Lightning's CSV writer, which never leaves half a metrics.csv: it starts from `kept` (the rows a resumed run
    keeps; none: no file), and every save writes a temporary file renamed over the old one (Lightning rewrites the
    file in place when the header widens, and appends otherwise: a kill or a full disk midway lost every row, or left
    half of one)."""

    def __init__(self, log_dir: str, kept: list[dict[str, Any]]) -> None:
        super().__init__(log_dir=log_dir)
        self._write(kept)

    def _check_log_dir_exists(self) -> None:
        """Lightning deletes an existing metrics.csv here; `__init__` replaces it instead."""

    def save(self) -> None:
        if not self.metrics:
            return
        self._record_new_keys()
        self._write([*self._rows(), *self.metrics])
        self.metrics = []

    def _rows(self) -> list[dict[str, Any]]:
        if not os.path.isfile(self.metrics_file_path):
            return []
        with open(self.metrics_file_path, newline="") as f:
            return list(csv.DictReader(f))

    def _write(self, rows: list[dict[str, Any]]) -> None:
        """metrics.csv := a header and `rows`, renamed into place whole (no rows: no file)."""
        if not rows:
            Path(self.metrics_file_path).unlink(missing_ok=True)
            return
        self.metrics_keys = sorted(set(self.metrics_keys).union(*rows))
        tmp = Path(f"{self.metrics_file_path}.{os.getpid()}.tmp")
        try:
            with tmp.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(rows)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.metrics_file_path)
        finally:
            tmp.unlink(missing_ok=True)


class FlushMetrics(pl.Callback):
    """metrics.csv written out as each checkpoint is made (before its file appears), so a kill right after a
    checkpoint keeps the rows up to it."""

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, ResumableCSVLogger):
                logger.save()
