"""`init_from=<path>`: start training from other weights, copying into the model built from the config all that fits.

The path is an attnkit checkpoint of the same task (`outputs/<date>/<time>/checkpoints/last.ckpt`, or the run
folder; its evaluation weights: the moving average when it kept one), a timm VisionTransformer state dict
(`torch.save(model.state_dict())` as .pth/.pt/.bin, or .safetensors: timm names are mapped, see attnkit.interop), or
any state dict in attnkit's own names. The model may differ (another attention, positional encoding, more layers):
`attnkit.interop.transplant` copies each tensor whose name and shape fit, and the report (copied, re-initialised,
dropped) is printed once and written to `init_from.json` in the run directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.interop import is_timm_vit, timm_vit_state_dict, transplant
from attnkit.train.checkpoints import load_checkpoint

REPORT_FILE = "init_from.json"
_NESTED = ("state_dict", "model", "model_state_dict", "module", "state_dict_ema")
_PREFIXES = ("module.", "_orig_mod.")


@dataclass
class Weights:
    """Tensors in attnkit's names, what they came from (`kind`) and how they were mapped (`notes`)."""

    tensors: dict[str, Tensor]
    kind: str
    notes: list[str]


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


def read_weights(path: Path, task: str) -> Weights:
    """The weights in `path`, in attnkit's names; refused in one line when it holds none (or another task's)."""
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise ConfigError(
                f"init_from={str(path)!r} is a .safetensors file and the safetensors package is not installed; "
                f"pip install 'attnkit[timm]'"
            ) from exc
        try:
            payload: Any = load_file(str(path))
        except Exception as exc:
            raise ConfigError(
                f"init_from={str(path)!r} is not a readable .safetensors file ({exc}); {fix(task)}"
            ) from exc
    else:
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ConfigError(
                f"init_from={str(path)!r} cannot be read as a checkpoint or a state dict ({type(exc).__name__}: "
                f"another format, truncated, or it holds code, which attnkit never runs); {fix(task)}"
            ) from exc
    if isinstance(payload, Mapping) and "attnkit" in payload:
        return _from_checkpoint(path, payload["attnkit"], task)
    state = _state_dict(payload)
    if not state:
        raise ConfigError(
            f"init_from={str(path)!r} holds no tensors: it is not a checkpoint or a state dict; {fix(task)}"
        )
    if is_timm_vit(state):
        mapped, notes = timm_vit_state_dict(state, strict=False)
        return Weights(mapped, "timm VisionTransformer state dict", notes)
    return Weights(state, "state dict", [])


def _from_checkpoint(path: Path, marker: Any, task: str) -> Weights:
    if isinstance(marker, Mapping) and marker.get("task") != task:
        other = marker.get("task")
        raise ConfigError(
            f"init_from={str(path)!r} is a checkpoint of task={other}, not task={task}: its weights are another "
            f"model's; start a task={other} run from it, or give a task={task} checkpoint"
        )
    try:
        payload = load_checkpoint(path, task)  # attnkit's marker, the weights and hyperparameters
    except ConfigError as exc:
        raise ConfigError(f"init_from: {exc}") from exc
    state = payload["state_dict"]
    ema = any(k.startswith("ema.module.") for k in state)
    prefix = "ema.module." if ema else "model."
    tensors = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    model = payload["hyper_parameters"].get("model", {})
    name = model.get("name", "?") if isinstance(model, Mapping) else "?"
    notes = ["the checkpoint's moving average of the weights (the weights it evaluated)"] if ema else []
    return Weights(tensors, f"attnkit checkpoint of task={task}, model {name}", notes)


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


def apply(cfg: Mapping[str, Any], net: nn.Module, *, task: str, run_dir: Path) -> dict[str, Any] | None:
    """Load `cfg["init_from"]` into `net` (in place) before training; the entry of metrics.json, or None without it.

    With `resume`, the checkpoint holds the weights: `init_from` is refused, unless it is the one this run started
    from (a resumed run repeats its own command line), which is then not loaded again.
    """
    value = cfg.get("init_from")
    if value in (None, ""):
        return None
    if cfg.get("resume"):
        started = _started_from(run_dir)
        if started is not None and started.get("path") in (str(value), str(Path(str(value)).expanduser().resolve())):
            counts = {k: len(started.get(k, [])) for k in ("copied", "reinitialised", "dropped")}
            return {"path": started["path"], "kind": started.get("kind", "?"), **counts}
        raise ConfigError(
            "init_from and resume conflict: a resumed run continues from its own checkpoint; drop init_from=, or "
            "start a new run with it"
        )
    path = resolve(value, task)
    weights = read_weights(path, task)
    report = transplant(weights.tensors, net)
    report.notes = weights.notes
    if not report.copied:
        shown = ", ".join(list(weights.tensors)[:3])
        raise ConfigError(
            f"init_from={str(path)!r}: none of its {len(weights.tensors)} tensors ({shown}, ...) fits the model of "
            f"task={task} ({type(net).__name__}): names or shapes differ; give weights of this kind of model "
            f"(a task={task} run's .ckpt, or a timm ViT state dict for task=vit)"
        )
    summary = {
        "path": str(path),
        "kind": weights.kind,
        "copied": len(report.copied),
        "reinitialised": len(report.reinitialised),
        "dropped": len(report.dropped),
    }
    if _rank_zero():
        print(report.table(f"init_from {path.name} ({weights.kind})"), flush=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        from attnkit.train.reports import write_json

        write_json(run_dir / REPORT_FILE, {"path": str(path), "kind": weights.kind, **report.as_dict()})
    return summary


def _started_from(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / REPORT_FILE).read_text())
    except (OSError, ValueError):
        return None
