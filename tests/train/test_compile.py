"""`compile=`: torch.compile of every task's model.

Every registered attention kernel, compiled by inductor on the CPU, gives the eager outputs and gradients; the option
is validated in one line; a compiled model keeps its state_dict keys (checkpoints, the moving average, resume and
mode=test work as without it); and `python -m attnkit task=vit compile=true` trains.

Compiling is slow (seconds per kernel, more on a busy machine or with an empty inductor cache): the shapes are tiny,
`dynamic=False`, and each kernel compiles once, with every input its flags allow (padding with dead rows, causal,
bias) in the same call.
"""

from __future__ import annotations

import os
from pathlib import Path

import forked_cli
import pytest
import torch
from checks import one_line
from torch import nn

import attnkit
from attnkit import ConfigError, registry
from attnkit.nn import MultiHeadAttention, SoftmaxAttention
from attnkit.train.compile import check_compilable, compile_kwargs, compile_module

HEADS, HEAD_DIM, N = 2, 4, 6
SDPA = {"name": "softmax", "cpu_eager_max_len": 0}  # softmax's SDPA path (short inputs take its explicit path)
KERNELS = [pytest.param(name, id=name) for name in attnkit.available("attention")]
KERNELS.append(pytest.param(SDPA, id="softmax-sdpa"))
AUTOTUNE = {"mode": "max-autotune-no-cudagraphs", "dynamic": False}
TINY_VIT = (
    "task=vit",
    "model.dim=16",
    "model.depth=1",
    "heads=2",
    "data.batch_size=90",  # evaluation batches of 180: validation and test batches share one shape (one compile)
    "task.attention_maps=0",
    "trainer.enable_progress_bar=false",
)


# --- the option ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (False, None),
        (None, None),
        (True, {}),
        (AUTOTUNE, AUTOTUNE),
        ({"backend": "eager", "fullgraph": True}, {"backend": "eager", "fullgraph": True}),
        ({"options": {"max_autotune": True}}, {"options": {"max_autotune": True}}),
    ],
)
def test_accepted_values(value, expected) -> None:
    assert compile_kwargs(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("fast", "compile='fast' is not a choice; give compile=true, compile=false or compile={mode:"),
        ("max-autotune", "a mode goes inside the mapping: default"),
        (3, "compile=3 is not a choice"),
        ({"modee": "default"}, "compile.modee is not an argument of torch.compile; its arguments: fullgraph, dynamic"),
        ({"mode": "fastest"}, "compile.mode='fastest' is not a torch.compile mode; choose one of default"),
        ({"mode": "default", "options": {"max_autotune": True}}, "compile.mode and compile.options cannot both be set"),
        ({"dynamic": "yes"}, "compile.dynamic='yes' must be true, false or null"),
        ({"fullgraph": 1}, "compile.fullgraph=1 must be true or false"),
        ({"backend": "nope"}, "compile.backend='nope' is not a torch.compile backend; choose one of ["),
        ({"options": [1]}, "compile.options=[1] must be a mapping"),
    ],
)
def test_refused_values(value, fragment) -> None:
    with pytest.raises(ConfigError) as exc:
        compile_kwargs(value)
    assert fragment in one_line(exc)


class Untraceable(SoftmaxAttention):
    """A kernel that declares it cannot be compiled."""

    supports_compile = False


def test_a_kernel_that_cannot_be_compiled_is_refused() -> None:
    model = nn.Sequential(MultiHeadAttention(8, 2, attention=Untraceable()))
    with pytest.raises(ConfigError) as exc:
        check_compilable(model)
    message = one_line(exc)
    assert message.startswith("compile=true cannot compile attention=Untraceable (its class sets supports_compile")
    assert message.endswith("set compile=false or choose another attention")
    check_compilable(nn.Sequential(MultiHeadAttention(8, 2)))  # the built-ins can


# --- every registered kernel: compiled == eager, forward and gradients ------------------------------------------------


