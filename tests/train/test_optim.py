"""AdamW: the fused kernel where the parameters allow it, the same update as PyTorch's looped one."""

from __future__ import annotations

import os

import torch
from forked_cli import run_many
from torch import nn

from attnkit.train.optim import adamw, param_groups


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Linear(8, 3))


def test_fused_on_cpu_and_the_same_update_as_the_looped_kernel() -> None:
    fused_model, looped_model = _model(), _model()
    fused = adamw(param_groups(fused_model, 0.1), lr=1e-2, betas=(0.9, 0.98))
    looped = torch.optim.AdamW(param_groups(looped_model, 0.1), lr=1e-2, betas=(0.9, 0.98))
    assert fused.defaults["fused"] is True and not looped.defaults["fused"]
    x = torch.randn(16, 6)
    for _ in range(5):
        for model, optimizer in ((fused_model, fused), (looped_model, looped)):
            model(x).square().mean().backward()
            optimizer.step()
            optimizer.zero_grad()
    for a, b in zip(fused_model.parameters(), looped_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert [g["weight_decay"] for g in fused.param_groups] == [0.1, 0.0]


def test_mixed_precision_takes_the_multi_tensor_kernel() -> None:
    optimizer = adamw(param_groups(_model(), 0.1), lr=1e-3, betas=(0.9, 0.999), mixed_precision=True)
    assert not optimizer.defaults["fused"] and optimizer.defaults["foreach"]


def test_bf16_mixed_training_clips_gradients(tmp_path) -> None:
    """Lightning refuses to clip the gradients of a fused optimizer under mixed precision: bf16-mixed must train."""
    args = ["task=vit", "model.dim=16", "model.depth=1", "heads=2", "task.attention_maps=0"]
    args += ["trainer.precision=bf16-mixed", "trainer.gradient_clip_val=1.0", "trainer.fast_dev_run=true"]
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    done = run_many({"bf16": ([*args, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, env)})["bf16"]
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "metrics.json").exists()


def test_integer_parameters_keep_the_default_kernel() -> None:
    weight = nn.Parameter(torch.zeros(3, dtype=torch.float64))
    frozen = nn.Parameter(torch.zeros(2, dtype=torch.int64), requires_grad=False)
    optimizer = adamw([{"params": [weight, frozen]}], lr=1e-3, betas=(0.9, 0.999))
    assert not optimizer.defaults["fused"] and not optimizer.defaults["foreach"]
