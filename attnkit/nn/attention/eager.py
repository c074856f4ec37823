"""Eager attention: softmax(QKᵀ/√d + bias)V written out, so that it can return the weights."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from attnkit.nn.attention.base import Attention, allowed_mask, check_dropout, repeat_kv
from attnkit.ranges import PositiveFloat, Rate
from attnkit.registry import register


def eager_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    key_padding_mask: Tensor | None = None,
    causal: bool = False,
    bias: Tensor | None = None,
    dropout: float = 0.0,
    scale: float | None = None,
) -> tuple[Tensor, Tensor]:
    """softmax(QKᵀ·scale + bias)V; returns (out `[B, H, Nq, D]`, weights `[B, H, Nq, Nk]`)."""
    heads, nq, nk = q.shape[1], q.shape[2], k.shape[2]
    k, v = repeat_kv(k, heads), repeat_kv(v, heads)
    scores = (q @ k.transpose(-2, -1)) * (scale if scale is not None else 1.0 / math.sqrt(q.shape[-1]))
    if bias is not None:
        scores = scores + bias
    allowed, dead = allowed_mask(key_padding_mask, causal, nq, nk, q.device)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    if dead is not None:
        weights = weights.masked_fill(dead, 0.0)
    if dropout > 0.0:
        weights = torch.nn.functional.dropout(weights, p=dropout)
    return weights @ v, weights


@register("attention", "eager")
class EagerAttention(Attention):
    """Exact softmax attention computed explicitly; can return the attention weights."""

    supports_bias = True
    supports_weights = True

    def __init__(self, dropout: Rate = 0.0, scale: PositiveFloat | None = None) -> None:
        super().__init__()
        self.dropout = check_dropout("eager", dropout)
        self.scale = scale

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
        out, weights = eager_attention(
            q,
            k,
            v,
            key_padding_mask=key_padding_mask,
            causal=causal,
            bias=bias,
            dropout=self.dropout if self.training else 0.0,
            scale=self.scale,
        )
        return (out, weights) if need_weights else out
