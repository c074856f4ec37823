"""A Lightning Trainer from the `trainer` config group, writing checkpoints and metrics into the run directory."""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

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


# Trainer arguments attnkit sets itself: the run directory's logger, checkpoints and plugins.
RESERVED = ("logger", "callbacks", "plugins", "default_root_dir", "enable_checkpointing", "enable_model_summary")


def check_trainer_config(trainer_cfg: dict[str, Any]) -> None:
    """Refuse, before anything is built or written, trainer settings that Lightning would take badly or that would
    train nothing: one line each, with the fix."""
    import pytorch_lightning as pl  # lazy: Lightning takes seconds to import, --help and mode=list skip it

    accepted = inspect.signature(pl.Trainer.__init__).parameters
    for key in trainer_cfg:
        if key in RESERVED:
            raise ConfigError(
                f"trainer.{key} is set by attnkit (metrics.csv and checkpoints in the run directory); remove it"
            )
        if key not in accepted:
            raise ConfigError(f"trainer.{key} is not a Lightning Trainer argument{did_you_mean(key, list(accepted))}")
    epochs, steps = trainer_cfg.get("max_epochs"), trainer_cfg.get("max_steps", -1)
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < -1):
        raise ConfigError(f"trainer.max_epochs={epochs!r} must be an int >= 1 (or -1 with trainer.max_steps)")
    if epochs == 0 or steps == 0:
        raise ConfigError("trainer.max_epochs=0 (or max_steps=0) trains nothing; give at least 1, or use mode=test")
    if trainer_cfg.get("limit_train_batches", 1) in (0, 0.0):
        raise ConfigError("trainer.limit_train_batches=0 trains nothing; give a positive number of batches or fraction")
    if epochs == -1 and (steps is None or steps < 0):
        raise ConfigError("trainer.max_epochs=-1 trains without end; set trainer.max_steps to size the schedule")
    accelerator, devices = str(trainer_cfg.get("accelerator", "auto")), trainer_cfg.get("devices", "auto")
    cuda = torch_cuda_devices()
    strategy = strategy_name(trainer_cfg.get("strategy", "auto"))
    if strategy.startswith("fsdp") and cuda == 0:
        raise ConfigError(
            f"trainer.strategy={strategy} (FSDP) needs GPUs and this machine has none (torch's FSDP and Lightning "
            f"refuse the CPU); use trainer=ddp trainer.accelerator=cpu trainer.devices=2"
        )
    if strategy.startswith("fsdp") and accelerator not in ("gpu", "cuda"):
        raise ConfigError(
            f"trainer.strategy={strategy} (FSDP) runs on GPUs only; set trainer.accelerator=gpu, or use trainer=ddp "
            f"on the CPU"
        )
    clip = trainer_cfg.get("gradient_clip_val")
    if strategy.startswith("fsdp") and clip and trainer_cfg.get("gradient_clip_algorithm") in (None, "norm"):
        raise ConfigError(
            f"trainer.gradient_clip_val={clip} clips by norm, which Lightning cannot do under FSDP; set "
            f"trainer.gradient_clip_val=null, or trainer.gradient_clip_algorithm=value"
        )
    if accelerator in ("gpu", "cuda") and cuda == 0:
        raise ConfigError(f"trainer.accelerator={accelerator} but this machine has no GPU; use trainer=cpu")
    if accelerator in ("gpu", "cuda") and isinstance(devices, int) and devices > cuda:
        raise ConfigError(f"trainer.devices={devices} but this machine has {cuda} GPU(s); lower trainer.devices")
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and cuda == 0)
    if on_cpu and isinstance(devices, int) and devices > (os.cpu_count() or 1):
        raise ConfigError(
            f"trainer.devices={devices} CPU processes on {os.cpu_count()} cores; use at most {os.cpu_count()}"
        )
    precision = str(trainer_cfg.get("precision", "32-true"))
    if on_cpu and precision in ("16", "16-mixed", "16-true"):
        raise ConfigError("trainer.precision=16-mixed needs a GPU; on the CPU use 32-true or bf16-mixed")
    if on_cpu and precision.startswith("bf16") and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        print(
            f"warning: trainer.precision={precision}: this CPU has no native bfloat16 (AVX-512 BF16 or AMX), so it is "
            f"emulated and slower than float32; set trainer.precision=32-true",
            file=sys.stderr,
            flush=True,
        )


