"""The wheel: configs and built-in tasks ship inside it, and everything it adds to site-packages is attnkit*."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("attnkit-*.whl")
    return path


def test_wheel_holds_only_attnkit_with_configs_and_tasks(wheel) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert all(top.startswith("attnkit") for top in tops), tops
    for needed in (
        "attnkit/conf/config.yaml",
        "attnkit/conf/task/vit.yaml",
        "attnkit/conf/trainer/ddp.yaml",
        "attnkit/conf/hydra/help/attnkit.yaml",
        "attnkit/conf/experiment/fashion_mnist.yaml",
        "attnkit/conf/experiment/aeslc.yaml",
        "attnkit/conf/task/summarization.yaml",
        "attnkit/tasks/summarization/task.py",
        "attnkit/tasks/vit/task.py",
        "attnkit/tasks/vit/data/digits.py",
        "attnkit/tasks/classify/listops.py",
        "attnkit/conf/task/classify.yaml",
        "attnkit/data/hf.py",
        "attnkit/train/task.py",
        "attnkit/nn/vit.py",
    ):
        assert needed in names, f"{needed} missing from the wheel"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[attnkit.plugins]" in text and "attnkit = attnkit.cli:main" in text
    assert all(f"attnkit.tasks.{task}" in text for task in ("vit", "translation", "summarization", "classify", "lm"))


def test_installed_wheel_runs_from_any_directory(wheel, tmp_path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    probe = "import attnkit, sys; from attnkit.cli import main; print(attnkit.__file__); main(['mode=list'])"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith(str(target)), "the wheel's copy was not the one imported"
    assert "vit" in proc.stdout and "digits" in proc.stdout
    cfg = subprocess.run(
        [sys.executable, "-m", "attnkit", "task=vit", "--cfg", "job"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert cfg.returncode == 0, cfg.stderr
    assert "name: vit" in cfg.stdout and "name: digits" in cfg.stdout


@pytest.fixture(scope="module")
def wheel_site(wheel, tmp_path_factory) -> Path:
    """The wheel installed (not editable) into a folder of its own."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    return target


def _from_source_root(args: list[str], site: Path) -> subprocess.CompletedProcess:
    """`python -m attnkit ...` in the checkout's root, where `./attnkit/` shadows the installed wheel.

    `-S` skips the .pth files, so an editable install's import hook (which would resolve `attnkit.tasks` on its own)
    cannot hide a source tree that lacks the wheel's layout; the dependencies come through PYTHONPATH instead.
    """
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), *deps]),
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.run(
        [sys.executable, "-S", "-m", "attnkit", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_source_tree_has_the_wheel_layout(wheel_site) -> None:
    proc = _from_source_root(["mode=list"], wheel_site)
    assert proc.returncode == 0, proc.stderr
    assert "vit" in proc.stdout and "summarization" in proc.stdout and "failed to import" not in proc.stderr


def test_wheel_trains_from_source_root(wheel_site, tmp_path) -> None:
    run_dir = tmp_path / "run"
    args = ["task=vit", "heads=8", "trainer.fast_dev_run=true", f"hydra.run.dir={run_dir}"]
    proc = _from_source_root(args, wheel_site)
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / "metrics.json").is_file(), proc.stdout + proc.stderr


def test_console_script_is_the_same_app() -> None:
    script = Path(sys.executable).with_name("attnkit")
    assert script.exists(), f"no console script beside {sys.executable}"
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "attention:" in proc.stdout and "task:" in proc.stdout
