"""Positional encodings come in three kinds, each with its own hook in the model.

- `absolute`: added to token or patch embeddings, `forward(x [B, N, dim], offset=0) -> [B, N, dim]`;
- `rotary`: applied to q and k inside the multi-head layer, `forward(q, k, offset=0) -> (q, k)`;
- `bias`: added to attention scores, `forward(nq, nk, ...) -> [1|B, H, Nq, Nk]`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from torch import nn

Kind = Literal["absolute", "rotary", "bias"]


class PositionalEncoding(nn.Module):
    """Base class: `kind` says where the model applies the encoding; `max_len` is None when unbounded."""

    kind: ClassVar[Kind] = "absolute"
    max_len: int | None = None