def strategy_name(strategy: Any) -> str:
    """The strategy's name, given by name (`ddp`, `fsdp`) or as a mapping with `_target_` (its class:
    `...FSDPStrategy` -> `fsdp`)."""
    if isinstance(strategy, Mapping):
        return str(strategy.get("_target_", "")).rsplit(".", 1)[-1].lower().removesuffix("strategy") or "?"
    return str(strategy)


# Strategy arguments that take module classes: a list of dotted names in the config, a set of classes for Lightning
CLASS_SETS = ("auto_wrap_policy", "activation_checkpointing_policy", "activation_checkpointing")


def make_strategy(strategy: Any) -> Any:
    """`trainer.strategy` for Lightning: a name as it is; a mapping `{_target_: <strategy class>, <its arguments>}` as
    that class's instance, with lists of dotted class names (`auto_wrap_policy: [attnkit.nn.EncoderBlock]`) as sets
    of classes."""
    if not isinstance(strategy, Mapping):
        return strategy
    from hydra.utils import get_class  # lazy: tasks (and this module) load at start-up without Hydra

    node = dict(strategy)
    target = node.pop("_target_", None)
    if not target:
        raise ConfigError(
            "trainer.strategy as a mapping needs _target_: a Lightning strategy class (e.g. "
            "pytorch_lightning.strategies.FSDPStrategy); or give a name: trainer.strategy=ddp"
        )
    try:
        for key in CLASS_SETS:
            if isinstance(node.get(key), (list, tuple)):
                node[key] = {get_class(name) for name in node[key]}
        return get_class(target)(**node)
    except Exception as exc:
        raise ConfigError(f"trainer.strategy ({target}) refused its config: {' '.join(str(exc).split())}") from exc


def torch_cuda_devices() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def trainer_device(trainer_cfg: Mapping[str, Any]) -> str:
    """Where Lightning trains with these Trainer arguments: `cuda` when a GPU is asked for (or `auto`) and present,
    else `cpu`."""
    accelerator = str(trainer_cfg.get("accelerator") or "auto").lower()
    return "cuda" if accelerator in ("gpu", "cuda", "auto") and torch_cuda_devices() > 0 else "cpu"


def single_process(trainer_cfg: Mapping[str, Any]) -> bool:
    """Whether Lightning trains with these Trainer arguments in this one process (one device on one node), not in
    several that each run the command (DDP, FSDP)."""
    devices, nodes = trainer_cfg.get("devices", "auto"), trainer_cfg.get("num_nodes", 1)
    if nodes not in (1, "1", None):
        return False
    if devices == "auto":
        return trainer_device(trainer_cfg) == "cpu" or torch_cuda_devices() == 1
    return devices in (1, "1", None) or (isinstance(devices, (list, tuple)) and len(devices) == 1)


# Loggers of the `logger` group: the package each needs, and the extra that installs it
LOGGER_PACKAGES = {
    "tensorboard": ("tensorboard", "tensorboard"),
    "wandb": ("wandb", "wandb"),
    "mlflow": ("mlflow", "mlflow"),
}


def check_loggers(loggers: dict[str, Any] | None) -> None:
    """A chosen logger whose package is missing: one line naming the extra that installs it."""
    for name in loggers or {}:
        package, extra = LOGGER_PACKAGES.get(name, (None, None))
        if package and importlib.util.find_spec(package) is None:
            raise ConfigError(f"logger={name} needs the {package} package; pip install 'attnkit[{extra}]'")


