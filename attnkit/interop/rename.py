"""Steps both foreign layouts need on their way to attnkit's names: a fused q/k/v projection split in three, and zero
biases where the source built a layer without one."""

from __future__ import annotations

import re
from collections.abc import Collection

from torch import Tensor


def split_qkv(out: dict[str, Tensor], layer: str, kind: str, fused: Tensor) -> None:
    """A fused q/k/v projection's `weight` or `bias` (`kind`), stacked along dim 0, as attnkit's three projections of
    `layer` (`<layer>.q_proj.<kind>`, ...), written into `out`."""
    for part, chunk in zip("qkv", fused.chunk(3, dim=0), strict=True):
        out[f"{layer}.{part}_proj.{kind}"] = chunk.clone()


def zero_missing_biases(state: dict[str, Tensor], kept: Collection[str] = ()) -> None:
    """A Linear (or LayerNorm) that the source built without bias: the same function with a zero bias."""
    for name in list(state):
        if name not in kept and re.search(r"(proj|fc[12]|head|norm\d?)\.weight$", name):
            bias = name[: -len("weight")] + "bias"
            if bias not in state:
                state[bias] = state[name].new_zeros(state[name].shape[0])
