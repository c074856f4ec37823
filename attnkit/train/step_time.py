"""How long one training step of a model takes on this machine: a short timing that a size rule plans epochs with.

A few real steps (fetch a batch, forward, loss, backward, AdamW on its fused kernel, as training runs them) on a deep
copy of the model, at the process's thread count, after a warm-up; torch's random state is saved and restored, so
the model, its initial weights and the run's random numbers are as if nothing had run. No Lightning here: what
Lightning adds per step (hooks, logging, the moving average, augmentation, clipping) and what validation and test
cost is the caller's factor.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.train.optim import adamw, param_groups

Batch = Sequence[Any]  # (*inputs, labels), as a training DataLoader yields it


def cross_entropy(model: nn.Module, batch: Batch) -> Tensor:
    """The classifier's loss: logits `[B, classes]` of `model(*inputs)` against the labels `[B]`."""
    *inputs, labels = batch
    return F.cross_entropy(model(*inputs), labels)


def seconds_per_step(
    model: nn.Module,
    batch: Callable[[int], Batch],
    *,
    loss: Callable[[nn.Module, Batch], Tensor] = cross_entropy,
    device: str | torch.device = "cpu",
    warmup: int = 2,
    steps: int = 5,
    max_seconds: float = 1.0,
) -> float:
    """The median time of a training step, in seconds: `warmup` steps untimed, then up to `steps` timed ones, fewer
    once `max_seconds` have passed (at least one). `batch(i)` gives the i-th batch (the loading is timed with the
    step). Neither `model` nor torch's random state changes."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    forked = [device.index if device.index is not None else torch.cuda.current_device()] if cuda else []
    with torch.random.fork_rng(devices=forked):
        net = copy.deepcopy(model).to(device).train()
        optimizer = adamw(param_groups(net, 0.0), lr=1e-6, betas=(0.9, 0.999))
        times: list[float] = []
        started = time.perf_counter()
        for i in range(warmup + steps):
            if i > warmup and time.perf_counter() - started > max_seconds:
                break
            tick = time.perf_counter()
            data = [x.to(device, non_blocking=True) if isinstance(x, Tensor) else x for x in batch(i)]
            optimizer.zero_grad(set_to_none=True)
            loss(net, data).backward()
            optimizer.step()
            if cuda:
                torch.cuda.synchronize(device)
            if i >= warmup:
                times.append(time.perf_counter() - tick)
    return statistics.median(times)
