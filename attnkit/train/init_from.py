"""`init_from=<path>`: start training from other weights, copying into the model built from the config all that fits.

The path is an attnkit checkpoint of the same task (`outputs/<date>/<time>/checkpoints/last.ckpt`, or the run
folder; its evaluation weights: the moving average when it kept one), a timm VisionTransformer state dict
(`torch.save(model.state_dict())` as .pth/.pt/.bin, or .safetensors: timm names are mapped, see attnkit.interop), or
any state dict in attnkit's own names. The model may differ (another attention, positional encoding, more layers):
`attnkit.interop.transplant` copies each tensor whose name and shape fit, and the report (copied, re-initialised,
dropped) is printed once and written to `init_from.json` in the run directory.

A run reads the file once (`read`, before anything is built) into a `Start`. The task's one hook is its class
attribute `Task.inherits`: the model keys that a checkpoint of the same task fixes where the config leaves them
null (`inherit`, part of the resolve step: the weights must fit); a task that needs more of that run (the text
tasks reuse its tokenizers) finds the whole checkpoint in `Start.checkpoint`. `apply` copies the weights once the
model is built.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.interop import is_timm_vit, timm_vit_state_dict, transplant
from attnkit.train.checkpoints import check_checkpoint
from attnkit.train.reports import write_json

REPORT_FILE = "init_from.json"
_NESTED = ("state_dict", "model", "model_state_dict", "module", "state_dict_ema")
_PREFIXES = ("module.", "_orig_mod.")
_RECORD = ("epochs", "steps", "val/loss", "test/loss", "train_time_s")  # what `Start.record` keeps of metrics.json


@dataclass
class Weights:
    """Tensors in attnkit's names, what they came from (`kind`) and how they were mapped (`notes`)."""

    tensors: dict[str, Tensor]
    kind: str
    notes: list[str]


@dataclass
class Start:
    """What `init_from` names, read once: the file, its weights in attnkit's names, the whole checkpoint when it is
    one of this task's runs (its config and what the run kept: tokenizers, data, ...; else None), and, for a run
    resumed with its own `init_from`, what its start recorded in init_from.json (the weights are not loaded again)."""

    path: Path
    weights: Weights
    checkpoint: dict[str, Any] | None = None
    recorded: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        """How long the run that wrote the checkpoint trained and its final losses: from the metrics.json of its run
        directory when there is one, else from the checkpoint (steps, the best val/loss its callback saw)."""
        run_dir = self.path.parent.parent if self.path.parent.name == "checkpoints" else None
        try:
            saved = json.loads((run_dir / "metrics.json").read_text()) if run_dir is not None else {}
        except (OSError, ValueError):
            saved = {}
        record = {key: saved[key] for key in _RECORD if isinstance(saved.get(key), (int, float))}
        payload = self.checkpoint or {}
        if "steps" not in record and isinstance(payload.get("global_step"), int):
            record["steps"] = payload["global_step"]
        if "val/loss" not in record:
            for key, state in (payload.get("callbacks") or {}).items():
                monitor = state.get("monitor") if isinstance(state, dict) else None
                if str(key).startswith("ModelCheckpoint") and monitor == "val/loss" and state.get("best_model_score"):
                    record["best val/loss"] = round(float(state["best_model_score"]), 4)
        return record


def fix(task: str) -> str:
    return (
        f"give a .ckpt of a task={task} run (outputs/<date>/<time>/checkpoints/last.ckpt) or a saved state dict "
        f"(torch.save(model.state_dict()) as .pth/.pt/.bin, or .safetensors)"
    )


def resolve(value: Any, task: str) -> Path:
    """The file `init_from` names (a run folder: its checkpoints/last.ckpt), relative to the launch directory."""
    path = Path(str(value)).expanduser().resolve()
    if path.is_dir() and (path / "checkpoints" / "last.ckpt").is_file():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise ConfigError(f"init_from={str(value)!r}: no such file ({path}); {fix(task)}")
    return path


def read(cfg: Mapping[str, Any], *, task: str, run_dir: Path) -> Start | None:
    """The `Start` that `cfg["init_from"]` names (None without one), the file read once.

    With `resume`, the resumed checkpoint holds the weights: `init_from` is refused, unless it is the one this run
    started from (a resumed run repeats its own command line); it is then read for what the task inherits from it
    (a text task's tokenizers), not loaded into the model again.
    """
    value = cfg.get("init_from")
    if value in (None, ""):
        return None
    recorded = None
    if cfg.get("resume"):
        recorded = _started_from(run_dir)
        if recorded is None or recorded.get("path") not in (str(value), str(Path(str(value)).expanduser().resolve())):
            raise ConfigError(
                "init_from and resume conflict: a resumed run continues from its own checkpoint; drop init_from=, "
                "or start a new run with it"
            )
    path = resolve(value, task)
    payload = _load(path, task)
    if isinstance(payload, Mapping) and "attnkit" in payload:
        checkpoint = _own_checkpoint(path, payload, task)
        return Start(path, _checkpoint_weights(checkpoint, task), checkpoint, recorded)
    return Start(path, _state_dict_weights(path, payload, task), None, recorded)


def read_weights(path: Path, task: str) -> Weights:
    """The weights in the file `path`, in attnkit's names; refused in one line when it holds none (or another
    task's)."""
    start = read({"init_from": str(path)}, task=task, run_dir=path.parent)
    assert start is not None
    return start.weights