@pytest.mark.parametrize("spec", KERNELS)
def test_compiled_kernel_equals_eager(spec) -> None:
    name = spec if isinstance(spec, str) else spec["name"]
    cls = attnkit.get("attention", name)
    kernel = registry.build_spec("attention", spec, dim=HEADS * HEAD_DIM, heads=HEADS, head_dim=HEAD_DIM, max_len=16)
    kernel.eval()  # no dropout (compiled dropout draws other random numbers)
    q, k, v = (torch.randn(2, HEADS, N, HEAD_DIM, requires_grad=True) for _ in range(3))
    kwargs = {}
    if cls.supports_key_padding:
        padding = torch.zeros(2, N, dtype=torch.bool)
        padding[1, :2] = True  # with causal: the first two queries of row 1 see no key (dead rows)
        kwargs["key_padding_mask"] = padding
    if cls.supports_causal:
        kwargs["causal"] = True
    if cls.supports_bias:
        kwargs["bias"] = torch.randn(1, HEADS, N, N)

    def run(fn) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        out = fn(q, k, v, **kwargs)
        return out, torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(), (q, k, v))

    eager_out, eager_grads = run(kernel)
    compiled_out, compiled_grads = run(torch.compile(kernel, dynamic=False))
    torch.testing.assert_close(compiled_out, eager_out, atol=1e-5, rtol=1e-4)
    for compiled, eager in zip(compiled_grads, eager_grads, strict=True):
        assert torch.isfinite(compiled).all()
        torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-4)


# --- a compiled task module: same checkpoints, moving average of its own weights --------------------------------------


def tiny_module(ema_decay: float = 0.5):
    from attnkit.train.module import TaskModule

    model = {"name": "vit", "dim": 16, "depth": 1, "heads": 2, "patch_size": 4}
    context = {"image_size": [8, 8], "in_channels": 1, "num_classes": 3}
    task = {"name": "vit", "lr": 1e-3, "weight_decay": 0.0, "min_lr_ratio": 0.1, "ema_decay": ema_decay}
    return TaskModule(task=task, model=model, context=context)


def test_compiled_module_keeps_its_state_dict_and_moving_average() -> None:
    plain, compiled = tiny_module(), tiny_module()
    compiled.load_state_dict(plain.state_dict())
    compile_module(compiled, {"backend": "eager"})  # dynamo's tracing, without inductor's code generation
    assert list(compiled.state_dict()) == list(plain.state_dict())  # checkpoints, resume and mode=test read the same
    images = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(compiled.model(images), plain.model(images))
    for module in (plain, compiled):  # a step moves the weights; the average follows them halfway
        with torch.no_grad():
            for p in module.model.parameters():
                p.add_(0.1)
        module.ema.update(module.model)
    # the compiled average runs its own weights, not the model's
    torch.testing.assert_close(compiled.ema.module(images), plain.ema.module(images))
    assert not torch.allclose(compiled.ema.module(images), compiled.model(images))
    plain.load_state_dict(compiled.state_dict())  # and back: a compiled run's checkpoint loads into a plain model
    compile_module(plain, False)
    assert not hasattr(plain.model, "_compiled_call_impl") or plain.model._compiled_call_impl is None


# --- the command line -----------------------------------------------------------------------------------------------


def cli(*args: str, cwd: Path):
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return forked_cli.run(args, cwd, env)


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def test_vit_trains_compiled(tmp_path) -> None:
    """inductor, end to end: a fast_dev_run of the digits ViT with compile=true."""
    proc = ok(cli(*TINY_VIT, "compile=true", "trainer.fast_dev_run=true", "hydra.run.dir=run", cwd=tmp_path))
    assert "test accuracy" in proc.stdout


def test_compiled_run_checkpoints_resume_and_test(tmp_path) -> None:
    """A compiled run's checkpoints are a plain run's: it resumes (compiled) and mode=test reads them (not compiled).
    Dynamo's `eager` backend keeps this test quick; the wiring is the same as inductor's."""
    eager = "compile={backend:eager}"
    ok(cli(*TINY_VIT, eager, "trainer.max_epochs=1", "hydra.run.dir=run", cwd=tmp_path))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    keys = list(torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"])
    assert any(k.startswith("ema.module.") for k in keys) and not any("_orig_mod" in k for k in keys)
    ok(cli("resume=run", "trainer.max_epochs=2", cwd=tmp_path))
    assert (tmp_path / "run" / "metrics.json").is_file()
    proc = ok(cli("mode=test", f"ckpt_path={ckpt}", "hydra.run.dir=tested", cwd=tmp_path))
    assert "test accuracy" in proc.stdout


def test_a_bad_value_is_one_line_on_the_command_line(tmp_path) -> None:
    proc = cli(*TINY_VIT, "compile={mode:fastest}", "hydra.run.dir=run", cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("error: compile.mode='fastest' is not a torch.compile mode")
    assert not (tmp_path / "run").exists()
