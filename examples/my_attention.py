"""A one-file attnkit plugin: cosine-similarity attention with a temperature.

    python -m attnkit plugins=[examples/my_attention.py] attention=my_attention attention.temperature=5

Scores are cosines between queries and keys, scaled by a temperature τ instead of 1/√d:
softmax(τ · q̂ k̂ᵀ + bias) V with q̂ = q/‖q‖, k̂ = k/‖k‖ (Henry et al. 2020, "Query-Key Normalization for
Transformers"; Liu et al. 2022, Swin Transformer V2). Bounded scores cannot blow up the softmax, whatever the
width or the learning rate. With `learnable=true` (default) τ is trained, stored as log τ so that it stays
positive; `learnable=false` keeps it fixed.

Importing this file registers it: `attention=my_attention` becomes a config choice, with `temperature` and
`learnable` as its options (read from the constructor signature), in `--help` and `mode=list` alike.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import attnkit
from attnkit.errors import ConfigError
from attnkit.nn.attention.base import Attention, allowed_mask, repeat_kv


@attnkit.register("attention", "my_attention")
class CosineAttention(Attention):
    """Cosine-similarity attention softmax(τ·cos(q, k))V with a learnable or fixed temperature τ.

    Shapes (the attnkit kernel contract): q `[B, H, Nq, D]`, k and v `[B, Hkv, Nk, D]` (Hkv divides H),
    key_padding_mask `[B, Nk]` bool (True = ignore), bias broadcastable to `[B, H, Nq, Nk]`, causal aligned
    bottom-right when Nq < Nk. Returns `[B, H, Nq, D]`, or also the weights `[B, H, Nq, Nk]` with
    need_weights=True. A query with no key to attend to (all padded / masked) outputs zeros.
    """

    supports_bias = True
    supports_weights = True

    def __init__(
        self, temperature: float = 10.0, learnable: bool = True, dropout: float = 0.0, eps: float = 1e-6
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise ConfigError(f"attention.temperature={temperature} must be positive (try 10)")
        log_t = torch.tensor(math.log(float(temperature)))
        if learnable:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)
        self.dropout = dropout
        self.eps = eps

    @property
    def temperature(self) -> float:
        return float(self.log_temperature.detach().exp())

    def attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        *,
        key_padding_mask: Tensor | None,
        causal: bool,
        bias: Tensor | None,
        need_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """The kernel, on inputs `Attention.forward` has checked against the flags above (see the class docstring)."""
        heads, nq, nk = q.shape[1], q.shape[2], k.shape[2]
        k, v = repeat_kv(k, heads), repeat_kv(v, heads)
        q_hat = F.normalize(q, dim=-1, eps=self.eps)
        k_hat = F.normalize(k, dim=-1, eps=self.eps)
        scores = (q_hat @ k_hat.transpose(-2, -1)) * self.log_temperature.exp().to(q.dtype)
        if bias is not None:
            scores = scores + bias
        allowed, dead = allowed_mask(key_padding_mask, causal, nq, nk, q.device)
        if allowed is not None:
            scores = scores.masked_fill(~allowed, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)
        if dead is not None:  # rows with no allowed key: zero output, zero gradient
            weights = weights.masked_fill(dead, 0.0)
        if self.training and self.dropout > 0.0:
            weights = F.dropout(weights, p=self.dropout)
        out = weights @ v
        return (out, weights) if need_weights else out

    def extra_repr(self) -> str:
        learnable = isinstance(self.log_temperature, nn.Parameter)
        return f"temperature={self.temperature:.3g}, learnable={learnable}"
