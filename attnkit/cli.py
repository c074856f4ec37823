"""`python -m attnkit` / `attnkit`: load plugins, check the config, then hand over to Hydra and the task.

Plugins must be imported before Hydra composes (so that `attention=my_attention` is a valid choice in the same
command), and errors must come out as one line: both happen here, before `hydra.main` runs.
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import hydra
import torch
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import OmegaConf

from attnkit import config, registry, schema
from attnkit.errors import AttnkitError, ConfigError, DataError
from attnkit.plugins import load_plugins
from attnkit.train import summary
from attnkit.train.checkpoints import finished, resume_target
from attnkit.train.run import run_files, undone_on_failure, write_error
from attnkit.train.trainer import strategy_name

# Hydra flags that take a value, and flags after which attnkit does not check the overrides itself.
_VALUE_FLAGS = {
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--experimental-rerun",
    "--shell-completion",
    "-sc",
}
_PASS_THROUGH = {"--help", "-h", "--hydra-help", "--info", "--version", "--shell-completion", "-sc"}
_MULTIRUN = {"-m", "--multirun"}
_HELP = {"--help", "-h"}


def fail(exc: BaseException) -> NoReturn:
    """Print the error as one line and exit 2; HYDRA_FULL_ERROR=1 shows the traceback instead."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise exc
    message = " ".join(str(exc).split())
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(flags, overrides): Hydra's flags with their values, and the key=value overrides."""
    flags, overrides = [], []
    args = iter(argv)
    for arg in args:
        if arg.startswith("-"):
            flags.append(arg)
            if arg in _VALUE_FLAGS:
                value = next(args, None)
                if value is not None:
                    flags.append(value)
        else:
            overrides.append(arg)
    return flags, overrides


def plugin_specs(overrides: list[str]) -> list[str]:
    """The values of `plugins=...` on the command line (a list or a single name)."""
    specs: list[str] = []
    for text in overrides:
        if text.lstrip("+~").split("=", 1)[0] != "plugins" or "=" not in text:
            continue
        try:
            value = OverridesParser.create().parse_override(text).value()
        except HydraException as exc:
            raise ConfigError(f"cannot parse {text!r}: write plugins=[./a.py,my_module]") from exc
        items = value if isinstance(value, list) else [value]
        specs.extend(str(item) for item in items if item is not None and str(item))
    return specs


def task_from_checkpoint(overrides: list[str]) -> list[str]:
    """`task=<name>` (and `data=<name>`, unless data= is given) for `mode=test|predict|generate ckpt_path=...` without
    task= or experiment=: what the checkpoint's run directory records (`<run>/config.yaml` beside
    `<run>/checkpoints/`), else the checkpoint itself. So a checkpoint names its task and its data source, and their
    options (task.max_new_tokens, data.test_fraction) are keys of the config."""
    values = {o.split("=", 1)[0].lstrip("+~"): o.split("=", 1)[1] for o in overrides if "=" in o}
    if values.get("mode") not in ("test", "predict", "generate") or not values.get("ckpt_path"):
        return []
    if "task" in values or "experiment" in values:
        return []
    ckpt = Path(values["ckpt_path"].strip("'\"")).expanduser().resolve()
    run_config = ckpt.parent.parent / "config.yaml"
    try:
        if run_config.is_file():
            recorded = OmegaConf.load(run_config)
            task, data = OmegaConf.select(recorded, "task.name"), OmegaConf.select(recorded, "data.name")
        else:
            saved = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)["attnkit"]
            task, data = saved["task"], saved.get("data", {}).get("name")
    except Exception:  # not a run's config or checkpoint: the task itself will judge the checkpoint
        return []
    if not (isinstance(task, str) and task.isidentifier()):
        return []
    inferred = [f"task={task}"]
    if "data" not in values and isinstance(data, str) and data in registry.available("data"):
        inferred.append(f"data={data}")
    return inferred


def shown_value(value: object) -> str:
    """An option's default as mode=list prints it: a string with newlines or tabs quoted, so it stays on its line."""
    return repr(value) if isinstance(value, str) and not value.isprintable() else str(value)