def make_loggers(loggers: dict[str, Any] | None, run_dir: Path, resumed_step: int | None) -> list:
    """attnkit's CSV logger (always: reports, summaries and resume read metrics.csv) and the other chosen ones,
    writing under the run directory unless their config says otherwise."""
    from hydra.utils import instantiate  # lazy, as make_trainer's imports

    from attnkit.train.callbacks import ResumableCSVLogger  # a Lightning logger

    check_loggers(loggers)
    out: list = [ResumableCSVLogger(run_dir, resumed_step)]
    for name, node in (loggers or {}).items():
        if not node or "_target_" not in node:
            continue
        node = dict(node)
        if "save_dir" in node and node["save_dir"] is None:
            node["save_dir"] = str(run_dir)
        if "tracking_uri" in node and node["tracking_uri"] is None:
            node["tracking_uri"] = f"sqlite:///{run_dir.resolve()}/mlflow.db"
        try:
            out.append(instantiate(node))
        except Exception as exc:
            raise ConfigError(f"logger={name} refused its config: {' '.join(str(exc).split())[:300]}") from exc
    return out


def make_trainer(
    trainer_cfg: dict[str, Any],
    run_dir: Path,
    *,
    monitor: str,
    mode: str = "max",
    checkpoints: bool = True,
    resumed_step: int | None = None,
    loggers: dict[str, Any] | None = None,
    callbacks: dict[str, Any] | None = None,
):
    """`pytorch_lightning.Trainer(**trainer_cfg)` writing metrics.csv (and the chosen `loggers`),
    `checkpoints/best.ckpt` (by `monitor`) and `checkpoints/last.ckpt` (each epoch, and every
    `callbacks.checkpoint.every_n_steps` training steps when set) into `run_dir`, logging the learning rate,
    stopping early when `callbacks.early_stopping` is set.

    Checkpoints are written whole and read without running code; they carry the random states, so that a run
    resumed from one (`resumed_step`: its global step) continues as the uninterrupted run would.
    """
    # lazy: Lightning takes seconds to import, and tasks import this module at start-up (--help, mode=list)
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint

    from attnkit.train.callbacks import FiniteTraining, FlushMetrics, InterruptNotice, RandomState, WholeCheckpointIO

    quiet_lightning()
    check_trainer_config(trainer_cfg)
    options = callbacks or {}
    every_n_steps = (options.get("checkpoint") or {}).get("every_n_steps")
    listed: list[pl.Callback] = [RandomState(), InterruptNotice(run_dir), FlushMetrics(), FiniteTraining(run_dir)]
    if checkpoints:
        folder = run_dir / "checkpoints"
        common = {"dirpath": folder, "auto_insert_metric_name": False, "enable_version_counter": False}
        listed.append(ModelCheckpoint(filename="best", monitor=monitor, mode=mode, **common))
        # last.ckpt at every validation (or epoch end), whatever the score: Lightning's own save_last writes it only
        # when the best checkpoint is written too, so a run whose score stopped improving would resume from its
        # best epoch, not its last
        listed.append(ModelCheckpoint(filename="last", monitor=None, save_top_k=1, **common))
        if every_n_steps:
            steps = {"every_n_train_steps": every_n_steps, "save_top_k": 0, "save_last": True}
            listed.append(ModelCheckpoint(**steps, **common))  # last.ckpt within long epochs too
        listed.append(LearningRateMonitor(logging_interval="step"))
        if options.get("early_stopping"):
            try:
                listed.append(EarlyStopping(monitor=monitor, mode=mode, **options["early_stopping"]))
            except TypeError as exc:
                raise ConfigError(f"callbacks.early_stopping: {exc} (keys are EarlyStopping's)") from exc
    try:
        return pl.Trainer(
            **{**trainer_cfg, "strategy": make_strategy(trainer_cfg.get("strategy", "auto"))},
            callbacks=listed,
            logger=make_loggers(loggers, run_dir, resumed_step) if checkpoints else make_loggers(None, run_dir, None),
            plugins=[WholeCheckpointIO()],
            default_root_dir=str(run_dir),
            enable_checkpointing=checkpoints,
            enable_model_summary=False,
        )
    except ConfigError:
        raise
    except Exception as exc:  # Lightning's refusals (MisconfigurationException, ValueError, ...) as one line
        raise ConfigError(f"trainer config refused by Lightning: {' '.join(str(exc).split())}") from exc
