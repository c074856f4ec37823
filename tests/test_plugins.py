"""Plugins: one-file plugins, importable modules, installed packages' `attnkit.plugins` entry points.

In-process tests restore the registry afterwards; the CLI tests run `python -m attnkit` in a process of its own (forked
from the session's runner, tests/forked_cli.py, which honours $PYTHONPATH as python does), each from a temporary
working directory with its run directory under it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import forked_cli
import pytest
import torch
import torch.nn.functional as F
from checks import one_line, restored_registry

import attnkit
from attnkit import PluginError, plugins, registry
from attnkit.nn import ViT
from attnkit.nn.attention import Attention, eager_attention

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PLUGIN_FILE = EXAMPLES / "my_attention.py"
PLUGIN_PACKAGE = EXAMPLES / "plugin_package"


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **extra}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def attnkit_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return forked_cli.run(args, cwd, cli_env(**env))


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture
def clean_registry():
    """Load plugins freely: the registry and the plugin cache are restored afterwards."""
    loaded = dict(plugins._loaded)
    modules = set(sys.modules)
    with restored_registry():
        yield
    plugins._loaded.clear()
    plugins._loaded.update(loaded)
    for name in set(sys.modules) - modules:
        if name.startswith(("attnkit_plugin_", "attnkit_example_plugin", "my_plugin_module")):
            del sys.modules[name]


# --- (a) plugins from files and modules, in process ---------------------------------------------------------


def test_file_plugin_registers_a_buildable_attention(clean_registry) -> None:
    assert "my_attention" not in attnkit.available("attention")
    (module,) = attnkit.load_plugins(PLUGIN_FILE)
    assert "my_attention" in attnkit.available("attention")
    assert attnkit.load_plugins(str(PLUGIN_FILE)) == [module]  # a second load is a no-op, not a clash
    relative = os.path.relpath(PLUGIN_FILE, ROOT)
    assert attnkit.load_plugins(relative, base=ROOT) == [module]  # the same file, spelt another way

    # its config node comes from the constructor signature
    assert registry.defaults("attention", "my_attention") == {
        "name": "my_attention",
        "temperature": 10.0,
        "learnable": True,
        "dropout": 0.0,
        "eps": 1e-6,
    }
    kernel = attnkit.build("attention", "my_attention", temperature=5)
    assert isinstance(kernel, Attention) and kernel.temperature == pytest.approx(5.0)

    # a whole model with it, as `attention=my_attention attention.temperature=5` builds it
    model = ViT((8, 8), 1, 10, dim=16, depth=1, heads=2, attention={"name": "my_attention", "temperature": 5})
    images = torch.randn(3, 1, 8, 8)
    logits = model(images)
    assert logits.shape == (3, 10)
    logits.sum().backward()
    assert model.blocks[0].attn.attention.log_temperature.grad is not None  # the temperature is trained
    assert model.attention_maps(images).shape == (3, 2, 4, 4)


def test_file_plugin_kernel_is_cosine_attention(clean_registry) -> None:
    """softmax(τ·cos(q, k))V is eager attention on unit-length q and k with scale τ, masks included."""
    attnkit.load_plugins(PLUGIN_FILE)
    kernel = attnkit.build("attention", "my_attention", temperature=4.0, learnable=False)
    assert not list(kernel.parameters())
    q = torch.randn(2, 4, 5, 8, requires_grad=True)
    k, v = torch.randn(2, 2, 7, 8), torch.randn(2, 2, 7, 8)  # grouped-query: 2 key/value heads
    padding = torch.zeros(2, 7, dtype=torch.bool)
    padding[0, 5:] = True
    padding[1, :] = True  # every key of the second sample is padding: dead rows
    out, weights = kernel(q, k, v, key_padding_mask=padding, causal=True, need_weights=True)
    expected, _ = eager_attention(
        F.normalize(q, dim=-1), F.normalize(k, dim=-1), v, key_padding_mask=padding, causal=True, scale=4.0
    )
    torch.testing.assert_close(out, expected)
    assert out.shape == (2, 4, 5, 8) and weights.shape == (2, 4, 5, 7)
    assert torch.all(out[1] == 0) and torch.all(weights[1] == 0)  # dead rows give zeros, not NaN
    torch.testing.assert_close(weights[0].sum(-1), torch.ones(4, 5))
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and torch.all(q.grad[1] == 0)
    with pytest.raises(attnkit.ConfigError, match="temperature"):
        attnkit.build("attention", "my_attention", temperature=0.0)


def test_plugin_errors_are_one_line(clean_registry, tmp_path) -> None:
    with pytest.raises(PluginError) as exc:
        attnkit.load_plugins(tmp_path / "missing.py")
    assert "missing.py" in one_line(exc) and "does not exist" in one_line(exc)

    broken = tmp_path / "broken.py"
    broken.write_text("import attnkit\nraise RuntimeError('half-written plugin')\n")
    with pytest.raises(PluginError) as exc:
        attnkit.load_plugins(broken)
    message = one_line(exc)
    assert "broken.py" in message and "RuntimeError" in message and "half-written plugin" in message
    assert not any(name.startswith("attnkit_plugin_broken") for name in sys.modules)  # nothing half-imported

    with pytest.raises(PluginError) as exc:
        attnkit.load_plugins("attnkit_no_such_plugin_module")
    assert "'attnkit_no_such_plugin_module' is not installed" in one_line(exc)
    assert isinstance(exc.value, ImportError)


def test_a_plugin_that_exits_or_cannot_be_parsed_is_one_line_with_its_line(clean_registry, tmp_path) -> None:
    (tmp_path / "exits.py").write_text("import sys\n\nsys.exit(3)\n")
    (tmp_path / "unparsable.py").write_text("import attnkit\n\ndef f(:\n    pass\n")
    (tmp_path / "deep.py").write_text("def helper():\n    return 1 / 0\n\n\nhelper()\n")
    answers = {
        "exits.py": "it called sys.exit(3) (at exits.py:3); a plugin must only define and register, never exit",
        "unparsable.py": "failed to import: SyntaxError: invalid syntax (at unparsable.py:3)",
        "deep.py": "failed to import: ZeroDivisionError: division by zero (at deep.py:2)",
    }
    for name, answer in answers.items():
        with pytest.raises(PluginError) as exc:
            attnkit.load_plugins(tmp_path / name)
        assert name in one_line(exc) and answer in one_line(exc), one_line(exc)


CONSTRUCTORS = """import attnkit
from attnkit.nn.attention.base import Attention, repeat_kv


