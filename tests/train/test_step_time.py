"""attnkit/train/step_time.py: the timing of a few training steps that a size rule plans with, which leaves the model
and the random numbers of the run as they were."""

from __future__ import annotations

import torch
from torch import nn

from attnkit.train.step_time import seconds_per_step


def batches(i: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(i)  # not the global generator: the test watches it
    return torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)


def test_the_timing_leaves_the_weights_and_the_random_state_as_they_were() -> None:
    model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 3))  # dropout draws random numbers
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(0)
    state = torch.get_rng_state()
    seconds = seconds_per_step(model, batches)
    assert 0 < seconds < 1
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters()) and model.training


def test_warmup_then_a_bounded_number_of_timed_steps() -> None:
    seen: list[int] = []

    def counted(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(i)
        return batches(i)

    seconds_per_step(nn.Linear(4, 3), counted, warmup=2, steps=3)
    assert seen == [0, 1, 2, 3, 4]
    seen.clear()
    seconds_per_step(nn.Linear(4, 3), counted, warmup=1, steps=50, max_seconds=0.0)  # out of time: one timed step
    assert seen == [0, 1]
