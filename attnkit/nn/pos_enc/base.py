"""Positional encodings come in three kinds, each with its own hook in the model.

- `absolute`: added to token or patch embeddings, `forward(x [B, N, dim], offset=0) -> [B, N, dim]`;
- `rotary`: applied to q and k inside the multi-head layer, `forward(q, k, offset=0) -> (q, k)`;
- `bias`: added to attention scores, `forward(nq, nk) -> [1, H, Nq, Nk]`, the queries being the last Nq of the
  Nk positions (bottom-right, as in cached decoding).

Image encodings (sincos2d, rope2d) take the model's patch `grid` and `prefix_tokens` (a class token) as context.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from torch import nn

from attnkit import registry
from attnkit.errors import ConfigError

Kind = Literal["absolute", "rotary", "bias"]


class PositionalEncoding(nn.Module):
    """Base class: `kind` says where the model applies the encoding; `max_len` is None when unbounded."""

    kind: ClassVar[Kind] = "absolute"
    max_len: int | None = None


def kind_of(pos_enc: nn.Module | None) -> str | None:
    """Where a model applies a positional encoding (None: no encoding at all)."""
    return None if pos_enc is None else getattr(pos_enc, "kind", "absolute")


def image_grid(grid: Any, name: str) -> tuple[int, int]:
    """The `(rows, cols)` patch grid an image encoding was given, or a one-line refusal outside image models."""
    if grid is None:
        raise ConfigError(f"pos_enc={name} is for image tasks (it needs the patch grid); use rope or sinusoidal here")
    rows, cols = (int(g) for g in grid)
    if rows <= 0 or cols <= 0:
        raise ConfigError(f"pos_enc={name}: the patch grid {rows}x{cols} must be positive")
    return rows, cols


def check_pairing(pos_enc: nn.Module | None, attention: nn.Module, where: str = "attention") -> None:
    """Refuse, when the model is built, an encoding the attention cannot serve (a score bias needs a kernel
    that takes one)."""
    if kind_of(pos_enc) == "bias" and not getattr(attention, "supports_bias", False):
        raise ConfigError(
            f"pos_enc={_name(pos_enc)} needs score bias; {where}={_name(attention)} has none "
            f"(choose softmax or eager, or a rotary/absolute encoding)"
        )


def _name(module: nn.Module) -> str:
    for kind in ("pos_enc", "attention"):
        for entry in registry.entries(kind):
            if type(module) is entry.obj:
                return entry.name
    return type(module).__name__
