"""Resume: a run killed with SIGKILL after its first checkpoint, resumed, ends exactly as the uninterrupted run.

Each command runs in its own process, forked from the session's runner (tests/forked_cli.py) with the signal handlers
of one started from a terminal."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import forked_cli
import pytest
import torch

TINY_VIT = (
    "task=vit",
    "model.dim=16",
    "model.depth=1",
    "heads=2",
    "task.ema_decay=0.9",
    "task.attention_maps=0",
    "trainer.max_epochs=4",
    "trainer.enable_progress_bar=false",
)
TINY_CLASSIFY = (
    "task=classify",
    "data.train_size=96",
    "data.val_size=16",
    "data.test_size=16",
    "data.batch_size=8",
    "model.dim=16",
    "model.depth=1",
    "heads=2",
    "model.max_len=600",
    "trainer.max_epochs=3",
    "trainer.enable_progress_bar=false",
)

TINY_LM = (
    "task=lm",
    "model.dim=16",
    "heads=2",
    "task.context=16",
    "data.num_kv_pairs=2",
    "data.vocab_size=16",
    "data.train_size=256",
    "data.val_size=16",
    "data.test_size=16",
    "data.batch_size=16",
    "trainer.max_epochs=3",
    "trainer.enable_progress_bar=false",
)


def env(tmp: Path) -> dict[str, str]:
    out = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "ATTNKIT_CACHE": str(tmp / "cache")}
    out.pop("HYDRA_FULL_ERROR", None)
    return out


def cli(*args: str, cwd: Path) -> forked_cli.Started:
    """`python -m attnkit <args>`, started: a test watches it, signals it, then waits for it."""
    return forked_cli.Started(args, cwd, env(cwd))


def finished(*args: str, cwd: Path) -> str:
    """`python -m attnkit <args>`, run to its end: its stdout and stderr."""
    proc = forked_cli.run(args, cwd, env(cwd))
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout + proc.stderr


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.parametrize("overrides", [TINY_VIT, TINY_CLASSIFY, TINY_LM], ids=["vit", "classify", "lm"])
def test_a_killed_run_resumes_to_the_same_end(tmp_path, overrides) -> None:
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    finished(*overrides, f"hydra.run.dir={whole}", cwd=tmp_path)

    with cli(*overrides, f"hydra.run.dir={broken}", cwd=tmp_path) as proc:
        last = broken / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 300
        while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert last.is_file() and not (broken / "metrics.json").exists(), "the run was not killed between its checkpoints"
    killed_at = torch.load(last, map_location="cpu", weights_only=True)["epoch"]

    out = finished(f"resume={broken}", cwd=tmp_path)
    assert "trained" in out
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (whole, broken))
    scores = [k for k in a if k.startswith(("test/", "val/"))]
    assert scores and {k: a[k] for k in scores} == {k: b[k] for k in scores}  # exactly equal on CPU
    assert a["epochs"] == b["epochs"] and a["steps"] == b["steps"] and b["resumed_from"].endswith("last.ckpt")
    for run_dir in (whole, broken):  # last.ckpt is the end of training, not the best epoch
        assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == a["steps"]
    wa, wb = weights(whole), weights(broken)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    rows = (broken / "metrics.csv").read_text().splitlines()
    assert rows[0] == (whole / "metrics.csv").read_text().splitlines()[0]  # one header, the same columns
    epochs = {line.split(",")[rows[0].split(",").index("epoch")] for line in rows[1:]}
    assert {str(e) for e in range(a["epochs"])} <= epochs, (killed_at, epochs)  # curves from before and after


def test_resume_mistakes_are_one_line(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    for value, fragment in ((tmp_path / "empty", "nothing to resume"), (tmp_path / "nowhere", "nothing to resume")):
        proc = forked_cli.run([f"resume={value}"], tmp_path, env(tmp_path))
        err = proc.stderr.strip()
        assert proc.returncode == 2 and err.startswith("error: ") and fragment in err and "\n" not in err


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_says_where_the_last_checkpoint_is_and_how_to_resume(tmp_path, stop) -> None:
    """Ctrl-C (SIGINT) or SIGTERM (a scheduler's or `kill`'s stop): one line, a failing exit status, whole files."""
    run_dir = tmp_path / "run"
    args = [*TINY_VIT, "trainer.max_epochs=1000", f"hydra.run.dir={run_dir}"]
    with cli(*args, cwd=tmp_path) as proc:
        last = run_dir / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 300
        while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        proc.send_signal(stop)
        err = proc.wait(timeout=300).stderr
    assert proc.returncode not in (0, None)
    if stop == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM  # what a shell reports for a process that SIGTERM ended
    lines = [line for line in err.splitlines() if line.startswith("interrupted")]
    assert lines == [f"interrupted: the last checkpoint is {last}; resume with: python -m attnkit resume={run_dir}"]
    assert "Traceback" not in err
    torch.load(last, map_location="cpu", weights_only=True)  # whole
    assert not [p.name for p in run_dir.rglob("*.tmp")] and not (run_dir / "metrics.json").exists()