@attnkit.register("attention", "no_init")
class NoInit(Attention):
    def attend(self, q, k, v, *, key_padding_mask=None, causal=False, bias=None):
        k, v = repeat_kv(k, q.shape[1]), repeat_kv(v, q.shape[1])
        return (q @ k.transpose(-2, -1)).softmax(-1) @ v


@attnkit.register("attention", "needs_window")
class NeedsWindow(NoInit):
    def __init__(self, window, dim=None):
        super().__init__()


@attnkit.register("attention", "passes_kwargs")
class PassesKwargs(NoInit):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)


@attnkit.register("attention", "raises")
class Raises(NoInit):
    def __init__(self, head_dim: int = 8):
        super().__init__()
        self.table = {}[head_dim]
"""


def test_a_constructor_that_fails_is_one_line_naming_the_component_and_its_line(clean_registry, tmp_path) -> None:
    """A required argument nothing gives, an argument it does not take, an exception: each names the component and
    file:line; a kernel without an __init__ of its own takes no arguments (and is given none)."""
    (tmp_path / "constructors.py").write_text(CONSTRUCTORS)
    attnkit.load_plugins(tmp_path / "constructors.py")
    model = ViT((8, 8), 1, 10, dim=16, depth=1, heads=2, attention="no_init")
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert registry.defaults("attention", "no_init") == {"name": "no_init"}
    answers = {
        "needs_window": "attention 'needs_window' (constructors.py:14) needs window= but nothing gives it; give each a "
        "default in its __init__ (it becomes the option attention.window=...)",
        "passes_kwargs": "attention 'passes_kwargs' (constructors.py:20) does not accept dim=16; its __init__ must "
        "name each argument it takes (the model offers dim=, heads=, head_dim=, max_length=",
        "raises": "attention 'raises' (constructors.py:28) failed when built: KeyError: 8",
    }
    for name, answer in answers.items():
        with pytest.raises(attnkit.ConfigError) as exc:
            ViT((8, 8), 1, 10, dim=16, depth=1, heads=2, attention=name)
        assert answer in one_line(exc), one_line(exc)
    with pytest.raises(attnkit.ConfigError, match="has no option 'window'"):
        attnkit.build("attention", "no_init", window=3)


def test_module_plugin_by_name(clean_registry, tmp_path, monkeypatch) -> None:
    (tmp_path / "my_plugin_module.py").write_text(
        "import attnkit\n\n@attnkit.register('ffn', 'my_plugin_ffn')\ndef make(dim: int, width: int = 4):\n"
        "    return (dim, width)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    attnkit.load_plugins("my_plugin_module")
    assert attnkit.build_spec("ffn", "my_plugin_ffn", dim=8) == (8, 4)


# --- (c) the built-in task is itself an entry-point plugin --------------------------------------------------


def test_builtin_vit_task_comes_through_the_entry_point() -> None:
    eps = {ep.name: ep.value for ep in entry_points(group=plugins.ENTRY_POINT_GROUP)}
    assert eps.get("vit") == "attnkit.tasks.vit"
    assert "vit" in attnkit.available("task")
    assert {"digits", "image_folder", "fashion_mnist"} <= set(attnkit.available("data"))
    assert "vit" in plugins.load_entry_points()


# --- (b, d) an installed plugin package and a one-file plugin through the CLI -------------------------------


@pytest.fixture(scope="module")
def installed_package(tmp_path_factory) -> Path:
    """examples/plugin_package pip-installed into a private --target directory (from a copy: no build/ left
    in the source tree)."""
    tmp = tmp_path_factory.mktemp("plugin_package")
    source, target = tmp / "src", tmp / "site"
    shutil.copytree(PLUGIN_PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-index",
        "--disable-pip-version-check",
        "--target",
        str(target),
        str(source),
    ]
    try:
        import setuptools  # noqa: F401
    except ImportError:  # build in an isolated environment instead (pip fetches setuptools)
        command.remove("--no-index")
    else:
        command.insert(4, "--no-build-isolation")
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, env=cli_env())
    assert proc.returncode == 0, proc.stderr
    assert (target / "attnkit_example_plugin" / "__init__.py").is_file()
    return target


def test_installed_package_is_listed(installed_package, tmp_path) -> None:
    proc = ok(attnkit_cli("mode=list", f"plugins=[{PLUGIN_FILE}]", cwd=tmp_path, PYTHONPATH=str(installed_package)))
    assert "scalenorm" in proc.stdout and "ScaleNorm" in proc.stdout
    assert "attnkit_example_plugin" in proc.stdout  # where it is defined
    assert "my_attention" in proc.stdout
    assert not proc.stderr.strip()
    if importlib.util.find_spec("attnkit_example_plugin") is None:  # not installed for good in this venv
        proc = attnkit_cli("norm=scalenorm", cwd=tmp_path)
        assert proc.returncode != 0 and proc.stderr.startswith("error: unknown norm 'scalenorm'")


def test_plugins_from_a_package_and_a_relative_file_train(installed_package, tmp_path) -> None:
    """`norm=scalenorm` from the installed package and `attention=my_attention` from a file path relative to
    the launch directory (not the repository), in one fast_dev_run."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    relative = os.path.relpath(PLUGIN_FILE, work)
    run_dir = tmp_path / "run"
    proc = ok(
        attnkit_cli(
            f"plugins=[{relative}]",
            "attention=my_attention",
            "attention.temperature=5",
            "norm=scalenorm",
            "norm.eps=1e-6",
            "trainer.fast_dev_run=true",
            "model.depth=1",
            "model.dim=16",
            "heads=2",
            "trainer.enable_progress_bar=false",
            f"hydra.run.dir={run_dir}",
            cwd=work,
            PYTHONPATH=str(installed_package),
        )
    )
    assert "test accuracy" in proc.stdout
    saved = (run_dir / "config.yaml").read_text()
    assert "name: my_attention" in saved and "temperature: 5" in saved and "name: scalenorm" in saved
    assert (run_dir / "metrics.json").is_file()
    assert (run_dir / "attention_maps.png").is_file()  # the plugin returns weights, so maps are drawn
    assert not (work / "outputs").exists()


# --- (c) a task from one file: examples/my_task.py ----------------------------------------------------------------


def test_a_task_plugin_trains_from_the_command_line(tmp_path) -> None:
    """The out-of-tree task trains a step, tests, reports and checkpoints through the Task base, with an attention
    chosen on the command line; then `mode=test` reads its checkpoint."""
    run_dir = tmp_path / "run"
    common = [
        f"plugins=[{EXAMPLES / 'my_task.py'}]",
        "task=majority",
        "model=classifier",
        "trainer.enable_progress_bar=false",
    ]
    proc = ok(
        attnkit_cli(
            *common,
            "attention=linear",
            "model.dim=16",
            "heads=2",
            "task.examples=200",
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=1",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
    )
    assert "majority symbol — trained" in proc.stdout and "test accuracy" in proc.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["train_samples_per_s"] > 0
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    tested = ok(attnkit_cli(*common, "mode=test", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 't'}", cwd=tmp_path))
    assert "majority symbol — checkpoint evaluated" in tested.stdout
    assert json.loads((tmp_path / "t" / "metrics.json").read_text())["test/acc"] == pytest.approx(metrics["test/acc"])