def list_components() -> None:
    """Print every registered component by kind: name, one-line description, options and where it is defined."""
    for kind in registry.kinds():
        entries = registry.entries(kind)
        print(f"{kind} ({len(entries)}):")
        width = max((len(e.name) for e in entries), default=0) + 2
        for entry in entries:
            options = {k: v for k, v in registry.defaults(kind, entry.name).items() if k != "name"}
            print(f"  {entry.name:<{width}}{entry.description}")
            shown = " ".join(f"{k}={shown_value(v)}" for k, v in options.items()) or "(none)"
            print(f"  {'':<{width}}options: {shown} · {entry.source.rsplit('.', 1)[0]}")
    print("Choose with group=name (attention=eager), set options with group.option=value (attention.dropout=0.1).")


def main(argv: list[str] | None = None) -> Any:
    argv = list(sys.argv[1:] if argv is None else argv)
    flags, overrides = split_argv(argv)
    try:
        if (value := _value(overrides, "resume")) not in (None, "", "null"):
            argv = resume_argv(value, argv)
            flags, overrides = split_argv(argv)
        load_plugins(*plugin_specs(overrides))
        registry.kinds()  # built-in components and installed plugins
        config.store_components()
        inferred = task_from_checkpoint(overrides)
        overrides.extend(inferred)
        argv.extend(inferred)
        if _MULTIRUN.intersection(flags) and {"--cfg", "-c", "--info", "--help", "-h"}.intersection(flags):
            raise ConfigError("-m (a multirun) cannot be combined with --cfg, --info or --help; drop -m to see it")
        if _MULTIRUN.intersection(flags):
            for sample in config.sweep_samples(overrides):  # every swept value, before any job starts
                check_values(cfg := config.compose(sample))
                check_multirun_job(cfg, launcher=_value(sample, "hydra/launcher"))
            if _value(overrides, "hydra.sweep.dir") is None and set(flags) <= _MULTIRUN:
                argv.append(f"hydra.sweep.dir={reserve_dir(Path('outputs') / 'multirun')}")
            elif _rank_zero() and (sweep := _value(overrides, "hydra.sweep.dir")) is not None:
                check_new_folder(Path(sweep), "hydra.sweep.dir")
        elif not _PASS_THROUGH.intersection(flags):
            cfg = config.compose(overrides)
            if cfg.mode == "list" and not flags:
                list_components()
                return None
            check_values(cfg)
            resumed = _value(overrides, "resume") not in (None, "", "null")
            if resumed:
                check_unfinished(Path(_value(overrides, "resume")), cfg.trainer)
            if _value(overrides, "hydra.run.dir") is None and not flags:
                argv.append(f"hydra.run.dir={reserve_dir(Path('outputs'))}")
            elif not flags and not resumed and _rank_zero():
                check_new_folder(Path(_value(overrides, "hydra.run.dir")), "hydra.run.dir")
        elif _HELP.intersection(flags) and not (set(flags) - _HELP):
            print(help_text(config.compose(overrides)))
            return None
        elif _HELP.intersection(flags):
            config.compose(overrides)  # Hydra would print a traceback for a bad override
    except AttnkitError as exc:
        fail(exc)
    sys.argv = [sys.argv[0], *argv]
    result = _hydra_app()
    if _MULTIRUN.intersection(flags) and (sweep := _value(split_argv(argv)[1], "hydra.sweep.dir")):
        failed = sorted(Path(sweep).glob(f"*/{summary.ERROR_FILE}"))
        if failed:
            print(f"error: {len(failed)} job(s) of the sweep failed; see {sweep}/summary.md", file=sys.stderr)
            sys.exit(1)
    return result


