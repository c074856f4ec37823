"""An exponential moving average of a model's weights, evaluated in place of the trained weights.

Two things set it apart from `torch.optim.swa_utils.AveragedModel`: a warm-up, as timm's model EMA has, so that a
short run does not evaluate weights that still remember their random initialisation; and buffers are copied rather
than averaged, so that random features (performer's projection, redrawn while training) and caches stay valid.
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn


class EMA(nn.Module):
    """`module` holds the average. After t updates the decay is min(`decay`, (1 + t) / (10 + t)) with `warmup`, else
    `decay`: the average starts by following the weights closely and slows down as training goes on."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True) -> None:
        super().__init__()
        self.module = copy.deepcopy(model).requires_grad_(False)
        self.decay, self.warmup = float(decay), warmup
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def current_decay(self) -> float:
        """The decay the next update will use."""
        t = int(self.updates)
        return min(self.decay, (1 + t) / (10 + t)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """average <- decay · average + (1 - decay) · weights; buffers copied."""
        weight = 1.0 - self.current_decay()
        mine, theirs = list(self.module.parameters()), [p.detach() for p in model.parameters()]
        if len(mine) != len(theirs):
            raise ValueError(f"the average has {len(mine)} parameters, the model {len(theirs)}")
        if mine:
            torch._foreach_lerp_(mine, theirs, weight)  # one call for all parameters, as timm's EMA does
        for mine_buffer, their_buffer in zip(self.module.buffers(), model.buffers(), strict=True):
            mine_buffer.copy_(their_buffer)
        self.updates += 1

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def needs_warmup(decay: float, steps: int) -> bool:
    """Whether a run of `steps` updates needs the warm-up: without it, the initial weights would still make up more
    than 1% of the final average (decay ** steps > 0.01; decay 0.998: runs under about 2,300 steps). Longer runs
    average as without warm-up, so their results do not depend on it."""
    return decay**steps > 0.01


def whole_weights(root: nn.Module | None) -> contextlib.AbstractContextManager:
    """A context in which the parameters under `root` are whole, for the average to be updated from the model's:
    under FSDP (`trainer=fsdp`: each process keeps a shard of every parameter, and the shards of the model and of its
    average do not line up), the gathered full parameters, written back to the shards on exit (every process must
    enter it); otherwise nothing."""
    if root is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        from torch.distributed.fsdp import FullyShardedDataParallel  # lazy: only under torch.distributed

        if isinstance(root, FullyShardedDataParallel):
            return FullyShardedDataParallel.summon_full_params(root, writeback=True)
    return contextlib.nullcontext()
