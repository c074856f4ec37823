"""Softmax attention on torch.nn.functional.scaled_dot_product_attention (flash / memory-efficient)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from attnkit.nn.attention.base import Attention, allowed_mask, check_dropout
from attnkit.nn.attention.eager import eager_attention
from attnkit.ranges import NonNegativeInt, PositiveFloat, Rate
from attnkit.registry import register

# The most keys for which softmax takes its explicit path on the CPU, per head dimension, in training (gradients
# recorded: forward and backward) and in inference: the longest measured length up to which the explicit path was at
# least as fast as SDPA on q, k and v as the model hands them over (strided views of one projection's output).
# `python benchmarks/softmax_cpu_paths.py`, 2 cores, B·H = 512; the table in docs/measured/speed.md.
CPU_EXPLICIT_MAX_KEYS = {
    "train": {8: 97, 16: 65, 32: 65, 64: 65},
    "infer": {8: 129, 16: 50, 32: 50, 64: 17},
}


def explicit_max_keys(head_dim: int, training: bool) -> int:
    """`CPU_EXPLICIT_MAX_KEYS` at `head_dim`: the nearest measured head dimension at or below it (the smallest
    measured one below that)."""
    table = CPU_EXPLICIT_MAX_KEYS["train" if training else "infer"]
    measured = [d for d in sorted(table) if d <= head_dim] or [min(table)]
    return table[measured[-1]]


@register("attention", "softmax")
class SoftmaxAttention(Attention):
    """Exact softmax(QKᵀ/√d)V on PyTorch's fused scaled_dot_product_attention.

    On the CPU, short sequences take the explicit matmul path instead, where it measured at least as fast as SDPA:
    `CPU_EXPLICIT_MAX_KEYS` gives the most keys for it per head dimension, in training and in inference (measured by
    `benchmarks/softmax_cpu_paths.py`). `cpu_eager_max_len` (an int) replaces the table with one length for every
    shape (0: always SDPA). Both paths compute the same function.
    """

    supports_bias = True
    supports_weights = True  # computed eagerly, only when asked for

    def __init__(
        self, dropout: Rate = 0.0, scale: PositiveFloat | None = None, cpu_eager_max_len: NonNegativeInt | None = None
    ) -> None:
        super().__init__()
        self.dropout = check_dropout("softmax", dropout)
        self.scale = scale
        self.cpu_eager_max_len = cpu_eager_max_len

    def _explicit_max_keys(self, q: Tensor, k: Tensor, v: Tensor) -> int:
        if self.cpu_eager_max_len is not None:
            return self.cpu_eager_max_len
        training = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
        return explicit_max_keys(q.shape[-1], training)

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
        eager = q.device.type == "cpu" and nk <= self._explicit_max_keys(q, k, v)
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
