"""Token mixers `[B, N, D] -> [B, N, D]`, kind `mixer`: multi-head attention with any kernel, and the gated
linear-time mixers, each registered from its own file on the shared scans of `attnkit.nn.mixers.scan`."""

from attnkit.nn.mixers import deltanet, gated_deltanet, gla, hgrn2, mamba2, retention  # noqa: F401  (registration)
from attnkit.nn.mixers.base import Mixer, ShortConv

__all__ = ["Mixer", "ShortConv"]
