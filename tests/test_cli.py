"""`python -m attnkit` end to end, in subprocesses: help, config printing, listing, user mistakes, training,
test, predict, multirun and DDP.

Each command runs from a temporary working directory with its Hydra run directory under it. Commands that do
not depend on each other run in parallel (a Lightning import costs seconds), and one tiny training run
(module-scoped) serves the test and predict commands.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import forked_cli
import pytest
import torch
import yaml
from forked_cli import run_many

import attnkit
from attnkit import cli, registry

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_FILE = ROOT / "examples" / "my_attention.py"
TINY = (
    "trainer.max_epochs=1",
    "model.depth=1",
    "model.dim=16",
    "heads=2",
    "data.batch_size=256",
    "trainer.enable_progress_bar=false",
)
HEAVY_MODULES = (
    "pytorch_lightning",
    "lightning",
    "lightning_fabric",
    "torchvision",
    "datasets",
    "matplotlib",
)
RUN_LAYOUT = (
    "config.yaml",
    "checkpoints/best.ckpt",
    "checkpoints/last.ckpt",
    "metrics.csv",
    "metrics.json",
    "learning_curve.png",
    "attention_maps.png",
)

Command = tuple[Sequence[str], Mapping[str, str]]  # (argv after `python`, extra environment)
CLI = ["-m", "attnkit"]


def cli_env(**extra: str) -> dict[str, str]:
    # a wide terminal, so that mode=list does not wrap a description
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "COLUMNS": "400", **extra}
    if "HYDRA_FULL_ERROR" not in extra:
        env.pop("HYDRA_FULL_ERROR", None)
    return env


def run_python(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        env=cli_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def attnkit_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m attnkit <args>`, forked from the session's runner (tests/forked_cli.py)."""
    return forked_cli.run(args, cwd, cli_env(**env))


