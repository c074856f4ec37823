"""ALiBi: attention with linear biases (Press et al. 2022) — no position embeddings, a distance penalty per head."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from attnkit.errors import ConfigError
from attnkit.nn.pos_enc.base import PositionalEncoding
from attnkit.ranges import PositiveInt
from attnkit.registry import register


def alibi_slopes(heads: int) -> Tensor:
    """The geometric slopes of Press et al.: for n a power of two, 2^(-8/n), 2^(-16/n), …, 2^(-8); otherwise the
    slopes of the closest smaller power of two m, then every other slope of 2m, up to n heads."""
    if heads <= 0:
        raise ConfigError(f"pos_enc=alibi needs at least one head; got heads={heads}")

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    m = 2 ** int(math.floor(math.log2(heads)))
    slopes = power_of_two(m)
    if m < heads:
        slopes += power_of_two(2 * m)[0::2][: heads - m]
    return torch.tensor(slopes, dtype=torch.float32)


@register("pos_enc", "alibi")
class Alibi(PositionalEncoding):
    """Score bias −slope_h·|i − j| (−slope_h·(i − j) for causal attention, whose mask hides j > i); any length."""

    kind = "bias"

    def __init__(self, heads: PositiveInt, causal: bool = False) -> None:
        super().__init__()
        self.causal = causal
        self.register_buffer("slopes", alibi_slopes(heads), persistent=False)

    def score_bias(self, nq: int, nk: int) -> Tensor:
        """`[1, H, nq, nk]` bias; the queries are positions nk−nq … nk−1 (bottom-right, as in cached decoding)."""
        q_pos = torch.arange(nk - nq, nk, device=self.slopes.device)
        k_pos = torch.arange(nk, device=self.slopes.device)
        distance = (q_pos[:, None] - k_pos[None, :]).float()
        distance = distance.clamp(min=0) if self.causal else distance.abs()
        return -(self.slopes[:, None, None] * distance)[None]
