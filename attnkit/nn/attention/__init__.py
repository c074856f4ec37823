"""Attention kernels: each registers itself under kind `attention`."""

from attnkit.nn.attention.base import Attention, allowed_mask, repeat_kv
from attnkit.nn.attention.eager import EagerAttention, eager_attention
from attnkit.nn.attention.linear import LinearAttention
from attnkit.nn.attention.linformer import LinformerAttention
from attnkit.nn.attention.local import LocalAttention
from attnkit.nn.attention.nystrom import NystromAttention
from attnkit.nn.attention.performer import PerformerAttention
from attnkit.nn.attention.softmax import SoftmaxAttention

__all__ = [
    "Attention",
    "EagerAttention",
    "LinearAttention",
    "LinformerAttention",
    "LocalAttention",
    "NystromAttention",
    "PerformerAttention",
    "SoftmaxAttention",
    "allowed_mask",
    "eager_attention",
    "repeat_kv",
]
