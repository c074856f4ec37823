"""Comparing variants: a multirun's summary (a failed job is a row), mode=compare, Optuna, joblib and SLURM presets,
loggers and callbacks as config groups."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import forked_cli
import pytest
import yaml

from attnkit import ConfigError
from attnkit.train import trainer as trainer_module

TINY = ("model.dim=16", "model.depth=1", "heads=2", "trainer.max_epochs=1", "trainer.enable_progress_bar=false")


def cli_env() -> dict[str, str]:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "WANDB_SILENT": "true", "COLUMNS": "200"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def attnkit_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return forked_cli.run(args, cwd, cli_env())  # `python -m attnkit <args>`, forked from the session's runner


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """Two positional encodings × two seeds with linear attention: alibi cannot serve it, so two jobs fail."""
    cwd = tmp_path_factory.mktemp("sweep")
    proc = attnkit_cli(
        "-m", "attention=linear", "pos_enc=learned,alibi", "seed=0,1", *TINY, "hydra.sweep.dir=s", cwd=cwd
    )
    return cwd / "s", proc


def test_a_multirun_writes_its_summary_and_failed_jobs_are_rows(sweep) -> None:
    folder, proc = sweep
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith(
        "error: 2 job(s) of the sweep failed"
    )
    with (folder / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["pos_enc"], r["seed"]) for r in rows] == [
        ("learned", "0"),
        ("learned", "1"),
        ("alibi", "0"),
        ("alibi", "1"),
    ]
    assert [r["status"] for r in rows[:2]] == ["ok", "ok"] and float(rows[0]["test/acc"]) >= 0
    assert 0 <= float(rows[0]["best_val_acc"]) <= 1  # the validation score beside the test scores
    assert all(r["status"].startswith("failed: pos_enc=alibi needs score bias") for r in rows[2:])
    text = (folder / "summary.md").read_text()
    assert "## Variants (mean ± std over seeds)" in text and "| `learned` | 2/2 |" in text and " ± " in text
    assert (folder / "summary.png").stat().st_size > 1000


def test_compare_builds_the_same_tables_from_folders(sweep, tmp_path) -> None:
    folder, _ = sweep
    proc = attnkit_cli("mode=compare", f"input=[{folder}]", "hydra.run.dir=cmp", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "cmp" / "summary.md").read_text() == (folder / "summary.md").read_text()
    assert "## Variants" in proc.stdout
    bad = attnkit_cli("mode=compare", f"input=[{tmp_path / 'nowhere'}]", "hydra.run.dir=bad", cwd=tmp_path)
    assert bad.returncode == 2 and "is not a folder" in bad.stderr and not (tmp_path / "bad").exists()


def test_optuna_samples_an_interval(tmp_path) -> None:
    proc = attnkit_cli(
        "-m",
        "hydra/sweeper=optuna",
        "task.lr=interval(1e-4,1e-2)",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.direction=maximize",
        *TINY,
        "hydra.sweep.dir=opt",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    best = yaml.safe_load((tmp_path / "opt" / "optimization_results.yaml").read_text())
    assert 1e-4 <= best["best_params"]["task.lr"] <= 1e-2 and (tmp_path / "opt" / "summary.csv").is_file()
    refused = attnkit_cli("-m", "task.lr=interval(1e-4,1e-2)", *TINY, cwd=tmp_path)
    assert refused.returncode == 2 and "hydra/sweeper=optuna" in refused.stderr


def test_joblib_runs_jobs_side_by_side(tmp_path) -> None:
    """A real process: joblib's workers stop when it exits."""
    args = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1", *TINY, "hydra.sweep.dir=j"]
    command = [sys.executable, "-m", "attnkit", *args]
    proc = subprocess.run(command, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all((tmp_path / "j" / str(i) / "metrics.json").is_file() for i in range(2))


def test_the_slurm_preset_composes(tmp_path) -> None:
    proc = attnkit_cli("hydra/launcher=slurm", "hydra.launcher.partition=gpu", "--cfg", "hydra", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    launcher = yaml.safe_load(proc.stdout)["hydra"]["launcher"]
    assert launcher["_target_"].endswith("SlurmLauncher") and launcher["partition"] == "gpu"


def test_loggers_several_at_once_and_the_learning_rate(tmp_path) -> None:
    proc = attnkit_cli("logger=[csv,tensorboard,mlflow,wandb]", *TINY, "hydra.run.dir=run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = tmp_path / "run"
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert (run / "mlflow.db").is_file() and (run / "wandb").is_dir()
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert any(column.startswith("lr-") for column in header.split(","))
    assert json.loads((run / "metrics.json").read_text())["test/acc"] >= 0


def test_a_missing_logger_package_names_its_extra(monkeypatch) -> None:
    monkeypatch.setitem(trainer_module.LOGGER_PACKAGES, "tensorboard", ("no_such_tensorboard", "tensorboard"))
    with pytest.raises(ConfigError) as exc:
        trainer_module.check_loggers({"tensorboard": {}})
    assert (
        str(exc.value) == "logger=tensorboard needs the no_such_tensorboard package; pip install 'attnkit[tensorboard]'"
    )


def test_early_stopping_watches_the_task_metric(tmp_path) -> None:
    from pytorch_lightning.callbacks import EarlyStopping

    trainer = trainer_module.make_trainer(
        {"max_epochs": 3, "accelerator": "cpu"},
        tmp_path,
        monitor="val/bleu",
        callbacks={"checkpoint": {"every_n_steps": None}, "early_stopping": {"patience": 2, "min_delta": 0.1}},
    )
    (stopper,) = [c for c in trainer.callbacks if isinstance(c, EarlyStopping)]
    assert stopper.monitor == "val/bleu" and stopper.patience == 2 and stopper.mode == "max"
    with pytest.raises(ConfigError) as exc:
        trainer_module.make_trainer({}, tmp_path, monitor="val/acc", callbacks={"early_stopping": {"patiense": 2}})
    assert "callbacks.early_stopping" in str(exc.value)
