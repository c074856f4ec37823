"""A token mixer in one file: linear attention with one learned decay per head.

python -m attnkit plugins=[examples/my_mixer.py] task=lm 'model.layers=[decayed_linear,softmax]' model.depth=2
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import attnkit
from attnkit.nn.mixers import Mixer
from attnkit.nn.mixers.base import heads_first, heads_last, masked


@attnkit.register("mixer", "decayed_linear")
class DecayedLinear(Mixer):
    """Linear attention with one learned decay per head (a RetNet whose decays train)."""

    def __init__(self, dim: int, heads: int, *, chunk: int = 64, causal: bool = True, where: str = "mixer") -> None:
        super().__init__(dim, causal=causal, where=where)
        self.heads, self.chunk = heads, chunk
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.log_decay = nn.Parameter(torch.full((heads,), -0.1))
        self.out_proj = nn.Linear(dim, dim, bias=False)

    def mix(self, x: Tensor, keep: Tensor | None, state: dict | None) -> tuple[Tensor, dict]:
        """x `[B, N, D]`, keep `[B, N]` (0 = padding) or None, state or None -> (out `[B, N, D]`, new state)."""
        q, k, v = (heads_first(t, self.heads) for t in self.qkv(x).chunk(3, dim=-1))
        g = masked(self.log_decay.clamp(max=0)[:, None].expand(x.shape[0], -1, x.shape[1]), keep)
        o, S = self.gated(q, masked(k, keep), v, g, None if state is None else state["S"], self.chunk)
        return self.out_proj(heads_last(o)), {"S": S}
