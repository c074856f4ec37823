"""An installable attnkit plugin: importing it registers `norm=scalenorm`.

attnkit imports it at start-up through the `attnkit.plugins` entry point declared in pyproject.toml, so after
`pip install examples/plugin_package` the component is a config choice in every command:

    python -m attnkit norm=scalenorm norm.eps=1e-6
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

import attnkit

__all__ = ["ScaleNorm"]


@attnkit.register("norm", "scalenorm")
class ScaleNorm(nn.Module):
    """ScaleNorm: g · x / ‖x‖ with one learned scalar g, initialised to √dim (Nguyen & Salazar 2019).

    x `[..., dim]` -> `[..., dim]`. One parameter instead of LayerNorm's 2·dim; `eps` floors the norm so that
    a zero vector stays finite.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        if dim <= 0:
            raise attnkit.ConfigError(f"norm scalenorm: dim={dim} must be positive")
        self.dim = dim
        self.eps = eps
        self.scale = nn.Parameter(torch.tensor(math.sqrt(dim)))

    def forward(self, x: Tensor) -> Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(self.eps)
        return x * (self.scale / norm)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps}"
