"""Pre-norm transformer blocks: encoder (self-attention + FFN) and decoder (causal self, cross, FFN).

`where` is the config prefix of a block's options (`model.encoder`; "" = top level): its attention's messages name
`{where}.attention` and `{where}.cross_attention`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from attnkit.nn import capabilities, rates
from attnkit.nn.multihead import MultiHeadAttention
from attnkit.nn.pos_enc.base import PositionalEncoding
from attnkit.nn.probe import probe_mixer
from attnkit.nn.rates import check_rate
from attnkit.registry import build_spec


def _key(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def build_mixer(
    mixer: Any, dim: int, heads: int, *, causal: bool, key_padding: bool, where: str, **attention: Any
) -> nn.Module:
    """A block's token mixer from its spec (None: multi-head attention, the registered mixer `attention`), given
    the block's width, heads and use; `attention` (the kernel, kv_heads, dropout, qk_norm, max_keys, pos_enc) goes
    to the mixers that take it. Refused in one line where the mixer cannot serve the use."""
    built = build_spec(
        "mixer",
        "attention" if mixer is None else mixer,
        dim=dim,
        heads=heads,
        causal=causal,
        key_padding=key_padding,
        where=where,
        **attention,
    )
    capabilities.check_mixer(built, causal=causal, key_padding=key_padding, where=where)
    if not isinstance(built, MultiHeadAttention):  # which probes its kernel itself
        probe_mixer(built, causal=causal, key_padding=key_padding, options=mixer)
    return built


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample with probability `p` while training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p >= 1.0:  # the branch is always dropped (dividing by 1 - p would give NaN)
            return torch.zeros_like(x)
        keep = x.new_empty(x.shape[0], *([1] * (x.dim() - 1))).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class EncoderBlock(nn.Module):
    """x + attn(norm(x)), then x + ffn(norm(x)); `causal` makes it a decoder-only (language model) block."""

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        attention: Any = "softmax",
        mixer: Any = None,
        kv_heads: int | None = None,
        ffn: Any = "mlp",
        norm: Any = "layernorm",
        dropout: float = 0.0,
        drop_path: float = 0.0,
        qk_norm: Any = None,
        causal: bool = False,
        key_padding: bool = False,
        max_keys: int | None = None,
        pos_enc: PositionalEncoding | None = None,
        where: str = "",
    ) -> None:
        """`mixer`: a token mixer spec (None: multi-head attention with the kernel `attention`); the use of the
        self-attention (`causal`, `key_padding`, `max_keys`, `pos_enc`): see MultiHeadAttention."""
        super().__init__()
        self.norm1 = build_spec("norm", norm, dim=dim)
        self.attn = build_mixer(
            mixer,
            dim,
            heads,
            causal=causal,
            key_padding=key_padding,
            where=_key(where, "attention" if mixer is None else "mixer"),
            kv_heads=kv_heads,
            attention=attention,
            dropout=dropout,
            qk_norm=qk_norm,
            max_keys=max_keys,
            pos_enc=pos_enc,
        )
        self.norm2 = build_spec("norm", norm, dim=dim)
        self.ffn = build_spec("ffn", ffn, dim=dim)
        self.drop_path = DropPath(drop_path) if check_rate("model.drop_path", drop_path) > 0 else nn.Identity()
        self.dropout = rates.dropout("model.dropout", dropout)

    def forward(
        self,
        x: Tensor,
        *,
        key_padding_mask: Tensor | None = None,
        bias: Tensor | None = None,
        cache: dict[str, Any] | None = None,
    ) -> Tensor:
        """`[B, N, dim]` -> `[B, N, dim]`; `bias` (the encoding's score bias) broadcastable to `[B, H, N, Nk]`, Nk
        counting the positions in `cache` (a causal block's self-attention cache, filled in place: decoding)."""
        attn = self.attn(self.norm1(x), key_padding_mask=key_padding_mask, bias=bias, cache=cache)
        x = x + self.drop_path(attn)
        return x + self.drop_path(self.dropout(self.ffn(self.norm2(x))))


class DecoderBlock(nn.Module):
    """Causal self-attention, cross-attention over the encoder output, FFN; each pre-norm with a residual."""

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        self_attention: Any = "softmax",
        cross_attention: Any = "softmax",
        mixer: Any = None,
        kv_heads: int | None = None,
        ffn: Any = "mlp",
        norm: Any = "layernorm",
        dropout: float = 0.0,
        qk_norm: Any = None,
        max_keys: int | None = None,
        pos_enc: PositionalEncoding | None = None,
        where: str = "",
    ) -> None:
        """Self-attention is causal and fed by `pos_enc` (or `mixer`, a causal token mixer, takes its place);
        cross-attention takes padded memory; both get at most `max_keys` keys (None = unknown)."""
        super().__init__()
        common = {"kv_heads": kv_heads, "dropout": dropout, "qk_norm": qk_norm, "max_keys": max_keys}
        self.norm1 = build_spec("norm", norm, dim=dim)
        self.self_attn = build_mixer(
            mixer,
            dim,
            heads,
            causal=True,
            key_padding=False,
            where=_key(where, "attention" if mixer is None else "mixer"),
            attention=self_attention,
            pos_enc=pos_enc,
            **common,
        )
        self.norm2 = build_spec("norm", norm, dim=dim)
        self.cross_attn = MultiHeadAttention(
            dim,
            heads,
            attention=cross_attention,
            cross=True,
            key_padding=True,
            where=_key(where, "cross_attention"),
            **common,
        )
        self.norm3 = build_spec("norm", norm, dim=dim)
        self.ffn = build_spec("ffn", ffn, dim=dim)
        self.dropout = rates.dropout("model.dropout", dropout)

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        *,
        memory_padding_mask: Tensor | None = None,
        bias: Tensor | None = None,
        cache: dict[str, dict[str, Tensor]] | None = None,
    ) -> Tensor:
        """x `[B, Nt, dim]`, memory `[B, Ns, dim]` -> `[B, Nt, dim]`; `bias` (the encoding's score bias of the
        self-attention) broadcastable to `[B, H, Nt, Nk]`, Nk counting the cached positions; `cache` holds 'self',
        'cross' dicts."""
        self_cache = None if cache is None else cache.setdefault("self", {})
        cross_cache = None if cache is None else cache.setdefault("cross", {})
        x = x + self.self_attn(self.norm1(x), bias=bias, cache=self_cache)
        x = x + self.cross_attn(self.norm2(x), memory, key_padding_mask=memory_padding_mask, cache=cross_cache)
        return x + self.dropout(self.ffn(self.norm3(x)))
