"""T5 relative position bias (Raffel et al. 2020): a learned scalar per head and relative-distance bucket."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn.pos_enc.base import PositionalEncoding
from attnkit.ranges import PositiveInt
from attnkit.registry import register


def relative_buckets(relative: Tensor, bidirectional: bool, num_buckets: int, max_distance: int) -> Tensor:
    """Bucket of each offset key − query: half of the buckets hold exact small distances, the other half
    log-spaced distances up to `max_distance` (further ones share the last bucket). Bidirectional attention splits
    the buckets between keys before and after the query; causal attention only sees keys at or before it."""
    buckets = torch.zeros_like(relative)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative > 0).long() * num_buckets
        distance = relative.abs()
    else:
        distance = (-relative).clamp(min=0)
    exact = num_buckets // 2
    far = (
        exact
        + (
            torch.log(distance.float().clamp(min=1) / exact) / math.log(max_distance / exact) * (num_buckets - exact)
        ).long()
    )
    far = far.clamp(max=num_buckets - 1)
    return buckets + torch.where(distance < exact, distance, far)


@register("pos_enc", "t5")
class T5Bias(PositionalEncoding):
    """Learned relative position bias over `num_buckets` buckets up to `max_distance`; any length."""

    kind = "bias"

    def __init__(
        self, heads: PositiveInt, num_buckets: PositiveInt = 32, max_distance: PositiveInt = 128, causal: bool = False
    ) -> None:
        super().__init__()
        smallest = 2 if causal else 4
        if num_buckets < smallest or max_distance <= num_buckets // (2 if causal else 4):
            raise ConfigError(
                f"pos_enc=t5: num_buckets={num_buckets} must be >= {smallest} and max_distance={max_distance} "
                f"larger than the exact range ({num_buckets // (2 if causal else 4)}); e.g. 32 and 128"
            )
        self.causal, self.num_buckets, self.max_distance = causal, num_buckets, max_distance
        self.bias = nn.Embedding(num_buckets, heads)
        nn.init.zeros_(self.bias.weight)

    def score_bias(self, nq: int, nk: int) -> Tensor:
        """`[1, H, nq, nk]` bias; the queries are positions nk−nq … nk−1 (bottom-right, as in cached decoding)."""
        device = self.bias.weight.device
        relative = torch.arange(nk, device=device)[None, :] - torch.arange(nk - nq, nk, device=device)[:, None]
        buckets = relative_buckets(relative, not self.causal, self.num_buckets, self.max_distance)
        return self.bias(buckets).permute(2, 0, 1)[None]
