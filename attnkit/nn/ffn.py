"""Position-wise feed-forward networks, registered under kind `ffn`."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn import rates
from attnkit.ranges import PositiveFloat, PositiveInt, Rate
from attnkit.registry import register

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}


@register("ffn", "mlp")
class Mlp(nn.Module):
    """Linear → activation → dropout → Linear, hidden width `mlp_ratio` × dim."""

    def __init__(
        self, dim: PositiveInt, mlp_ratio: PositiveFloat = 4.0, activation: str = "gelu", dropout: Rate = 0.0
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"ffn mlp: unknown activation {activation!r}; choose one of {', '.join(_ACTIVATIONS)}")
        hidden = max(1, round(dim * mlp_ratio))
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.act = _ACTIVATIONS[activation]()
        self.dropout = rates.dropout("ffn.dropout", dropout)

    def forward(self, x: Tensor) -> Tensor:
        """`[..., dim]` -> `[..., dim]`."""
        return self.fc2(self.dropout(self.act(self.fc1(x))))


@register("ffn", "swiglu")
class SwiGLU(nn.Module):
    """Gated feed-forward SiLU(xW)·(xV) → W₂ (Shazeer 2020); hidden width 2/3 of `mlp_ratio` × dim."""

    def __init__(self, dim: PositiveInt, mlp_ratio: PositiveFloat = 4.0, dropout: Rate = 0.0) -> None:
        super().__init__()
        hidden = max(1, round(dim * mlp_ratio * 2 / 3))
        self.gate_up = nn.Linear(dim, 2 * hidden)
        self.down = nn.Linear(hidden, dim)
        self.dropout = rates.dropout("ffn.dropout", dropout)

    def forward(self, x: Tensor) -> Tensor:
        """`[..., dim]` -> `[..., dim]`."""
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(self.dropout(F.silu(gate) * up))
