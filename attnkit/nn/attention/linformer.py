"""Linformer attention: keys and values projected along the sequence (Wang et al. 2020, arXiv:2006.04768)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn.attention.base import Attention, check_dropout, repeat_kv
from attnkit.ranges import PositiveInt, Rate
from attnkit.registry import register


@register("attention", "linformer")
class LinformerAttention(Attention):
    """softmax(Q(EK)ᵀ/√d)(FV) with learned E, F `[proj_dim, max_length]` shared across heads: O(N·k) not O(N²).

    q `[B, H, Nq, D]`, k, v `[B, Hkv, Nk, D]` -> `[B, H, Nq, D]`. Nk <= max_length keys use the first Nk columns of
    E and F. Padded keys and values are zeroed before projecting. No causal mask (the projection mixes positions).
    `max_length` null: the longest key sequence the model can give this layer (its `max_keys`), else 512.
    """

    supports_causal = False
    supports_cross = True
    supports_key_padding = True
    supports_bias = False
    supports_weights = False
    supports_cache = True  # each query's output depends only on itself and the keys

    def __init__(self, proj_dim: PositiveInt = 32, max_length: PositiveInt | None = None, dropout: Rate = 0.0) -> None:
        super().__init__()
        max_length = 512 if max_length is None else max_length
        self.dropout = check_dropout("linformer", dropout)
        if proj_dim <= 0:
            raise ConfigError(f"linformer: proj_dim must be positive; got {proj_dim} (attention.proj_dim)")
        if max_length <= 0:
            raise ConfigError(f"linformer: max_length must be positive; got {max_length} (attention.max_length)")
        self.proj_dim = proj_dim
        self.max_length = max_length  # read by attnkit.nn.capabilities, in each call and when a model is built
        bound = 1.0 / math.sqrt(proj_dim)
        self.proj_k = nn.Parameter(torch.empty(proj_dim, max_length).uniform_(-bound, bound))  # E
        self.proj_v = nn.Parameter(torch.empty(proj_dim, max_length).uniform_(-bound, bound))  # F

    def attend(
        self, q: Tensor, k: Tensor, v: Tensor, *, key_padding_mask: Tensor | None, causal: bool, bias: Tensor | None
    ) -> Tensor:
        nk, dead = k.shape[2], None
        if key_padding_mask is not None:
            keep = ~key_padding_mask.bool()
            dead_b = ~keep.any(-1)
            keep = keep | dead_b[:, None]  # rows with no key: computed on all keys, zeroed below
            if dead_b.any():
                dead = dead_b[:, None, None, None]
            k, v = k * keep[:, None, :, None].to(k.dtype), v * keep[:, None, :, None].to(v.dtype)
        e, f = self.proj_k[:, :nk].to(k.dtype), self.proj_v[:, :nk].to(v.dtype)
        k, v = repeat_kv(e @ k, q.shape[1]), repeat_kv(f @ v, q.shape[1])  # [B, H, proj_dim, D]
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)
        if self.training and self.dropout > 0.0:
            weights = torch.nn.functional.dropout(weights, p=self.dropout)
        out = weights @ v
        return out if dead is None else out.masked_fill(dead, 0.0)