def help_text(cfg: Any) -> str:
    """`--help`: conf/hydra/help/attnkit.yaml's header and footer around the config groups with their options
    (`config.groups`) and the composed config. Hydra's own help lists each group through a config repository
    that copies every stored node, which grows with every registered component; this costs one composition."""
    from importlib import resources

    page = yaml.safe_load(resources.files(config.CONFIG_MODULE).joinpath("hydra", "help", "attnkit.yaml").read_text())
    listed = "\n".join(f"{group}: {', '.join(options)}" for group, options in config.groups().items())
    return "\n".join(
        [
            page["header"],
            "",
            "== Config groups (group=option) ==",
            listed,
            "",
            "== Defaults (override any key: model.depth=6 data.batch_size=128) ==",
            OmegaConf.to_yaml(cfg),
            "",
            page["footer"],
        ]
    )


def check_values(cfg: Any) -> None:
    """Every value against what its consumer declares (attnkit.schema), before a run folder is made or data read;
    `mode=list` and `mode=compare` use none of them, and only train and test build a Trainer (the `trainer.*`
    checks import Lightning, seconds that `mode=info`, `predict` and `generate` need not wait)."""
    if cfg.mode not in ("list", "compare"):
        schema.check_config(cfg, trainer=cfg.mode in ("train", "test"))


def check_multirun_job(cfg: Any, launcher: str | None = None) -> None:
    """A multirun's jobs run in this process (or a launcher's workers): a trainer that launches processes of its
    own (DDP or FSDP on several devices) cannot be one of them. A SLURM launcher (submitit) is the exception: it
    starts one task per device, and Lightning makes each one a rank."""
    if launcher is not None and "slurm" in launcher:  # hydra/launcher=slurm or submitit_slurm
        return
    trainer = cfg.trainer
    strategy, devices = strategy_name(trainer.get("strategy", "auto")), trainer.get("devices", 1)
    if strategy.startswith(("ddp", "fsdp")) and devices not in (1, "1"):
        raise ConfigError(
            f"a multirun cannot run trainer.strategy={strategy} jobs on {devices} devices (each such job starts its "
            f"own processes); run each job alone, or sweep with one device per job"
        )


def _value(overrides: list[str], key: str) -> str | None:
    """The last value the command line gives `key` (`key=value`, `+key=value`, `++key=value`), or None."""
    found = None
    for text in overrides:
        name, sep, value = text.lstrip("+~").partition("=")
        if sep and name == key:
            found = value.strip("'\"")
    return found


