"""The task protocol and its base: what `python -m attnkit mode=train|test|predict|generate|info` runs, written once.

A task is a registered dataclass whose fields are its recipe (learning rate, schedule, augmentation, decoding, ...).
The config node `task.*`, the YAML defaults (a task's preset pulls the node in, it does not restate it) and the
LightningModule's saved hyperparameters all come from those fields. The CLI builds the task with
`build_spec("task", cfg["task"])` and calls `task.<mode>(cfg, run_dir=..., overrides=...)`, which returns the
metrics it reported.

From a config to what is trained, `Task.prepare` goes one way, through four hooks:

1. `load(cfg, given)` -> `LoadedData`: the data source and its splits;
2. `resolve(cfg, loaded, given)` -> `Resolved`: the one step that turns (config, data statistics) into the run's
   config, everything a size rule chooses filled in and said in `lines` (default: the config as it is). It is pure:
   it reads the data, the checkpoints in `given` and, for a rule that plans by time, the speed of a few training
   steps (attnkit/train/step_time.py, on a copy of the model, random state restored), and changes nothing in place.
   The run's `config.yaml` records its result, and a new task is built from its `task` node: nothing after it
   changes the config or the task;
3. `setup(cfg, loaded, given)` -> `Setup`: the model (and whatever the task encodes from the data), from the
   resolved config alone; all this happens before Lightning is imported (bad options fail in seconds, in one line);
4. `lightning(cfg, setup, checkpoint)` -> (LightningModule, LightningDataModule).

A task implements `load`, `setup` and `lightning`, may implement `resolve`, `predict` and `generate`, and may change
`evaluate` (what is scored after training), `metrics` (extra entries of metrics.json), `artifacts` (files beside
them) and `summary` (the table printed at the end). `inherits` names the model keys an `init_from` checkpoint of the
same task fixes where the config leaves them null (attnkit/train/init_from.py).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import resource
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from omegaconf import OmegaConf
from torch import nn

from attnkit.data.splits import SPLITS, check_sizes, split_sizes
from attnkit.data.warning import reported_warnings
from attnkit.errors import AttnkitError, ConfigError, DataError, TrainingError
from attnkit.registry import build_spec
from attnkit.train import init_from, provenance, run
from attnkit.train.checkpoints import finished, load_checkpoint, load_weights, resumed_epoch
from attnkit.train.compile import compile_module
from attnkit.train.info import describe
from attnkit.train.reports import (
    finite_scores,
    plot_learning_curves,
    print_summary,
    print_table,
    read_metrics_csv,
    write_json,
)
from attnkit.train.trainer import check_loggers, check_trainer_config, make_trainer

# (recipe key, lowest, highest, highest allowed): checked for every task that has the key
RANGES = (
    ("lr", 1e-12, float("inf"), True),
    ("weight_decay", 0.0, float("inf"), True),
    ("min_lr_ratio", 0.0, 1.0, True),
    ("label_smoothing", 0.0, 1.0, False),
    ("warmup_steps", 0, float("inf"), True),
    ("warmup_epochs", 0.0, float("inf"), True),
    ("ema_decay", 0.0, 1.0, False),
)
CKPT_HINT = "give ckpt_path=outputs/<date>/<time>/checkpoints/best.ckpt (or last.ckpt)"

# What a checkpoint fixes for mode=test and mode=predict: the model as it was built (with its vocabulary and classes)
FIXED = ("model", "heads", "attention", "pos_enc", "norm", "ffn", "plan")
# Keys of the command line that mode=test / mode=predict apply, besides a task's `evaluation_keys`; every other key
# must be the checkpoint's (or is refused: it would be ignored)
APPLIED = {
    "test": ("mode", "ckpt_path", "plugins", "data", "trainer", "seed", "compile"),
    "predict": ("mode", "ckpt_path", "plugins", "input"),
}


class FirstStep:
    """Whether a run has taken a training step of its own (a resumed run: beyond its checkpoint's step)."""

    trainer: Any = None
    resumed_step: int = 0

    def taken(self) -> bool:
        return self.trainer is not None and self.trainer.global_step > self.resumed_step


@dataclass(frozen=True)
class Given:
    """What a mode knows besides the config, each read once: the command line's overrides, the checkpoint a test
    evaluates (`checkpoint`: its recipe, data and weights), the checkpoint a resumed run continues from (`resumed`)
    and the weights `init_from` names (`start`)."""

    overrides: list[str] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    resumed: dict[str, Any] | None = None
    start: init_from.Start | None = None


@dataclass
class LoadedData:
    """What `Task.load` read: the data source (`source`, built from the data config `cfg`) and its splits (`data`)."""

    source: Any
    data: Any
    cfg: dict[str, Any]


@dataclass
class Resolved:
    """What the resolve step made of a config: the run's config (`config`, every value it chose filled in), what it
    chose (`recipe`, the task's own record of it; None: nothing chosen) and the lines that say so when a run starts."""

    config: dict[str, Any]
    recipe: Any = None
    lines: list[str] = field(default_factory=list)


@dataclass
class Setup:
    """What `Task.setup` built from the resolved config: the model (`net`, built with `context`: what the data fixes,
    such as the vocabulary or the classes) over the loaded data (`loaded`), the splits as the model reads them
    (`encoded`: token ids, for tasks that encode), the tokenizers (text tasks), what the checkpoint must carry for
    test and predict (`extras`) and the data warnings counted while it was built (`warnings`)."""

    loaded: LoadedData
    context: dict[str, Any]
    net: nn.Module
    extras: dict[str, Any] = field(default_factory=dict)
    encoded: dict[str, Any] = field(default_factory=dict)
    tokenizers: Any = None
    warnings: list[str] = field(default_factory=list)

    @property
    def source(self) -> Any:
        return self.loaded.source

    @property
    def data(self) -> Any:
        return self.loaded.data

    @property
    def data_cfg(self) -> dict[str, Any]:
        return self.loaded.cfg


@dataclass
class Task:
    """Base of tasks: subclasses are registered dataclasses (fields = recipe) that implement the hooks.

    Class attributes: `name` (as registered), `title` (report headings), `monitor` (the validation metric that picks
    the best checkpoint), `monitor_mode` (`max`: higher is better, or `min`), `inherits` (model keys taken from an
    `init_from` checkpoint of this task where the config leaves them null), `batches_shard` (its batch sampler
    shards the data across processes itself, so Lightning must not add a distributed sampler) and
    `evaluation_keys` (dotted keys, such as decoding options, that mode=test and mode=predict take from the command
    line on top of the checkpoint's: see `checked_overrides`); `classes_need_examples`: an example has one class, so
    a training split needs at least one example per class (not so for a segmentation's label maps). A `test_checkpoint`
    field ("last" or "best") says which weights are tested after training.
    """

    name: ClassVar[str] = "task"
    title: ClassVar[str] = "task"
    monitor: ClassVar[str] = "val/acc"
    monitor_mode: ClassVar[str] = "max"
    inherits: ClassVar[tuple[str, ...]] = ()
    batches_shard: ClassVar[bool] = False
    evaluation_keys: ClassVar[tuple[str, ...]] = ()
    classes_need_examples: ClassVar[bool] = True

    # -- the recipe ----------------------------------------------------------------------------------------------

    def __post_init__(self) -> None:
        """Range checks of the recipe fields every task may have (one line each, naming the key)."""
        for key, low, high, closed in RANGES:
            value = getattr(self, key, None)
            if value is None:
                continue
            number = not isinstance(value, bool) and isinstance(value, (int, float))
            if not number or value < low or value > high or (value == high and not closed):
                bound = "]" if closed else ")"
                hint = "a positive number" if key == "lr" else f"in [{low:g}, {high:g}{bound}"
                raise ConfigError(f"task.{key}={value!r} must be {hint}")

    def recipe(self) -> dict[str, Any]:
        """The task's config node: `name` and every field (nested dataclasses as dicts)."""
        return {"name": self.name, **dataclasses.asdict(self)}

    # -- what a task implements ----------------------------------------------------------------------------------

    def load(self, cfg: dict[str, Any], given: Given) -> LoadedData:
        raise NotImplementedError(f"{type(self).__name__} must implement load()")

    def resolve(self, cfg: dict[str, Any], loaded: LoadedData, given: Given) -> Resolved:
        """The run's config for this data (default: the config as it is); see the module docstring."""
        return Resolved(cfg)

    def setup(self, cfg: dict[str, Any], loaded: LoadedData, given: Given) -> Setup:
        raise NotImplementedError(f"{type(self).__name__} must implement setup()")

    def lightning(self, cfg: dict[str, Any], setup: Setup, checkpoint: dict[str, Any] | None) -> tuple[Any, Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement lightning()")

    def predict(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        raise ConfigError(f"task={self.name} has no predict mode; use mode=train or mode=test")

    def generate(self, cfg: dict[str, Any], *, run_dir: Path | None, overrides: list[str] | None = None) -> dict:
        raise ConfigError(f"task={self.name} has no generate mode; generation is task=lm's (a language model)")

    def example(self, setup: Setup) -> Any:
        """For `mode=info`: a function running the model forward on one training sample (its longest)."""
        raise ConfigError(f"task={self.name} has no info mode (it does not say what one sample is)")

    def evaluate(self, trainer: Any, module: Any, datamodule: Any, ckpt_path: str | None) -> dict[str, float]:
        """Scores after training: the test split, with the weights of `ckpt_path` (None: as trained)."""
        return floats(trainer.test(module, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False))

    def metrics(self, setup: Setup, module: Any) -> dict[str, Any]:
        """Entries of metrics.json besides the scores and the common ones (parameters, time, throughput)."""
        return {}

    def artifacts(self, cfg: dict[str, Any], run_dir: Path, module: Any, setup: Setup, metrics: dict) -> dict:
        """Write the task's own files into the run directory; return rows for the summary table."""
        return {}

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Rows of the summary table printed at the end (label -> value)."""
        named = {
            "test/acc": "test accuracy",
            "test/loss": "test loss",
            "val/acc": "val accuracy",
            "val/loss": "val loss",
        }
        rows = {named.get(key, key): metrics[key] for key in metrics if key.startswith(("test/", "val/"))}
        labels = {
            "params": "parameters",
            "train_time_s": "training time (s)",
            "epochs": "epochs",
            "peak_memory_mb": "peak memory (MB)",
            "tested": "tested weights",
        }
        rows.update({label: metrics[key] for key, label in labels.items() if key in metrics})
        rows.update({f"throughput ({k[6:-6]}/s)": v for k, v in metrics.items() if k.endswith("_per_s")})
        rows.update({f"best {k[5:].replace('_', '/', 1)}": v for k, v in metrics.items() if k.startswith("best_val_")})
        if "ema" in metrics:
            ema = metrics["ema"]
            how = "with warm-up" if ema["warmup"] else "without warm-up"
            rows["evaluated weights"] = f"moving average, decay {ema['decay']:g} {how}, {ema['updates']:,} updates"
        return rows

    # -- from a config to a model: the one path every mode takes -------------------------------------------------

    def prepare(self, cfg: dict[str, Any], given: Given | None = None) -> tuple[dict[str, Any], Task, Setup]:
        """(the run's config, the task built from it, its setup): the data loaded, the config resolved for it and its
        lines printed, the model built. With `given.checkpoint` (test mode) nothing is chosen: this task is the
        checkpoint's recipe and the model is the checkpoint's."""
        given = given or Given()
        cfg = {**cfg, "task": self.recipe()}
        run.seed(cfg["seed"])  # data that a task generates or splits at random comes out the same in every mode
        with reported_warnings() as seen:
            loaded = self.load(cfg, given)
            task = self
            if given.checkpoint is None:
                cfg, line = init_from.inherit(cfg, given.start, self.inherits)
                resolved = self.resolve(cfg, loaded, given)
                for text in ([line] if line else []) + resolved.lines:
                    print(text, flush=True)
                cfg = resolved.config
                task = self if cfg["task"] == self.recipe() else build_spec("task", cfg["task"])
            setup = task.setup(cfg, loaded, given)
            stages = ("test",) if given.checkpoint is not None else SPLITS
            classes = setup.context.get("num_classes") if task.classes_need_examples else None
            check_sizes(split_sizes(loaded.data, stages), classes, loaded.cfg)
        setup.warnings = seen
        return cfg, task, setup

    # -- modes -----------------------------------------------------------------------------------------------------

    def train(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        """Fit on the train split (validating each epoch), evaluate, write the reports.

        With `cfg["resume"]` (a checkpoint of this run, set by `python -m attnkit resume=<run>`), training continues
        from it in the same run directory: weights, optimizer, schedule, moving average, epoch, data order and
        random state, as if it had never stopped.

        Refused before its first training step (by attnkit or by Lightning), a run leaves nothing in `run_dir`.
        """
        if cfg.get("ckpt_path"):
            raise ConfigError(
                f"ckpt_path={cfg['ckpt_path']} is for mode=test and mode=predict, and training does not read it: to "
                f"continue that run give resume=<its run folder>; to train from its weights give init_from=<the .ckpt>"
            )
        check_trainer_config(cfg["trainer"])
        check_loggers(cfg.get("logger"))
        step = FirstStep()
        with run.undone_on_failure(run_dir, keep=step.taken):
            return self._train(cfg, run_dir, list(overrides or []), step)

    def _train(self, cfg: dict[str, Any], run_dir: Path, overrides: list[str], step: FirstStep) -> dict[str, Any]:
        resume = cfg.get("resume")
        given = Given(
            overrides,
            resumed=load_checkpoint(resume, self.name) if resume else None,
            start=init_from.read(cfg, task=self.name, run_dir=run_dir),
        )
        if given.resumed is not None and (done := finished(given.resumed, cfg["trainer"])):
            raise ConfigError(f"the run in {run_dir} is finished ({done[0]}: {done[1]}); there is nothing to resume")
        cfg, task, setup = self.prepare(cfg, given)
        started = init_from.apply(given.start, setup.net, task=task.name, run_dir=run_dir)
        if getattr(setup.net, "plan", None) is not None:
            cfg = {**cfg, "plan": setup.net.plan}  # the per-layer plan the model built, recorded beside the config
        module, datamodule = task.lightning(cfg, setup, None)
        if given.resumed is not None:
            if hasattr(datamodule, "first_epoch"):  # attnkit's SplitsDataModule: see attnkit/train/datamodule.py
                datamodule.first_epoch = resumed_epoch(given.resumed)
            warn_if_config_changed(run_dir / "config.yaml", cfg)
        if len(datamodule.train_dataloader()) == 0:
            raise DataError(
                f"the training split gives no batch ({len(setup.data.train) if hasattr(setup.data, 'train') else 0} "
                f"examples, data.batch_size={getattr(setup.source, 'batch_size', '?')}); give more data or a "
                f"smaller batch"
            )
        resumed_step = None if given.resumed is None else int(given.resumed.get("global_step", 0))
        trainer = make_trainer(  # before anything is written: Lightning's refusals leave no file
            task.trainer_config(cfg),
            run_dir,
            monitor=task.monitor,
            mode=task.monitor_mode,
            resumed_step=resumed_step,
            loggers=cfg.get("logger"),
            callbacks=cfg.get("callbacks"),
        )
        step.trainer, step.resumed_step = trainer, resumed_step or 0
        run.save_config(cfg, run_dir)
        provenance.record(run_dir, setup.data_cfg, provenance.content_digest(setup.data))
        with PeakMemory() as memory:
            try:
                trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume) if resume else None)
            except AttnkitError:
                raise
            except Exception as exc:  # a component that breaks its contract on real batches, a bug: one line
                if run.write_error(exc, None):  # a full disk: the caller words it
                    raise
                raise failed_training(exc, trainer.global_step) from exc  # before step 1: nothing is kept
        if trainer.global_step == 0:
            raise DataError(
                "no training step ran (trainer.limit_train_batches=0, or an empty epoch); nothing was trained, so "
                "nothing is reported: check the data and the trainer limits"
            )
        fit_s, trained = module.train_seconds, dict(module.trained)  # before evaluate() loads the best checkpoint
        callback = trainer.checkpoint_callback
        best = callback.best_model_path if callback else ""
        best_score = callback.best_model_score if callback else None
        tested = best if task.test_checkpoint_choice() == "best" and best else None  # None: the weights as trained
        results = task.evaluate(trainer, module, datamodule, tested)
        if not trainer.is_global_zero:
            return {}
        metrics = {
            **results,
            **task.metrics(setup, module),
            "params": count_params(module.model),
            "train_time_s": round(fit_s, 2),
            "epochs": trainer.current_epoch if not trainer.fast_dev_run else 1,
            "steps": trainer.global_step,
            **{f"train_{k}_per_s": round(n / fit_s, 1) if fit_s > 0 else 0.0 for k, n in trained.items()},
            "peak_memory_mb": memory.mb,
            # null where no checkpoint was chosen by it (trainer.fast_dev_run, no validation): no score, not NaN
            f"best_{task.monitor.replace('/', '_')}": None if best_score is None else float(best_score),
            "best_checkpoint": str(best),
            "tested": "best" if tested else "last",
            **({"ema": ema_report(module.ema)} if module.ema is not None else {}),
            **({"resumed_from": str(resume)} if resume else {}),
            **({"init_from": started} if started else {}),
            "warnings": list(setup.warnings),
        }
        task.report(cfg, run_dir, module, setup, metrics, title=f"{task.title} — trained")
        return metrics

    def test(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        """Evaluate a checkpoint on the test split of its own data (or of `data=...` given on the command line), with
        the recipe it was trained with (and the `task.<key>=...` of the command line on top)."""
        ckpt, payload = self.checkpoint(cfg, overrides)
        cfg = self.checkpoint_config(cfg, payload, overrides)
        for change in provenance.compare(Path(ckpt).resolve().parent.parent):
            print(f"warning: {change}; its scores may differ from the run's", file=sys.stderr, flush=True)
        task = build_spec("task", self.saved_recipe(payload, overrides))
        cfg, task, setup = task.prepare(cfg, Given(list(overrides or []), checkpoint=payload))
        module, datamodule = task.lightning(cfg, setup, payload)

        trainer_cfg = {**task.trainer_config(cfg), "max_epochs": 1}
        trainer = make_trainer(trainer_cfg, run_dir, monitor=task.monitor.replace("val/", "test/"), checkpoints=False)
        results = floats(trainer.test(module, datamodule=datamodule, verbose=False))
        if not trainer.is_global_zero:
            return {}
        metrics = {
            **results,
            **task.metrics(setup, module),
            "checkpoint": str(ckpt),
            "params": count_params(module.model),
            "warnings": list(setup.warnings),
        }
        cfg = {**cfg, "data": setup.data_cfg}
        run.save_config(cfg, run_dir)
        provenance.record(run_dir, setup.data_cfg, provenance.content_digest(setup.data))
        task.report(cfg, run_dir, module, setup, metrics, title=f"{task.title} — checkpoint evaluated")
        return metrics

    def info(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        """Parameters per component, FLOPs per sample and the memory training keeps, per layer, without training;
        printed and written to info.json."""
        cfg, task, setup = self.prepare(cfg, Given(list(overrides or [])))
        report = describe(setup.net, task.example(setup), int(getattr(setup.source, "batch_size", 1) or 1))
        report["plan"] = getattr(setup.net, "plan", None)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "info.json", report)
        columns = {
            "component": "component",
            "mixer": "mixer",
            "params": "parameters",
            "flops_per_sample": "FLOPs / sample",
            "activation_mb": "activations (MB)",
            "attention_mb": "of which attention (MB)",
            "decoding_state": "decoding state (numbers)",
        }
        print_table(f"{task.name}: {cfg['model']['name']} at batch {report['batch_size']}", report["layers"], columns)
        totals = {
            "parameters": report["params"],
            "FLOPs per sample (forward)": report["flops_per_sample"],
            "activations kept for backward (MB)": report["activation_mb"],
            "weights, gradients, AdamW moments (MB)": report["weights_grads_adam_mb"],
            "estimated training memory (MB)": report["estimated_training_mb"],
        }
        print_table("totals", [{"what": k, "value": v} for k, v in totals.items()], {"what": "", "value": ""})
        return report

    # -- pieces every task shares ----------------------------------------------------------------------------------

    def trainer_config(self, cfg: dict[str, Any]) -> dict[str, Any]:
        """The Lightning Trainer's arguments: the config's, without a distributed sampler where `batches_shard`."""
        return {**cfg["trainer"], "use_distributed_sampler": False} if self.batches_shard else cfg["trainer"]

    def test_checkpoint_choice(self) -> str:
        """`last` or `best`: the task's `test_checkpoint` field, when it has one."""
        choice = getattr(self, "test_checkpoint", "last")
        if choice not in ("last", "best"):
            raise ConfigError(f"task.test_checkpoint={choice!r} must be last or best")
        return choice

    def build_model(
        self, cfg: dict[str, Any], context: dict[str, Any], checkpoint: dict[str, Any] | None
    ) -> tuple[nn.Module, dict[str, Any]]:
        """(model, context): from the config and the data's context, or as the checkpoint recorded them."""
        if checkpoint is not None:
            hparams = checkpoint["hyper_parameters"]
            model_cfg, context = hparams["model"], hparams["context"]
        else:
            model_cfg = cfg["model"]
        return build_spec("model", model_cfg, **context), dict(context)

    def make_module(
        self, module_cls: type, cfg: dict[str, Any], setup: Setup, checkpoint: dict[str, Any] | None
    ) -> Any:
        """The task's LightningModule around `setup.net` with this task's recipe, restored from the checkpoint (its
        weights) when one is given."""
        if checkpoint is None:
            module = module_cls(task=self.recipe(), model=cfg["model"], context=setup.context, net=setup.net)
        else:
            module = module_cls(**{**checkpoint["hyper_parameters"], "task": self.recipe()}, net=setup.net)
            load_weights(module, checkpoint["state_dict"], "the checkpoint")
            module.eval()
        module.extras = {**setup.extras, "config": cfg}
        compile_module(module, cfg.get("compile"))  # compile=...: see attnkit/train/compile.py
        return module

    def write_prediction(self, run_dir: Path | None, result: dict[str, Any]) -> None:
        """`prediction.json` in the run directory (none from the Python API, which passes no run directory)."""
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(run_dir / "prediction.json", result)

    def checkpoint_config(
        self, cfg: dict[str, Any], payload: dict[str, Any], overrides: list[str] | None
    ) -> dict[str, Any]:
        """The config a test of the checkpoint runs with (and records in config.yaml): the model as the checkpoint
        built it and the seed its run split the data with (unless the command line sets one)."""
        recorded = payload["attnkit"].get("config") or {}
        kept = [key for key in (*FIXED, "seed") if key in recorded]
        return {**cfg, **{k: recorded[k] for k in kept if not (k == "seed" and run.overridden(overrides, "seed"))}}

    def data_config(self, cfg: dict[str, Any], given: Given) -> dict[str, Any]:
        """The data a run reads: the config's; a test's or predict's, the checkpoint's, with the `data.<key>=...` of
        the command line on top (`data=<another source>` reads that source, as the config has it)."""
        saved = given.checkpoint["attnkit"]["data"] if given.checkpoint is not None else None
        if saved is None:
            return cfg["data"]
        if not run.overridden(given.overrides, "data"):
            return saved
        if cfg["data"].get("name") != saved.get("name"):
            return cfg["data"]
        merged = copy.deepcopy(saved)
        for text in given.overrides or []:
            path = text.lstrip("+~").split("=", 1)[0].split(".")
            if path[0] != "data" or len(path) < 2:
                continue
            node = merged
            for part in path[1:-1]:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
            node[path[-1]] = run.value(cfg, ".".join(path))
        return merged

    def saved_recipe(self, checkpoint: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
        """The recipe a checkpoint was trained with, and on top of it the `task.<key>=...` of the command line (also
        a key the checkpoint predates)."""
        saved = dict(checkpoint["hyper_parameters"]["task"])
        mine = self.recipe()
        return {**saved, **{k: mine[k] for k in mine if k != "name" and run.overridden(overrides, f"task.{k}")}}

    def checkpoint(self, cfg: dict[str, Any], overrides: list[str] | None = None) -> tuple[Path, dict[str, Any]]:
        """The `ckpt_path` of the config and its contents, refused with one line unless this task wrote it, or when
        the command line's `overrides` ask for what the checkpoint fixes (see `checked_overrides`)."""
        ckpt = run.user_path(cfg.get("ckpt_path"), "ckpt_path", CKPT_HINT)
        payload = load_checkpoint(ckpt, self.name)
        self.checked_overrides(cfg, payload, overrides)
        return ckpt, payload

    def checked_overrides(self, cfg: dict[str, Any], payload: dict[str, Any], overrides: list[str] | None) -> None:
        """mode=test and mode=predict use the checkpoint as it was trained: an override of the command line that
        they cannot apply (the architecture, the vocabulary, a training setting) and that differs from the
        checkpoint's value is refused in one line naming each, instead of being ignored. They apply `APPLIED` and
        the task's `evaluation_keys` (decoding options and the like)."""
        mode = cfg.get("mode", "test")
        applied = (*APPLIED.get(mode, APPLIED["test"]), *self.evaluation_keys)
        recorded, hparams = payload["attnkit"].get("config") or {}, payload["hyper_parameters"]
        saved, mine = {"task": hparams["task"]}, {"task": self.recipe()}
        refused = []
        for text in overrides or []:
            key = text.lstrip("+~").split("=", 1)[0]
            if key in ("task", "experiment") or key.startswith("hydra.") or _under(key, applied):
                continue
            if key.startswith("task."):
                before, now = run.value(saved, key), run.value(mine, key)
            else:
                before, now = _recorded(recorded, hparams, key), run.value(cfg, key)
                if before is None and _under(key, ("data",)):  # a checkpoint without a recorded config: its data
                    before = run.value({"data": payload["attnkit"].get("data") or {}}, key)
            chosen = text.split("=", 1)[1] if "=" in text else None  # `model=vit`: the same choice, options as trained
            if before != now and not (isinstance(before, dict) and chosen == before.get("name")):
                refused.append(f"{text.lstrip('+~')} (the checkpoint has {_shown(before)})")
        if refused:
            shown = [f"{k}.*" if k in ("data", "trainer") else k for k in applied]
            takes = ", ".join(k for k in shown if k not in ("mode", "ckpt_path", "plugins"))
            raise ConfigError(
                f"mode={mode} uses the checkpoint as it was trained, so these overrides would be ignored: "
                f"{'; '.join(refused)}. Drop them (the checkpoint fixes the architecture, vocabulary and classes, and "
                f"training settings do nothing here), or train a run with them; mode={mode} takes {takes}"
            )

    def report(
        self, cfg: dict[str, Any], run_dir: Path, module: Any, setup: Setup, metrics: dict[str, Any], title: str
    ) -> None:
        """metrics.json, the learning curves, the task's own files, and the summary table on the terminal. A score
        that is not a finite number is null in `metrics` and its file, said in a warning line (and in its
        `warnings`)."""
        for line in finite_scores(metrics):
            print(f"warning: {line}", file=sys.stderr, flush=True)
            metrics["warnings"] = [*metrics.get("warnings", []), line]
        rows = self.artifacts(cfg, run_dir, module, setup, metrics)
        write_json(run_dir / "metrics.json", metrics)
        plot_learning_curves(
            read_metrics_csv(run_dir / "metrics.csv"),
            run_dir / "learning_curve.png",
            metric=self.monitor.split("/", 1)[1],
            title=f"{self.name} on {setup.data_cfg.get('name', '?')}",
        )
        print_summary(title, {**self.summary(metrics), **rows, "run directory": str(run_dir)})


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _recorded(recorded: dict[str, Any], hparams: dict[str, Any], key: str) -> Any:
    """The value a checkpoint's run had at `key`: its recorded config's, else (an older checkpoint) its model's."""
    if recorded:
        return run.value(recorded, key)
    model = hparams.get("model") or {}
    parts = {k: model.get(k) for k in FIXED if isinstance(model, dict)}  # heads, attention, ... as the model has them
    return run.value({**parts, "model": model}, key)


def _shown(value: Any) -> str:
    if isinstance(value, dict) and "name" in value:
        return str(value["name"])
    return "nothing" if value is None else str(value)


LIBRARIES = ("torch", "pytorch_lightning", "lightning_fabric", "lightning_utilities", "lightning")


def failed_training(exc: Exception, step: int) -> TrainingError:
    """An exception raised while training, as one line: the step, what was raised and where, the innermost line
    outside torch and Lightning (a plugin's, say); HYDRA_FULL_ERROR=1 shows the whole traceback."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not set(Path(f.filename).parts) & set(LIBRARIES)]
    at = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = " ".join(str(exc).split())[:300] or "(no message)"
    return TrainingError(
        f"training failed at step {step}: {type(exc).__name__}: {message}{at}; HYDRA_FULL_ERROR=1 shows the traceback"
    )


def warn_if_config_changed(saved: Path, cfg: dict[str, Any]) -> None:
    """One warning line naming the settings in which a resumed run's config differs from the one it started with."""
    if not saved.is_file():
        return
    before, after = _flat(OmegaConf.to_container(OmegaConf.load(saved))), _flat(cfg)
    changed = sorted(k for k in before.keys() | after.keys() if k != "resume" and before.get(k) != after.get(k))
    if changed:
        shown = ", ".join(f"{k} ({before.get(k)} -> {after.get(k)})" for k in changed[:6])
        print(f"warning: resuming with settings that differ from the run's start: {shown}", file=sys.stderr, flush=True)


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_flat(value, f"{prefix}{key}."))
    return {k.rstrip("."): v for k, v in out.items()}


def ema_report(ema: Any) -> dict[str, Any]:
    """How the evaluated moving average was formed: its decay, warm-up and number of updates."""
    return {"decay": ema.decay, "warmup": ema.warmup, "updates": int(ema.updates), "last_decay": ema.current_decay()}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class PeakMemory:
    """The peak memory of this run, in MiB: CUDA's allocator peak when a GPU is used, else the resident set size of
    the process sampled every 20 ms (runs of a multirun share a process, so the process-wide high-water mark of
    `getrusage` would carry one job's peak into the next)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval, self.peak = interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss())

    @property
    def mb(self) -> float:
        if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
            return round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return round(self.peak / 2**20, 1)


def _rss() -> int:
    """Resident set size of this process in bytes (/proc on Linux; elsewhere the high-water mark of getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return peak if sys.platform == "darwin" else peak * 1024


def floats(results: list[dict[str, Any]]) -> dict[str, float]:
    """The first dict of Lightning's validate/test results, as floats."""
    return {k: float(v) for k, v in (results[0] if results else {}).items()}
