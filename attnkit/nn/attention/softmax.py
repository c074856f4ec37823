"""Softmax attention on torch.nn.functional.scaled_dot_product_attention (flash / memory-efficient)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from attnkit.nn.attention.base import Attention, allowed_mask, check_dropout
from attnkit.nn.attention.eager import eager_attention
from attnkit.ranges import NonNegativeInt, PositiveFloat, Rate
from attnkit.registry import register


@register("attention", "softmax")
class SoftmaxAttention(Attention):
    """Exact softmax(QKᵀ/√d)V on PyTorch's fused scaled_dot_product_attention.

    On CPU, up to `cpu_eager_max_len` keys take the explicit matmul path instead: inside training runs it measured
    faster there than SDPA's CPU kernel (digits ViT runs, 2 cores: 17 tokens 26-36 against 38-47 ms a step), although
    a single process alternating both paths sees them within 7% (`benchmarks/softmax_cpu_paths.py`). At 257 tokens
    SDPA wins (1.6×). Set it to 0 to always use SDPA. Both paths compute the same function.
    """

    supports_bias = True
    supports_weights = True  # computed eagerly, only when asked for

    def __init__(
        self, dropout: Rate = 0.0, scale: PositiveFloat | None = None, cpu_eager_max_len: NonNegativeInt = 96
    ) -> None:
        super().__init__()
        self.dropout = check_dropout("softmax", dropout)
        self.scale = scale
        self.cpu_eager_max_len = cpu_eager_max_len

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
        p = self.dropout if self.training else 0.0
        nq, nk = q.shape[2], k.shape[2]
        causal = causal and nq > 1  # one query is the last position (bottom-right): it sees every key
        eager = q.device.type == "cpu" and k.shape[2] <= self.cpu_eager_max_len
        if need_weights or eager:
            out, weights = eager_attention(
                q,
                k,
                v,
                key_padding_mask=key_padding_mask,
                causal=causal,
                bias=bias,
                dropout=p,
                scale=self.scale,
            )
            return (out, weights) if need_weights else out
        gqa = q.shape[1] != k.shape[1]
        if key_padding_mask is None and bias is None and (not causal or nq == nk):
            # SDPA's is_causal aligns top-left, which equals bottom-right only when Nq == Nk
            return F.scaled_dot_product_attention(
                q, k, v, dropout_p=p, is_causal=causal, scale=self.scale, enable_gqa=gqa
            )
        allowed, dead = allowed_mask(key_padding_mask, causal, nq, nk, q.device)
        mask = allowed
        if bias is not None:
            mask = bias.to(q.dtype)
            if allowed is not None:
                mask = mask.masked_fill(~allowed, float("-inf"))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, scale=self.scale, enable_gqa=gqa)
        return out if dead is None else out.masked_fill(dead, 0.0)