def inherit(cfg: dict[str, Any], start: Start | None, keys: Sequence[str]) -> tuple[dict[str, Any], str | None]:
    """`cfg` with the `model.<key>` of `keys` that it leaves null taken from the checkpoint of this task that `start`
    holds (its weights must fit them), and the line that says so (None when nothing was taken)."""
    if start is None or start.checkpoint is None:
        return cfg, None
    theirs = (start.checkpoint.get("hyper_parameters") or {}).get("model") or {}
    mine = dict(cfg.get("model") or {})
    taken = {key: theirs[key] for key in keys if mine.get(key) is None and theirs.get(key) is not None}
    if not taken:
        return cfg, None
    sizes = ", ".join(f"model.{key}={value}" for key, value in taken.items())
    line = f"init_from: {sizes} as in {start.path} (its weights must fit; give them to choose yourself)"
    return {**cfg, "model": {**mine, **taken}}, line


def apply(start: Start | None, net: nn.Module, *, task: str, run_dir: Path) -> dict[str, Any] | None:
    """Copy the weights of `start` into `net` (in place) before training; the entry of metrics.json, or None without
    `init_from`. A resumed run's start is not copied again: its entry is the one recorded when it started."""
    if start is None:
        return None
    if start.recorded is not None:
        counts = {k: len(start.recorded.get(k, [])) for k in ("copied", "reinitialised", "dropped")}
        return {"path": start.recorded["path"], "kind": start.recorded.get("kind", "?"), **counts}
    weights = start.weights
    report = transplant(weights.tensors, net)
    report.notes = weights.notes
    if not report.copied:
        shown = ", ".join(list(weights.tensors)[:3])
        raise ConfigError(
            f"init_from={str(start.path)!r}: none of its {len(weights.tensors)} tensors ({shown}, ...) fits the model "
            f"of task={task} ({type(net).__name__}): names or shapes differ; give weights of this kind of model "
            f"(a task={task} run's .ckpt, or a timm ViT state dict for task=vit)"
        )
    summary = {
        "path": str(start.path),
        "kind": weights.kind,
        "copied": len(report.copied),
        "reinitialised": len(report.reinitialised),
        "dropped": len(report.dropped),
    }
    if _rank_zero():
        print(report.table(f"init_from {start.path.name} ({weights.kind})"), flush=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / REPORT_FILE, {"path": str(start.path), "kind": weights.kind, **report.as_dict()})
    return summary


# -- reading ---------------------------------------------------------------------------------------------------------


def _load(path: Path, task: str) -> Any:
    """What the file holds: a .safetensors file's tensors, else `torch.load` without running code."""
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file  # optional: the attnkit[timm] extra
        except ImportError as exc:
            raise ConfigError(
                f"init_from={str(path)!r} is a .safetensors file and the safetensors package is not installed; "
                f"pip install 'attnkit[timm]'"
            ) from exc
        try:
            return load_file(str(path))
        except Exception as exc:
            raise ConfigError(
                f"init_from={str(path)!r} is not a readable .safetensors file ({exc}); {fix(task)}"
            ) from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(
            f"init_from={str(path)!r} cannot be read as a checkpoint or a state dict ({type(exc).__name__}: "
            f"another format, truncated, or it holds code, which attnkit never runs); {fix(task)}"
        ) from exc


def _own_checkpoint(path: Path, payload: Mapping[str, Any], task: str) -> dict[str, Any]:
    """An attnkit checkpoint, refused in one line unless a task=`task` run wrote it."""
    marker = payload["attnkit"]
    if isinstance(marker, Mapping) and marker.get("task") != task:
        other = marker.get("task")
        raise ConfigError(
            f"init_from={str(path)!r} is a checkpoint of task={other}, not task={task}: its weights are another "
            f"model's; start a task={other} run from it, or give a task={task} checkpoint"
        )
    try:
        return check_checkpoint(dict(payload), path, task)
    except ConfigError as exc:
        raise ConfigError(f"init_from: {exc}") from exc


def _checkpoint_weights(payload: dict[str, Any], task: str) -> Weights:
    """A checkpoint's evaluation weights: the moving average when it kept one, else the model's."""
    state = payload["state_dict"]
    ema = any(k.startswith("ema.module.") for k in state)
    prefix = "ema.module." if ema else "model."
    tensors = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    model = payload["hyper_parameters"].get("model", {})
    name = model.get("name", "?") if isinstance(model, Mapping) else "?"
    notes = ["the checkpoint's moving average of the weights (the weights it evaluated)"] if ema else []
    return Weights(tensors, f"attnkit checkpoint of task={task}, model {name}", notes)


def _state_dict_weights(path: Path, payload: Any, task: str) -> Weights:
    state = _state_dict(payload)
    if not state:
        raise ConfigError(
            f"init_from={str(path)!r} holds no tensors: it is not a checkpoint or a state dict; {fix(task)}"
        )
    if is_timm_vit(state):
        mapped, notes = timm_vit_state_dict(state, strict=False)
        return Weights(mapped, "timm VisionTransformer state dict", notes)
    return Weights(state, "state dict", [])


def _state_dict(payload: Any) -> dict[str, Tensor]:
    """The tensors of a state dict (also one nested under `state_dict`, `model`, ...), without DDP/compile prefixes."""
    if not isinstance(payload, Mapping):
        return {}
    state = {k: v for k, v in payload.items() if isinstance(k, str) and isinstance(v, Tensor)}
    if not state:
        for key in _NESTED:
            if isinstance(payload.get(key), Mapping) and (state := _state_dict(payload[key])):
                break
    for prefix in _PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def _rank_zero() -> bool:
    return all(os.environ.get(var, "0") == "0" for var in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def _started_from(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / REPORT_FILE).read_text())
    except (OSError, ValueError):
        return None
