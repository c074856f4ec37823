"""Checkpoints: written whole or not at all, read without running code, and recognised as attnkit's before use.

A checkpoint is Lightning's dictionary (weights, optimizer, schedule, loops, callbacks) plus attnkit's marker
`checkpoint["attnkit"]`: the task that wrote it and, as plain data, what test and predict need (tokenizers as
JSON, the data config, class names). Nothing in it needs unpickling code, so every read uses `weights_only=True`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnkit.errors import ConfigError, DataError
from attnkit.registry import build_spec


def save_whole(checkpoint: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """`torch.save` to a temporary file beside `path`, flushed to disk, then renamed over it: a kill, a full disk or
    an error midway leaves the previous file as it was (a rename within one folder is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch's writer says RuntimeError; the OS's reason is its context
        cause = exc if isinstance(exc, OSError) else exc.__context__
        if isinstance(cause, OSError) and cause.errno:
            raise OSError(cause.errno, cause.strerror, str(path)) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)


def read(path: str | os.PathLike[str], task: str) -> dict[str, Any]:
    """The contents of a checkpoint file, read without running code; one line when it cannot be read."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(
            f"cannot read checkpoint {str(path)!r} ({type(exc).__name__}: it is truncated, not a checkpoint, or holds "
            f"code, which attnkit never runs); give the best.ckpt or last.ckpt of a task={task} run"
        ) from exc


def load_checkpoint(ckpt: str | os.PathLike[str], task: str) -> dict[str, Any]:
    """A checkpoint's contents, refused with one line unless a `task=<task>` run of attnkit wrote it."""
    return check_checkpoint(read(ckpt, task), ckpt, task)


def check_checkpoint(payload: Any, ckpt: str | os.PathLike[str], task: str) -> dict[str, Any]:
    """`payload` (what checkpoint file `ckpt` holds), refused with one line unless a `task=<task>` run wrote it."""
    marker = payload.get("attnkit") if isinstance(payload, dict) else None
    if not isinstance(marker, dict) or "state_dict" not in payload or "hyper_parameters" not in payload:
        raise ConfigError(
            f"checkpoint {str(ckpt)!r} was not written by an attnkit training run; give the best.ckpt or last.ckpt "
            f"of a task={task} run"
        )
    if marker.get("task") != task:
        raise ConfigError(
            f"checkpoint {str(ckpt)!r} was written by task={marker.get('task')}, not task={task}; "
            f"run it with task={marker.get('task')}"
        )
    return payload


def resumed_epoch(checkpoint: dict[str, Any]) -> int:
    """The epoch a run resumed from `checkpoint` trains next (Lightning's processed epochs; `epoch` if absent)."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError):
        return int(checkpoint.get("epoch", 0))


def finished(checkpoint: dict[str, Any], trainer_cfg: dict[str, Any]) -> tuple[str, int] | None:
    """(`max_epochs` or `max_steps`, its value) when a run resumed from `checkpoint` with these trainer settings
    would train nothing more, as Lightning judges it (epochs done, or optimizer steps taken); (`early_stopping`, the
    epoch) when its early stopping ended it (a resumed run would train on past the end it chose); None otherwise."""
    if not isinstance(checkpoint, dict):
        return None
    for name, state in (checkpoint.get("callbacks") or {}).items():
        if str(name).startswith("EarlyStopping") and isinstance(state, dict) and state.get("stopping_reason"):
            return "early_stopping", int(state.get("stopped_epoch", 0))
    epochs, steps = trainer_cfg.get("max_epochs"), trainer_cfg.get("max_steps", -1)
    if isinstance(steps, int) and steps > 0 and int(checkpoint.get("global_step", 0)) >= steps:
        return "max_steps", steps
    if isinstance(epochs, int) and epochs > 0 and resumed_epoch(checkpoint) >= epochs:
        return "max_epochs", epochs
    return None


def load_weights(module: nn.Module, state: dict[str, Any], ckpt: str | os.PathLike[str]) -> None:
    """`module.load_state_dict(state)`, with a mismatch (another model size or layout) said in one line."""
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:300]
        raise ConfigError(
            f"checkpoint {str(ckpt)!r} does not fit the model built from its own config ({first}); it was written by "
            f"another version of the model or edited"
        ) from exc


def model_from_checkpoint(payload: dict[str, Any], ckpt: str | os.PathLike[str] = "checkpoint") -> nn.Module:
    """The checkpoint's evaluation weights (the moving average when it kept one) as a plain PyTorch model."""
    hparams = payload["hyper_parameters"]
    model = build_spec("model", hparams["model"], **hparams["context"])
    state = payload["state_dict"]
    prefix = "ema.module." if any(k.startswith("ema.module.") for k in state) else "model."
    load_weights(model, {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}, ckpt)
    return model.eval()


def resume_target(value: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(run directory, checkpoint) for `resume=<run folder or a checkpoint in its checkpoints/>`."""
    path = Path(value).expanduser().resolve()
    if path.is_dir():
        run_dir, ckpt = path, path / "checkpoints" / "last.ckpt"
    else:
        run_dir, ckpt = path.parent.parent, path
    if not ckpt.is_file():
        raise DataError(
            f"nothing to resume at {str(path)!r}: no {ckpt.name} there; give resume=<run folder> or "
            f"resume=<run folder>/checkpoints/last.ckpt (a run writes last.ckpt after its first epoch)"
        )
    if not (run_dir / ".hydra" / "overrides.yaml").is_file():
        raise DataError(
            f"{str(run_dir)!r} is not an attnkit run directory (no .hydra/overrides.yaml); give the folder a "
            f"training run wrote"
        )
    return run_dir, ckpt