def run_parallel(
    commands: Mapping[str, Command], cwd: Path, workers: int = 2
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run independent commands side by side: `-m attnkit` ones forked from one process that has imported the CLI
    (tests/forked_cli.py: each spends most of its time importing otherwise), others as subprocesses."""
    cli = {name: (argv[2:], cwd, cli_env(**env)) for name, (argv, env) in commands.items() if list(argv[:2]) == CLI}
    done = run_many(cli, parallel=workers) if cli else {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {n: pool.submit(run_python, a, cwd, e) for n, (a, e) in commands.items() if n not in cli}
        done.update({name: future.result() for name, future in futures.items()})
    return {name: done[name] for name in commands}


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The process failed with exactly one line on stderr, `error: ...`, and no traceback anywhere."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    return lines[0]


# --- commands that need no training, run together -----------------------------------------------------------

LIST_IN_PROCESS = f"""
import contextlib, io, sys
from attnkit import cli

out = io.StringIO()
with contextlib.redirect_stdout(out):
    assert cli.main(["mode=list", "plugins=[{PLUGIN_FILE}]"]) is None
err = io.StringIO()
with contextlib.redirect_stderr(err):
    try:
        cli.main(["model.dept=3"])
    except SystemExit as exc:
        code = exc.code
    else:
        code = None
assert code == 2, code
assert err.getvalue().startswith("error: no config key 'model.dept'"), err.getvalue()
heavy = [name for name in {HEAVY_MODULES!r} if name in sys.modules]
assert not heavy, f"imported for mode=list / a config error: {{heavy}}"
print(out.getvalue())
"""

# name -> (arguments, fragments the one-line error must contain); each runs with its own run/sweep directory
MISTAKES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "unknown_attention": (("attention=sofmax",), ("unknown attention 'sofmax'", "did you mean 'softmax'")),
    "unknown_key": (("model.dept=3",), ("'model.dept'", "--cfg job")),
    "wrong_type": (("model.depth=abc",), ("depth='abc'", "an int")),
    "heads_not_dividing": (("heads=7",), ("heads=7", "model.dim=64")),
    "bad_mode": (("mode=foo",), ("mode='foo'", "train, test, predict, list")),
    "missing_plugin": (("plugins=[no_such_plugin.py]",), ("no_such_plugin.py", "does not exist")),
    "broken_plugin": (
        ("plugins=[broken_plugin.py]", "attention=my_attention"),
        ("broken_plugin.py", "failed to import", "ZeroDivisionError"),
    ),
    "bias_without_bias_attention": (
        ("attention=linear", "pos_enc=alibi"),
        ("pos_enc=alibi needs score bias; attention=linear has none",),
    ),
    "rope_odd_head_dim": (("pos_enc=rope", "model.dim=24", "heads=8"), ("pos_enc=rope needs an even head dimension",)),
    "rope_bad_fraction": (("pos_enc=rope", "pos_enc.fraction=1.5"), ("fraction=1.5", "(0, 1]")),
    "missing_image_folder": (("data=image_folder", "data.path=/nonexistent"), ("/nonexistent",)),
    "missing_fashion_mnist": (("data=fashion_mnist", "data.path=no_fashion_here"), ("no_fashion_here",)),
    "predict_without_ckpt": (
        ("mode=predict", "ckpt_path=missing.ckpt", "input=digit.png"),
        ("ckpt_path", "missing.ckpt", "does not exist"),
    ),
    "help_unknown_attention": (("--help", "attention=sofmax"), ("unknown attention 'sofmax'",)),
    "multirun_unknown_attention": (
        ("-m", "attention=softmax,sofmax", "trainer.fast_dev_run=true"),
        ("unknown attention 'sofmax'",),
    ),
}


DEFAULT_RUN_DIR = "heads_not_dividing"  # this one runs in Hydra's default outputs/<date>/<time>


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[Path, dict[str, subprocess.CompletedProcess[str]]]:
    cwd = tmp_path_factory.mktemp("quick")
    (cwd / "broken_plugin.py").write_text("import attnkit\n\nRATIO = 1 / 0\n")
    commands: dict[str, Command] = {
        "help": (["-m", "attnkit", f"plugins=[{PLUGIN_FILE}]", "--help"], {}),
        "cfg": (
            [
                "-m",
                "attnkit",
                "--cfg",
                "job",
                f"plugins=[{PLUGIN_FILE}]",
                "attention=my_attention",
                "attention.temperature=5",
                "heads=4",
                "model.depth=2",
            ],
            {},
        ),
        "list": (["-c", LIST_IN_PROCESS], {}),
        "full_error": (["-m", "attnkit", "attention=sofmax"], {"HYDRA_FULL_ERROR": "1"}),
    }
    for name, (args, _) in MISTAKES.items():
        dirs = [f"hydra.run.dir=runs/{name}", f"hydra.sweep.dir=sweeps/{name}"]
        if name == DEFAULT_RUN_DIR:
            dirs = []
        commands[name] = (["-m", "attnkit", *args, *dirs], {})
    return cwd, run_parallel(commands, cwd)


def test_help_lists_every_group_and_option(quick) -> None:
    _, results = quick
    text = ok(results["help"]).stdout
    assert "Usage: python -m attnkit" in text and "HYDRA_FULL_ERROR=1" in text
    listed = {}
    section = text.split("== Config groups", 1)[1].split("==", 2)[1]
    for line in section.splitlines():
        if ": " in line:
            group, options = line.split(": ", 1)
            listed[group.strip()] = set(options.split(", "))
    expected: dict[str, set[str]] = {}
    for kind in registry.KINDS:
        expected.setdefault(kind, set()).update(attnkit.available(kind))
    expected["attention"].add("my_attention")  # from plugins=[...]
    conf = resources.files("attnkit.conf")
    for group in conf.iterdir():
        if group.is_dir() and group.name not in ("hydra", "__pycache__"):
            names = {f.name[:-5] for f in group.iterdir() if f.name.endswith(".yaml")}
            expected.setdefault(group.name, set()).update(names)
    expected = {group: names for group, names in expected.items() if names}
    assert {"attention", "pos_enc", "norm", "ffn", "model", "task", "data", "trainer"} <= set(expected)
    for group, names in expected.items():
        assert listed.get(group, set()) >= names, f"--help: {group}: {listed.get(group)}, expected {names}"
    assert "temperature: 10.0" not in text  # the defaults section shows the selected attention, not every one


def test_help_list_and_config_errors_build_one_config_repository(monkeypatch, capsys) -> None:
    """--help, mode=list and a config error compose once, whatever is registered: Hydra's own help built a config
    repository (a copy of every stored node) per group and option, 132 of them; attnkit lists the groups from its
    registry. Counted with 40 more components registered, which must not add repositories."""
    from hydra._internal import config_repository

    built = []
    original = config_repository.ConfigRepository.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(config_repository.ConfigRepository, "__init__", counting)

    def repositories(argv: list[str]) -> int:
        built.clear()
        with contextlib.suppress(SystemExit):
            cli.main(argv)
        capsys.readouterr()
        return len(built)

    commands = (["--help"], ["mode=list"], ["model.dimm=3"], ["attention=sofmax"], ["--help", "task=lm"])
    before = [repositories(argv) for argv in commands]
    assert max(before) <= 1, before
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance().repo
    monkeypatch.setitem(store, "attention", dict(store["attention"]))  # the stored nodes of the extras go after
    eager = registry.entry("attention", "eager")
    for i in range(40):
        monkeypatch.setitem(
            registry._registry["attention"], f"extra_{i}", dataclasses.replace(eager, name=f"extra_{i}")
        )
    after = [repositories(argv) for argv in commands]
    assert after == before
    assert "extra_39" in cli.help_text(cli.config.compose([]))


def test_only_train_and_test_check_the_trainer_keys(monkeypatch) -> None:
    """The trainer checks read Lightning's Trainer signature (seconds to import): mode=info, predict and generate,
    which build no Trainer, do not wait for it; train and test still refuse a bad trainer value in one line."""
    from attnkit import config
    from attnkit.errors import ConfigError
    from attnkit.train import trainer_args

    config.store_components()
    looked = []
    original = trainer_args.trainer_annotations
    monkeypatch.setattr(trainer_args, "trainer_annotations", lambda: looked.append(1) or original())
    for mode in ("info", "predict", "generate"):
        cli.check_values(config.compose([f"mode={mode}", "trainer.max_epochs=-5"]))
    assert looked == []
    for mode in ("train", "test"):  # a value of a key whose annotation attnkit writes out: refused before Lightning
        with pytest.raises(ConfigError, match="trainer.max_epochs=-5"):
            cli.check_values(config.compose([f"mode={mode}", "trainer.max_epochs=-5"]))
    assert looked == []
    with pytest.raises(ConfigError, match="trainer.precision='64-bad'"):  # the others: Lightning's annotations
        cli.check_values(config.compose(["mode=train", "trainer.precision=64-bad"]))
    assert len(looked) == 1


def test_the_trainer_annotations_written_out_are_lightnings() -> None:
    """The annotations checked before Lightning is imported are those of Lightning's `Trainer.__init__`."""
    import typing

    import pytorch_lightning as pl

    from attnkit.train.trainer_args import WRITTEN

    hints = typing.get_type_hints(pl.Trainer.__init__)
    assert {key: hints[key] for key in WRITTEN} == WRITTEN


def test_cfg_job_prints_the_composed_config(quick) -> None:
    _, results = quick
    cfg = yaml.safe_load(ok(results["cfg"]).stdout)
    assert cfg["attention"] == {
        "name": "my_attention",
        "temperature": 5,
        "learnable": True,
        "dropout": 0.0,
        "eps": 1e-6,
    }
    assert cfg["heads"] == 4 and cfg["model"]["heads"] == "${heads}" and cfg["model"]["depth"] == 2
    assert cfg["task"]["name"] == "vit" and cfg["mode"] == "train" and cfg["plugins"] == [str(PLUGIN_FILE)]
    assert {"data", "model", "pos_enc", "norm", "ffn", "trainer"} <= set(cfg) and "hydra" not in cfg


def test_list_shows_every_component_without_importing_lightning(quick) -> None:
    _, results = quick
    text = ok(results["list"]).stdout
    for kind in registry.KINDS:
        entries = registry.entries(kind)
        if entries:
            assert kind in text
        for entry in entries:
            assert entry.name in text, f"mode=list misses {kind} {entry.name!r}"
            assert entry.description in text, f"mode=list garbles {entry.description!r}"  # [..] is not markup
    assert "my_attention" in text
    assert "Cosine-similarity attention softmax(τ·cos(q, k))V with a learnable or fixed temperature" in text


@pytest.mark.parametrize("name", list(MISTAKES))
def test_user_mistake_is_one_error_line(quick, name) -> None:
    cwd, results = quick
    message = one_error_line(results[name])
    for fragment in MISTAKES[name][1]:
        assert fragment in message
    assert not (cwd / "runs" / name).exists(), "a failed run left its run directory behind"
    assert not (cwd / "sweeps" / name).exists()
    assert not any((cwd / "outputs").rglob("*")), "a failed run left outputs/<date>/<time> behind"


def test_full_error_shows_the_traceback(quick) -> None:
    _, results = quick
    proc = results["full_error"]
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "ConfigError" in proc.stderr and "sofmax" in proc.stderr


# --- multirun -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["attention", "pos_enc"])
def test_multirun_trains_the_vit_with_every_component(tmp_path, kind) -> None:
    """One sweep over every registered attention (pos_enc): `task=vit <kind>=<name> trainer.fast_dev_run=true`."""
    names = attnkit.available(kind)
    proc = ok(
        attnkit_cli(
            "-m",
            f"{kind}={','.join(names)}",
            "trainer.fast_dev_run=true",
            *TINY,
            "hydra.sweep.dir=sweep",
            cwd=tmp_path,
        )
    )
    assert f"Launching {len(names)} jobs" in proc.stdout + proc.stderr
    for job, name in enumerate(names):
        run_dir = tmp_path / "sweep" / str(job)
        assert yaml.safe_load((run_dir / "config.yaml").read_text())[kind]["name"] == name
        assert "test/acc" in json.loads((run_dir / "metrics.json").read_text())
    assert (tmp_path / "sweep" / "multirun.yaml").is_file()
    assert not (tmp_path / "outputs").exists()


# --- a tiny training run, then test and predict with its checkpoint -----------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("trained")
    proc = ok(attnkit_cli(*TINY, "hydra.run.dir=run", cwd=cwd))
    assert "test accuracy" in proc.stdout
    return cwd / "run"


def check_run_layout(run_dir: Path) -> dict:
    for name in RUN_LAYOUT:
        assert (run_dir / name).is_file(), f"{name} missing: {sorted(p.name for p in run_dir.iterdir())}"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert metrics["epochs"] == 1 and metrics["best_checkpoint"] == str(run_dir / "checkpoints" / "best.ckpt")
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["model"]["dim"] == 16 and cfg["model"]["heads"] == 2  # saved resolved
    assert "test/acc" in (run_dir / "metrics.csv").read_text()
    return metrics


def test_train_writes_the_run_directory(trained) -> None:
    check_run_layout(trained)


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory) -> tuple[Path, int]:
    """A test image of sklearn's digits as a PNG file, and its label."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = tmp_path_factory.mktemp("images") / "digit.png"
    Image.fromarray((digits.images[-1] * (255 / 16)).astype(np.uint8), mode="L").save(path)
    return path, int(digits.target[-1])


def test_test_and_predict_from_the_checkpoint(trained, digit_png, tmp_path) -> None:
    image, _ = digit_png
    (tmp_path / "x.png").write_text("not an image\n")
    ckpt = trained / "checkpoints" / "best.ckpt"
    commands: dict[str, Command] = {
        "test": (
            [
                "-m",
                "attnkit",
                "mode=test",
                f"ckpt_path={ckpt}",
                "hydra.run.dir=test_run",
                "trainer.enable_progress_bar=false",
            ],
            {},
        ),
        "one_view": (
            ["-m", "attnkit", "mode=test", f"ckpt_path={ckpt}", "task.test_shift=0", "hydra.run.dir=one_view_run"],
            {},
        ),
        "predict": (
            [
                "-m",
                "attnkit",
                "mode=predict",
                f"ckpt_path={ckpt}",
                f"input={image}",
                "hydra.run.dir=predict_run",
            ],
            {},
        ),
        "unreadable": (
            ["-m", "attnkit", "mode=predict", f"ckpt_path={ckpt}", "input=x.png", "hydra.run.dir=bad_run"],
            {},
        ),
    }
    results = run_parallel(commands, tmp_path)

    ok(results["test"])
    metrics = json.loads((tmp_path / "test_run" / "metrics.json").read_text())
    trained_metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["test/acc"] == pytest.approx(trained_metrics["test/acc"])  # same checkpoint, same split
    assert metrics["checkpoint"] == str(ckpt)
    ok(results["one_view"])  # task.test_shift=0: the image alone, which the test also reports beside the views
    one_view = json.loads((tmp_path / "one_view_run" / "metrics.json").read_text())
    assert one_view["test/acc"] == pytest.approx(metrics["test/acc_one_view"]) and "test/acc_one_view" not in one_view

    proc = ok(results["predict"])
    prediction = json.loads((tmp_path / "predict_run" / "prediction.json").read_text())
    assert prediction["prediction"] in [str(d) for d in range(10)]
    assert f"digit.png: {prediction['prediction']}" in proc.stdout
    assert len(prediction["top"]) == 3 and 0.0 < prediction["top"][0]["probability"] <= 1.0

    message = one_error_line(results["unreadable"])
    assert "cannot read image" in message and "x.png" in message
    assert not (tmp_path / "bad_run").exists()


# --- run folders are never overwritten or left half-made; a mode does what it is told or says why not ------------


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder`: its bytes and modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


def test_run_folders_are_never_overwritten_nor_left_half_made(trained, digit_png, tmp_path) -> None:
    shutil.copytree(trained, tmp_path / "run")
    before = snapshot(tmp_path / "run")
    (tmp_path / "empty").mkdir()
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    image, _ = digit_png
    commands: dict[str, Command] = {
        "existing": ([*CLI, *TINY, "hydra.run.dir=run"], {}),
        "finished": ([*CLI, "resume=run"], {}),
        "empty_folder": ([*CLI, *TINY, "trainer.fast_dev_run=true", "hydra.run.dir=empty"], {}),
        "bf17": ([*CLI, *TINY, "trainer.precision=bf17", "hydra.run.dir=bf17"], {}),
        "no_devices": ([*CLI, *TINY, "trainer.devices=0", "hydra.run.dir=dev0"], {}),
        "ckpt_in_train": ([*CLI, *TINY, f"ckpt_path={ckpt}", "hydra.run.dir=ckpt"], {}),
        "test_deeper": ([*CLI, "mode=test", f"ckpt_path={ckpt}", "model.depth=8", "heads=4", "hydra.run.dir=t8"], {}),
        "test_batch": ([*CLI, "mode=test", f"ckpt_path={ckpt}", "data.batch_size=64", "hydra.run.dir=t64"], {}),
        "predict_lr": (
            [*CLI, "mode=predict", f"ckpt_path={ckpt}", f"input={image}", "task.lr=0.5", "hydra.run.dir=p"],
            {},
        ),
    }
    results = run_parallel(commands, tmp_path)

    line = one_error_line(results["existing"])
    assert "hydra.run.dir=run already holds a run" in line and "resume=run" in line and "outputs/<date>" in line
    line = one_error_line(results["finished"])
    assert "is finished (trainer.max_epochs=1 reached); nothing was changed" in line and "trainer.max_epochs=2" in line
    assert snapshot(tmp_path / "run") == before  # not a byte, not a time stamp: nothing re-tested or rewritten
    ok(results["empty_folder"])
    assert (tmp_path / "empty" / "metrics.json").is_file()
    assert "trainer.precision='bf17' must be one of" in one_error_line(results["bf17"])  # checked with the config
    assert "trainer.devices=0 must be" in one_error_line(results["no_devices"])
    line = one_error_line(results["ckpt_in_train"])
    assert "is for mode=test and mode=predict" in line and "resume=" in line and "init_from=" in line
    line = one_error_line(results["test_deeper"])
    assert "model.depth=8 (the checkpoint has 1); heads=4 (the checkpoint has 2)" in line
    assert "task.lr=0.5 (the checkpoint has 0.003)" in one_error_line(results["predict_lr"])
    for name in ("bf17", "dev0", "ckpt", "t8", "p"):
        assert not (tmp_path / name).exists(), f"{name}: a refused run left its folder behind"
    ok(results["test_batch"])
    tested = yaml.safe_load((tmp_path / "t64" / "config.yaml").read_text())
    assert tested["data"]["batch_size"] == 64 and tested["model"]["depth"] == 1 and tested["model"]["dim"] == 16

    extended = ok(attnkit_cli("resume=run", "trainer.max_epochs=2", cwd=tmp_path))  # a finished run, extended
    assert "trained" in extended.stdout
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"] == 2


LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of ending the process
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
from attnkit import cli
cli.main(sys.argv[2:])
"""


