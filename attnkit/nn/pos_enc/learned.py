"""A learned table of absolute positions, as in BERT and ViT."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn.pos_enc.base import PositionalEncoding
from attnkit.registry import register


@register("pos_enc", "learned")
class Learned(PositionalEncoding):
    """Trainable `[max_len, dim]` position embeddings (truncated-normal init, std 0.02).

    `max_len=None` takes the length the model asks for (a ViT's token count).
    """

    def __init__(self, dim: int, max_len: int | None = None, init_std: float = 0.02) -> None:
        super().__init__()
        if max_len is None or max_len <= 0:
            raise ConfigError(f"pos_enc learned: max_len={max_len} must be a positive length; set pos_enc.max_len=...")
        self.max_len = max_len
        self.weight = nn.Parameter(torch.empty(max_len, dim))
        nn.init.trunc_normal_(self.weight, std=init_std)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x `[B, N, dim]` -> x + W[offset : offset + N]."""
        end = offset + x.shape[1]
        if end > self.max_len:
            raise ConfigError(
                f"sequence of {end} positions exceeds the learned table's "
                f"max_len={self.max_len}; raise pos_enc.max_len or use pos_enc=sinusoidal"
            )
        return x + self.weight[offset:end].to(x.dtype)