def reserve_dir(root: Path) -> Path:
    """`root/<date>/<time>`, made now so that no other run takes it: runs started in the same second get `-1`,
    `-2`, ... (Hydra would otherwise put them in one folder)."""
    now = datetime.now()
    base = root / now.strftime("%Y-%m-%d") / now.strftime("%H-%M-%S")
    check_writable(base)
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        for n in range(1000):
            path = base if n == 0 else base.with_name(f"{base.name}-{n}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as exc:
        raise write_error(exc, None) or exc from exc
    raise ConfigError(f"{base.parent} has 1,000 runs started in one second; give hydra.run.dir=...")


def check_new_folder(folder: Path, key: str) -> None:
    """A run (or sweep) folder given on the command line must not hold a run already, which the new one would
    overwrite; an empty or new folder is fine. Its nearest existing folder must be writable."""
    found = run_files(folder)
    found += [f"{job.name}/{name}" for job in _subfolders(folder) for name in run_files(job)][: max(0, 3 - len(found))]
    if found:
        again = "resume=" + str(folder) if (folder / "checkpoints" / "last.ckpt").is_file() else "resume=<that run>"
        default = "outputs/multirun/<date>/<time>" if key == "hydra.sweep.dir" else "outputs/<date>/<time>"
        raise ConfigError(
            f"{key}={folder} already holds a run ({', '.join(found[:3])}), which a new run would overwrite; continue a "
            f"training run with {again}, or start fresh in a new or empty folder ({key}=<new folder>, or leave "
            f"{key} out for {default})"
        )
    check_writable(folder)


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def check_writable(folder: Path) -> None:
    """The run folder can be made and written: its nearest existing folder is writable (one line if not)."""
    existing = folder.resolve()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        reason = "read-only file system" if _read_only(existing) else "permission denied"
        raise DataError(
            f"cannot write the run folder {folder}: {existing} is not writable ({reason}); give "
            f"hydra.run.dir=<a folder you can write>, or make it writable"
        )
    if existing.exists() and not existing.is_dir():
        raise DataError(f"cannot make the run folder {folder}: {existing} is a file; give hydra.run.dir=<a folder>")


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _rank_zero() -> bool:
    """Whether this process is the first of its run: the others of a distributed run (started by Lightning, torchrun
    or SLURM with the same command line) share its folder."""
    return all(os.environ.get(name, "0") == "0" for name in ("LOCAL_RANK", "RANK", "NODE_RANK", "SLURM_PROCID"))


def check_unfinished(ckpt: Path, trainer: Any) -> None:
    """`resume=` a run that has trained all it was told to (its last checkpoint reached trainer.max_epochs or
    max_steps, as now given) changes nothing: one line that says so and how to extend it."""
    try:
        payload = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
        saved = ckpt.parent.parent / "config.yaml"  # what a size rule chose where the config leaves it null
        chosen = OmegaConf.to_container(OmegaConf.load(saved)).get("trainer") or {} if saved.is_file() else {}
    except Exception:  # not a checkpoint, or not a run's config: the run itself says so in one line
        return
    given = OmegaConf.to_container(trainer, resolve=True)
    done = finished(payload, {**given, **{k: chosen.get(k) for k, v in given.items() if v is None}})
    if done and done[0] == "early_stopping":
        raise ConfigError(
            f"the run {ckpt.parent.parent} is finished (callbacks.early_stopping stopped it at epoch {done[1]}); "
            f"nothing was changed. To train further, start a new run from its weights: init_from={ckpt}; to "
            f"evaluate it, mode=test ckpt_path={ckpt}"
        )
    if done:
        key, value = done
        raise ConfigError(
            f"the run {ckpt.parent.parent} is finished (trainer.{key}={value} reached); nothing was changed. To "
            f"train it further, give a larger trainer.{key} with resume= (e.g. trainer.{key}={2 * value}); to "
            f"evaluate it, mode=test ckpt_path={ckpt}"
        )


def resume_argv(value: str, argv: list[str]) -> list[str]:
    """The command line that continues a run: the run's own overrides, then the other overrides given now, in its
    own run directory and launch directory (where its relative paths point), with `resume=<its checkpoint>`."""
    run_dir, ckpt = resume_target(value)
    recorded = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) or []
    hydra_cfg = (
        yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())
        if (run_dir / ".hydra" / "hydra.yaml").is_file()
        else {}
    )
    launch = (hydra_cfg or {}).get("hydra", {}).get("runtime", {}).get("cwd")
    dropped = ("resume", "hydra.run.dir")
    given = [a for a in argv if a.lstrip("+~").split("=", 1)[0] not in dropped]
    if _value(split_argv(given)[1] + recorded, "mode") not in (None, "train"):
        raise ConfigError("resume= continues a training run; it takes no mode= (use mode=test ckpt_path=... to test)")
    kept = [o for o in recorded if o.lstrip("+~").split("=", 1)[0] not in dropped]
    if launch and Path(launch).is_dir():
        os.chdir(launch)
    return [*kept, *given, f"hydra.run.dir={run_dir}", f"resume={ckpt}"]


def _hydra_app() -> Any:
    app = hydra.main(config_path=f"pkg://{config.CONFIG_MODULE}", config_name=config.CONFIG_NAME, version_base=None)(
        run
    )
    return app()