def test_a_full_disk_is_one_line_and_the_checkpoints_stay_whole(trained, tmp_path) -> None:
    """A file-size limit below a checkpoint's size, as a full disk: the resumed run's first checkpoint cannot be
    written; one line names it and the OS's reason, and the checkpoints of before are as they were."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    checkpoints = snapshot(run_dir / "checkpoints")
    limit = (run_dir / "checkpoints" / "last.ckpt").stat().st_size // 2
    proc = run_python(["-c", LIMITED, str(limit), "resume=run", "trainer.max_epochs=2"], tmp_path)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]  # after the resume's warnings
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    line = errors[0]
    assert f"cannot write {run_dir / 'checkpoints'}" in line and "File too large (EFBIG)" in line, line
    assert "ulimit -f" in line and f"resume={run_dir}" in line
    assert {k: v[0] for k, v in snapshot(run_dir / "checkpoints").items()} == {k: v[0] for k, v in checkpoints.items()}
    assert not list(run_dir.rglob("*.tmp")), "a temporary file was left behind"


@pytest.mark.skipif(os.geteuid() == 0, reason="runs as root, which writes into a read-only folder; run as a user")
def test_an_unwritable_output_folder_is_one_line(tmp_path) -> None:
    (tmp_path / "locked").mkdir(mode=0o555)
    results = run_parallel(
        {
            "run_dir": ([*CLI, *TINY, "hydra.run.dir=locked/run"], {}),
            "outputs": ([*CLI, *TINY], {}),
        },
        tmp_path / "locked",
    )
    for name, proc in results.items():
        line = one_error_line(proc)
        assert "cannot write the run folder" in line and "is not writable (permission denied)" in line, name
        assert "hydra.run.dir=<a folder you can write>" in line
    assert not list((tmp_path / "locked").iterdir())


def test_a_folder_that_cannot_be_written_is_said_before_the_run(tmp_path, monkeypatch) -> None:
    """What the test above checks end to end, for a suite that runs as root: the same check, os.access refusing."""
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(attnkit.DataError) as exc:
        cli.check_writable(tmp_path / "new" / "run")
    assert f"{tmp_path / 'new' / 'run'}: {tmp_path} is not writable (permission denied)" in str(exc.value)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(attnkit.DataError) as exc:
        cli.reserve_dir(Path("outputs"))
    assert "hydra.run.dir=<a folder you can write>" in str(exc.value) and not (tmp_path / "outputs").exists()
    (tmp_path / "notes.txt").write_text("a file")
    monkeypatch.undo()
    with pytest.raises(attnkit.DataError) as exc:
        cli.check_writable(tmp_path / "notes.txt" / "run")
    assert "is a file" in str(exc.value)


def test_predict_reads_an_input_file_line_by_line(translated, tmp_path) -> None:
    ckpt = translated / "checkpoints" / "best.ckpt"
    (tmp_path / "numbers.txt").write_text("seven\n\nthree hundred and twelve\n")
    predict = [*CLI, "mode=predict", f"ckpt_path={ckpt}"]
    results = run_parallel(
        {
            "file": ([*predict, "input=numbers.txt", "hydra.run.dir=file"], {}),
            "missing": ([*predict, "input=number.txt", "hydra.run.dir=missing"], {}),
            "beam": ([*predict, "input=seven", "task.beam=1", "hydra.run.dir=beam"], {}),
            "vocab": ([*predict, "input=seven", "task.tokenizer.vocab_size=99", "hydra.run.dir=vocab"], {}),
        },
        tmp_path,
    )
    predictions = json.loads((tmp_path / "file" / "prediction.json").read_text())["predictions"]
    assert [p["source"] for p in predictions] == ["seven", "three hundred and twelve"]
    assert ok(results["file"]).stdout.strip().splitlines()[-2:] == [p["output"] for p in predictions]
    line = one_error_line(results["missing"])
    assert "input=number.txt looks like a file but" in line and "does not exist" in line
    assert json.loads((tmp_path / "beam" / "prediction.json").read_text())["decoding"]["beam"] == 1  # applied
    assert "task.tokenizer.vocab_size=99 (the checkpoint has 150)" in one_error_line(results["vocab"])
    assert not (tmp_path / "missing").exists() and not (tmp_path / "vocab").exists()


# --- distributed data parallel over two CPU processes -------------------------------------------------------


def test_ddp_on_two_cpu_processes(tmp_path) -> None:
    """A real `python -m attnkit` process: Lightning starts the second rank by running the same command again."""
    args = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", *TINY, "hydra.run.dir=run"]
    proc = ok(run_python(["-m", "attnkit", *args], tmp_path))
    text = proc.stdout + proc.stderr
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in text, text[-3000:]  # the second process joined
    check_run_layout(tmp_path / "run")
    assert not (tmp_path / "outputs").exists()


# --- translation: train, then test and predict with its checkpoint; per-stack attention; its user mistakes --------

TRANSLATION = (
    "task=translation",
    "data.train_size=200",
    "data.val_size=16",
    "data.test_size=16",
    "data.max_number=9999",
    "model.dim=16",
    "model.depth=1",
    "heads=2",
    "task.beam=2",
    "task.tokenizer.vocab_size=150",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
)


@pytest.fixture(scope="module")
def translated(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("translated")
    proc = ok(attnkit_cli(*TRANSLATION, "hydra.run.dir=run", cwd=cwd, ATTNKIT_CACHE=str(cwd / "cache")))
    assert "test/bleu" in proc.stdout and "bleu signature: nrefs:1|case:mixed|eff:no|tok:13a" in proc.stdout
    assert "source" in proc.stdout and "translation" in proc.stdout  # the sample table
    return cwd / "run"


def test_translation_test_and_predict_from_the_command_line(translated, trained, tmp_path) -> None:
    ckpt = translated / "checkpoints" / "best.ckpt"
    cache = {"ATTNKIT_CACHE": str(tmp_path / "cache")}
    cli = ["-m", "attnkit", "task=translation"]
    commands: dict[str, Command] = {
        "test": ([*cli, "mode=test", f"ckpt_path={ckpt}", "hydra.run.dir=test_run"], {}),
        # no task=: the checkpoint's run directory names its task
        "predict": (["-m", "attnkit", "mode=predict", f"ckpt_path={ckpt}", "input=forty-two", "hydra.run.dir=one"], {}),
        "vit_checkpoint": (
            [*cli, "mode=predict", f"ckpt_path={trained / 'checkpoints' / 'best.ckpt'}", "input=x", "hydra.run.dir=v"],
            {},
        ),
        "per_stack": (
            [
                *cli,
                *TRANSLATION[1:],
                "model.encoder.attention=local",
                "model.decoder.attention=softmax",
                "model.decoder.cross_attention=eager",
                "trainer.fast_dev_run=true",
                "hydra.run.dir=stacks",
            ],
            cache,
        ),
        "missing_file": ([*cli, "data=text_files", "data.train=missing.jsonl", "hydra.run.dir=m"], cache),
        "image_data": ([*cli, "data=digits", "hydra.run.dir=d"], cache),
        "unknown_language": ([*cli, "data.src=xx", "hydra.run.dir=l"], cache),
    }
    results = run_parallel(commands, tmp_path)
    piped = ok(  # lines on stdin
        forked_cli.run(
            [*cli[2:], "mode=predict", f"ckpt_path={ckpt}", "hydra.run.dir=piped"],
            tmp_path,
            cli_env(),
            stdin="seven\nthree hundred and twelve\n",
        )
    )

    ok(results["test"])
    tested = json.loads((tmp_path / "test_run" / "metrics.json").read_text())
    assert tested["test/bleu"] == pytest.approx(json.loads((translated / "metrics.json").read_text())["test/bleu"])

    printed = ok(results["predict"]).stdout.strip().splitlines()
    prediction = json.loads((tmp_path / "one" / "prediction.json").read_text())
    assert printed[-1] == prediction["predictions"][0]["output"]
    outputs = [p["output"] for p in json.loads((tmp_path / "piped" / "prediction.json").read_text())["predictions"]]
    assert len(outputs) == 2 and piped.stdout.strip().splitlines()[-2:] == outputs

    assert "written by task=vit" in one_error_line(results["vit_checkpoint"])
    assert (tmp_path / "stacks" / "metrics.json").is_file() and ok(results["per_stack"])
    stacks = yaml.safe_load((tmp_path / "stacks" / "config.yaml").read_text())["model"]
    assert stacks["encoder"]["attention"] == "local" and stacks["decoder"]["cross_attention"] == "eager"
    assert "missing.jsonl" in one_error_line(results["missing_file"])
    assert "data=digits is not a text-pair source" in one_error_line(results["image_data"])
    assert "data.src='xx'" in one_error_line(results["unknown_language"])
    for name in ("v", "m", "d", "l"):
        assert not (tmp_path / name).exists(), "a failed run left its run directory behind"


# --- summarization: train, predict a file; its user mistakes ----------------------------------------------------

SUMMARIZATION = (
    "task=summarization",
    "data.train_size=120",
    "data.val_size=8",
    "data.test_size=8",
    "model.dim=16",
    "model.depth=1",
    "heads=2",
    "task.beam=2",
    "task.tokenizer.vocab_size=200",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
)


def test_summarization_from_the_command_line(tmp_path) -> None:
    cache = {"ATTNKIT_CACHE": str(tmp_path / "cache")}
    proc = ok(attnkit_cli(*SUMMARIZATION, "hydra.run.dir=run", cwd=tmp_path, **cache))
    assert "test/rougeL" in proc.stdout and "test/lead_rougeL" in proc.stdout and "rouge signature:" in proc.stdout
    (tmp_path / "report.txt").write_text("Ashford Rovers welcomed Brampton Town to Ashford Park on Saturday.\n")
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    commands: dict[str, Command] = {
        "predict": (["-m", "attnkit", "mode=predict", f"ckpt_path={ckpt}", "input=report.txt", "hydra.run.dir=p"], {}),
        "min_above_max": (
            ["-m", "attnkit", *SUMMARIZATION, "task.min_len=40", "task.max_len=30", "hydra.run.dir=bad"],
            cache,
        ),
        "too_long_source": (
            ["-m", "attnkit", *SUMMARIZATION, "data.max_source_len=1024", "hydra.run.dir=long"],
            cache,
        ),
    }
    results = run_parallel(commands, tmp_path)
    printed = ok(results["predict"]).stdout.strip().splitlines()
    prediction = json.loads((tmp_path / "p" / "prediction.json").read_text())["predictions"]
    assert len(prediction) == 1 and printed[-1] == prediction[0]["output"]
    assert "task.min_len=40 is above task.max_len=30" in one_error_line(results["min_above_max"])
    assert "data.max_source_len=1024 is above model.max_len=512" in one_error_line(results["too_long_source"])
    for name in ("bad", "long"):
        assert not (tmp_path / name).exists(), "a failed run left its run directory behind"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["mode=predict"], ["task=translation", "data=text_files"]),
        (["mode=test"], ["task=translation", "data=text_files"]),
        (["mode=test", "data=number_words"], ["task=translation"]),  # the user's choice wins
        (["mode=train"], []),
        (["mode=predict", "task=vit"], []),
        (["mode=predict", "experiment=fashion_mnist"], []),
    ],
)
def test_task_and_data_come_from_the_checkpoints_run_directory(tmp_path, extra, expected) -> None:
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "config.yaml").write_text("task:\n  name: translation\ndata:\n  name: text_files\n")
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    assert cli.task_from_checkpoint([*extra, f"ckpt_path={ckpt}"]) == expected
    assert cli.task_from_checkpoint(["mode=predict", f"ckpt_path={tmp_path / 'elsewhere.ckpt'}"]) == []


def test_a_bare_checkpoint_names_its_task_and_data(tmp_path) -> None:
    torch.save({"attnkit": {"task": "lm", "data": {"name": "mqar"}}}, tmp_path / "lm.ckpt")
    expected = ["task=lm", "data=mqar"]
    assert cli.task_from_checkpoint(["mode=generate", f"ckpt_path={tmp_path / 'lm.ckpt'}"]) == expected


def test_list_quotes_a_default_that_would_break_its_line() -> None:
    assert (cli.shown_value("\n\n"), cli.shown_value("utf-8"), cli.shown_value(0.05)) == ("'\\n\\n'", "utf-8", "0.05")
