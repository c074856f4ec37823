"""Multi-head attention layer: projections, head split/merge, grouped key/value heads, rotary hook, KV cache.

The kernel (any registered `attention`) only sees projected heads, so a new variant stays a few dozen lines. The
layer is built for one use (self, causal self or cross-attention, padded keys or not, at most `max_keys` keys, fed by
`pos_enc`) and checks once, through `attnkit.nn.capabilities`, that its kernel can serve it, then runs the kernel once
on a tiny input of that layout (`attnkit.nn.probe`), which must give the contract's shape, dtype and finite values.

Incremental decoding (`cache`): a layer built as causal self-attention whose kernel has a recurrent form
(`supports_recurrent`, and its `recurrent` option left on) and that gets no score bias keeps the kernel's fixed-size
state in the cache ("state", plus "length", the positions seen, for rotary offsets) instead of the keys and values;
every other layer keeps the keys and values ("k", "v"). The choice is made when a cache is first filled, and kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn import capabilities, rates
from attnkit.nn.attention.base import Attention
from attnkit.nn.pos_enc.base import PositionalEncoding
from attnkit.nn.probe import probe_attention
from attnkit.ranges import Rate
from attnkit.registry import build_spec, register

_NO_POSITIONS = PositionalEncoding()  # every hook a no-op


@register("mixer", "attention")
class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al. 2017) with any registered kernel: the mixer every model starts from.

    Self- or cross-attention over `[B, N, dim]` with `heads` query heads and `kv_heads` key/value heads.
    """

    paper = "Vaswani et al. 2017, Attention Is All You Need"
    supports_bidirectional = True  # the mixer contract's flags; what the kernel serves is checked when built
    supports_state = True  # a key/value cache, or the kernel's recurrent state

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        kv_heads: int | None = None,
        attention: Any = "softmax",
        context_dim: int | None = None,
        bias: bool = True,
        dropout: Rate = 0.0,
        qk_norm: Any = None,
        causal: bool = False,
        cross: bool = False,
        key_padding: bool = False,
        max_keys: int | None = None,
        pos_enc: PositionalEncoding | None = None,
        where: str = "attention",
    ) -> None:
        """`attention`: a registered kernel spec; `qk_norm`: a registered norm spec (e.g. "layernorm") applied to
        each head's queries and keys before the kernel (as in ViT-22B), None = off; `dropout`: on the output.

        The use: `causal` (the default of `forward`'s), `cross`, `key_padding` (keys may be padded), `max_keys` (the
        most keys the model gives, None = unknown), `pos_enc` (whose `rotate` hook turns self-attention queries and
        keys; held, not registered, since the model owns it), `where` (the config key of `attention`, for messages).
        """
        super().__init__()
        head_dim = capabilities.head_dim(dim, heads)
        kv_heads = heads if kv_heads is None else kv_heads
        capabilities.check_kv_heads(heads, kv_heads)
        self.dim, self.heads, self.kv_heads, self.head_dim = dim, heads, kv_heads, head_dim
        context_dim = context_dim or dim
        self.q_proj = nn.Linear(dim, dim, bias=bias)
        self.k_proj = nn.Linear(context_dim, kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(context_dim, kv_heads * self.head_dim, bias=bias)
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        self.attention: Attention = build_spec(
            "attention", attention, dim=dim, heads=heads, head_dim=self.head_dim, max_length=max_keys
        )
        capabilities.check_use(
            self.attention,
            causal=causal,
            cross=cross,
            key_padding=key_padding,
            max_keys=max_keys,
            pos_enc=pos_enc,
            where=where,
        )
        probe_attention(
            self.attention,
            heads=heads,
            kv_heads=kv_heads,
            head_dim=head_dim,
            causal=causal,
            cross=cross,
            key_padding=key_padding,
            bias=getattr(pos_enc, "kind", None) == "bias",
            max_keys=max_keys,
            options=attention,
        )
        self.causal, self.cross, self.where = causal, cross, where
        self.__dict__["pos_enc"] = _NO_POSITIONS if pos_enc is None else pos_enc  # not a submodule of every layer
        self.q_norm = None if qk_norm is None else build_spec("norm", qk_norm, dim=self.head_dim)
        self.k_norm = None if qk_norm is None else build_spec("norm", qk_norm, dim=self.head_dim)
        self.dropout = rates.dropout("model.dropout", dropout)

    @property
    def recurrent(self) -> bool:
        """Whether a self-attention cache of this layer holds the kernel's recurrent state rather than keys and
        values: a causal self-attention layer, a kernel with `supports_recurrent` and `recurrent` on, and no score
        bias encoding (a bias needs every key). A call with a bias or padded keys then falls back on the KV cache."""
        kernel = self.attention
        return (
            self.causal
            and not self.cross
            and kernel.supports_recurrent
            and bool(getattr(kernel, "recurrent", True))
            and getattr(self.pos_enc, "kind", None) != "bias"
        )

    @staticmethod
    def cached_length(cache: Mapping[str, Any] | None) -> int:
        """How many positions a self-attention `cache` of this layer holds (0 for None or an empty one)."""
        if not cache:
            return 0
        if "length" in cache:
            return int(cache["length"])
        return cache["k"].shape[2] if "k" in cache else 0

    def _use_state(
        self,
        cache: Mapping[str, Any],
        causal: bool,
        bias: Tensor | None,
        key_padding_mask: Tensor | None,
        need_weights: bool,
    ) -> bool:
        """Whether this self-attention call goes through the kernel's recurrent `step` (see the module's notes)."""
        servable = causal and bias is None and key_padding_mask is None and not need_weights
        if "state" in cache:
            if not servable:
                raise ConfigError(
                    f"{self.where}: this cache holds a recurrent state, which serves causal calls without bias, "
                    f"padded keys or weights only; start a new cache, or build the kernel with recurrent=false"
                )
            return True
        return servable and self.recurrent and "k" not in cache

    def _split(self, x: Tensor, heads: int) -> Tensor:  # [B, N, heads*D] -> [B, heads, N, D]
        return x.unflatten(-1, (heads, self.head_dim)).transpose(1, 2)

    @property
    def _fusable(self) -> bool:
        """Whether self-attention may compute q, k and v in one product: the three projections are plain
        `nn.Linear` layers without hooks (a subclass or a hook, such as an adapter's, keeps its own call)."""
        projections = (self.q_proj, self.k_proj, self.v_proj)
        return all(type(p) is nn.Linear and not (p._forward_hooks or p._forward_pre_hooks) for p in projections)

    def _stacked(self) -> tuple[Tensor, Tensor | None]:
        """The three projections' weights and biases stacked: those `held_stacks` keeps while it holds, else made
        anew (the weights may have changed since the last call)."""
        held = self.__dict__.get("_held_stack")
        if held is not None:
            return held
        projections = (self.q_proj, self.k_proj, self.v_proj)
        weight = torch.cat([p.weight for p in projections])
        bias = None if self.q_proj.bias is None else torch.cat([p.bias for p in projections])
        return weight, bias

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """q `[B, H, N, D]`, k and v `[B, Hkv, N, D]` from x `[B, N, dim]` with one matrix product over the three
        projections' weights, stacked (fewer, larger products: faster, the same function up to rounding)."""
        weight, bias = self._stacked()
        kv_width = self.kv_heads * self.head_dim
        q, k, v = F.linear(x, weight, bias).split([self.dim, kv_width, kv_width], dim=-1)
        return self._split(q, self.heads), self._split(k, self.kv_heads), self._split(v, self.kv_heads)

    def _kv(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """k and v `[B, Hkv, Nk, D]` from the context `[B, Nk, context_dim]` with one matrix product over the two
        projections' stacked weights (cross-attention: the queries come from elsewhere)."""
        weight = torch.cat([self.k_proj.weight, self.v_proj.weight])
        bias = None if self.k_proj.bias is None else torch.cat([self.k_proj.bias, self.v_proj.bias])
        k, v = F.linear(context, weight, bias).chunk(2, dim=-1)
        return self._split(k, self.kv_heads), self._split(v, self.kv_heads)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        causal: bool | None = None,
        bias: Tensor | None = None,
        cache: dict[str, Any] | None = None,
        need_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """x `[B, Nq, dim]`, context `[B, Nk, context_dim]` (None = self-attention) -> `[B, Nq, dim]`; `bias`
        broadcastable to `[B, H, Nq, Nk]`; `causal`: None = as built.

        `cache` (a dict, filled in place) makes decoding incremental: self-attention appends the new keys and
        values, or updates the kernel's recurrent state (see `recurrent`); cross-attention computes its keys and
        values from `context` once and reuses them.
        """
        cross = context is not None
        causal = self.causal if causal is None else causal
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ConfigError(f"attention input must be [B, N, dim={self.dim}]; got {tuple(x.shape)}")
        if cross and (context.dim() != 3 or context.shape[-1] != self.k_proj.in_features):
            raise ConfigError(
                f"attention context must be [B, N, context_dim={self.k_proj.in_features}]; got {tuple(context.shape)}"
            )
        if cross:
            capabilities.check_cross(self.attention, self.where)
        if need_weights:
            capabilities.check_weights(self.attention, self.where)
        fused = not cross and self._fusable
        if fused:  # self-attention: q, k and v from one matrix product
            q, k, v = self._qkv(x)
        else:
            q = self._split(self.q_proj(x), self.heads)
        if self.q_norm is not None:
            q = self.q_norm(q)
        offset = 0
        if cross and cache is not None and "k" in cache:
            k, v = cache["k"], cache["v"]
        else:
            if cross and self._fusable:  # k and v from one product over their stacked weights
                k, v = self._kv(context)
            elif not fused:
                src = context if cross else x
                k, v = self._split(self.k_proj(src), self.kv_heads), self._split(self.v_proj(src), self.kv_heads)
            if self.k_norm is not None:
                k = self.k_norm(k)
            if not cross and cache is not None:
                offset = self.cached_length(cache)
            if not cross:
                q, k = self.pos_enc.rotate(q, k, offset=offset)
            if not cross and cache is not None and self._use_state(cache, causal, bias, key_padding_mask, need_weights):
                out, cache["state"] = self.attention.step(q, k, v, cache.get("state"))
                cache["length"] = offset + x.shape[1]
                return self.dropout(self.out_proj(out.transpose(1, 2).flatten(2)))
            if cache is not None:
                if not cross and "k" in cache:
                    k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
                cache["k"], cache["v"] = k, v
        kwargs: Mapping[str, Any] = {"need_weights": True} if need_weights else {}
        result = self.attention(q, k, v, key_padding_mask=key_padding_mask, causal=causal, bias=bias, **kwargs)
        out, weights = result if need_weights else (result, None)
        out = self.dropout(self.out_proj(out.transpose(1, 2).flatten(2)))
        return (out, weights) if need_weights else out


@contextmanager
def held_stacks(model: nn.Module) -> Iterator[None]:
    """Within the block, each self-attention layer of `model` stacks its q, k and v weights once, not at every call:
    for a decoding loop, whose weights do not change between its steps (and whose steps are one token each, where
    stacking the weights would cost more than the product)."""
    layers = [
        m
        for m in model.modules()
        if isinstance(m, MultiHeadAttention) and m._fusable and m.k_proj.in_features == m.q_proj.in_features
    ]  # a layer whose context is wider or narrower than its queries attends across only: nothing to stack
    for layer in layers:
        layer.__dict__.pop("_held_stack", None)
        with torch.no_grad():
            layer.__dict__["_held_stack"] = layer._stacked()
    try:
        yield
    finally:
        for layer in layers:
            layer.__dict__.pop("_held_stack", None)