def run(cfg: Any) -> Any:
    """The Hydra task function: build the registered task and call its mode (train, test or predict); or compare
    runs. In a multirun a failed job is recorded in its folder (`error.txt`, a row of the sweep's summary) and the
    sweep goes on."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    share_threads(hydra_cfg.launcher)
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
        load_plugins(*(resolved.get("plugins") or []), base=hydra_cfg.runtime.cwd)  # again in a launcher's worker
        config.check_mode(resolved["mode"])
        if resolved["mode"] == "list":
            return list_components()
        if resolved["mode"] == "compare":
            return compare(resolved.get("input"), run_dir)
        task = registry.build_spec("task", resolved["task"])
        overrides = list(hydra_cfg.overrides.task)
        mode = getattr(task, resolved["mode"])
        if resolved["mode"] == "train":  # it keeps what it made once it has trained a step
            result = mode(resolved, run_dir=run_dir, overrides=overrides)
        else:
            with undone_on_failure(run_dir):  # a failed test, predict or info leaves nothing behind
                result = mode(resolved, run_dir=run_dir, overrides=overrides)
        if multirun and "optuna" in str(hydra_cfg.sweeper.get("_target_", "")).lower():
            return float(result[summary.primary([summary.Run(run_dir, {}, result)])])  # the sweeper's objective
        return result
    except Exception as exc:
        exc = write_error(exc, run_dir) or exc  # a full disk or a read-only folder: one line, as a mistake is
        if not multirun and not isinstance(exc, AttnkitError):
            _discard_if_empty(run_dir, Path(hydra_cfg.runtime.cwd))  # a crash with a traceback leaves no litter either
            raise
        if multirun and os.environ.get("HYDRA_FULL_ERROR") != "1":
            message = " ".join(str(exc).split()) or type(exc).__name__
            if not isinstance(exc, AttnkitError):
                message = f"{type(exc).__name__}: {message}"
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / summary.ERROR_FILE).write_text(message + "\n")
            print(f"error: job {hydra_cfg.job.num} failed: {message}", file=sys.stderr, flush=True)
            return None
        _discard_if_empty(run_dir, Path(hydra_cfg.runtime.cwd))
        fail(exc)


def share_threads(launcher: Any) -> None:
    """Jobs that a launcher runs side by side share the cores: each gets cores / jobs torch threads (2 cores, 2 jobs:
    one thread each), instead of each taking every core and slowing the others down."""
    target = str(launcher.get("_target_", "")) if launcher is not None else ""
    jobs = launcher.get("n_jobs") if "joblib" in target.lower() else None
    if not isinstance(jobs, int) or jobs == 1:
        return
    cores = os.cpu_count() or 1
    parallel = cores if jobs < 0 else min(jobs, cores)
    torch.set_num_threads(max(1, cores // parallel))


def compare(folders: Any, run_dir: Path) -> str:
    """`mode=compare input=[...]`: the summary tables of the runs in those folders, printed and written to the run
    directory."""
    if not folders:
        raise ConfigError("mode=compare needs input=[<run or sweep folder>, ...]")
    runs = summary.find_runs(folders if isinstance(folders, list) else [folders])
    text = summary.write(runs, run_dir)
    print(text)
    print(f"written to {run_dir}/summary.md, summary.csv, summary.png")
    return text


class SweepSummary(Callback):
    """Hydra callback: when a multirun ends, its summary (one row per job, mean ± std per variant) in the sweep
    folder; a failed job is a row."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        folder = Path(config.hydra.sweep.dir)
        try:
            runs = summary.find_runs([folder])
        except AttnkitError:
            return
        text = summary.write(runs, folder)
        print("## Variants" + text.split("## Variants", 1)[1])
        print(f"sweep summary: {folder}/summary.md (also summary.csv, summary.png)")


def _discard_if_empty(run_dir: Path, launch_dir: Path) -> None:
    """Remove a run directory that holds nothing but Hydra's bookkeeping: a failed start leaves no litter.

    Folders above it that are left empty (`outputs/<date>/`, `outputs/`) go too, up to the launch directory.
    """
    if not run_dir.is_dir():
        return
    contents = {p.name for p in run_dir.iterdir()}
    if not contents <= {".hydra", "main.log", "__main__.log", "cli.log"}:
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    launch = launch_dir.resolve()
    for parent in run_dir.resolve().parents:
        if parent == launch or launch not in parent.parents:
            break
        try:
            parent.rmdir()  # only if empty
        except OSError:
            break


if __name__ == "__main__":
    main()
