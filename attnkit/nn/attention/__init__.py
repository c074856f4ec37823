"""Attention kernels: each registers itself under kind `attention`."""

from attnkit.nn.attention.base import Attention, allowed_mask, repeat_kv
from attnkit.nn.attention.eager import EagerAttention, eager_attention
from attnkit.nn.attention.softmax import SoftmaxAttention

__all__ = ["Attention", "EagerAttention", "SoftmaxAttention", "allowed_mask", "eager_attention", "repeat_kv"]
