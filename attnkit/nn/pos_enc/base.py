"""A positional encoding acts through three hooks, which every model calls; each encoding implements its own.

- `add_to_tokens(x [B, N, dim], offset=0, grid=None) -> [B, N, dim]`: absolute positions added to the embeddings;
- `rotate(q, k, offset=0) -> (q, k)`: rotary positions, applied to self-attention queries and keys;
- `score_bias(nq, nk) -> [1, H, Nq, Nk] | None`: added to the attention scores, the queries being the last Nq of
  the Nk positions (bottom-right, as in cached decoding).

The defaults do nothing. `kind` says which hook an encoding implements, for documentation and for the capability
check that a `bias` encoding gets a kernel with score bias. Image encodings (sincos2d, rope2d) take the model's
patch `grid` and `prefix_tokens` (a class token) as context.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from torch import Tensor, nn

from attnkit.errors import ConfigError

Kind = Literal["absolute", "rotary", "bias"]


class PositionalEncoding(nn.Module):
    """Base class: the three hooks, each a no-op; `max_len` is None when unbounded."""

    kind: ClassVar[Kind] = "absolute"
    max_len: int | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse an encoding that implements `forward` but no hook: the models would never apply it."""
        super().__init_subclass__(**kwargs)
        hooks = ("add_to_tokens", "rotate", "score_bias")
        if "forward" in vars(cls) and all(getattr(cls, h) is getattr(PositionalEncoding, h) for h in hooks):
            raise TypeError(
                f"positional encoding {cls.__name__} defines forward but no hook; models call add_to_tokens, "
                f"rotate or score_bias: rename forward to the hook of its kind"
            )

    def add_to_tokens(self, x: Tensor, offset: int = 0, grid: tuple[int, int] | None = None) -> Tensor:
        """x `[B, N, dim]` at positions offset, offset+1, … -> `[B, N, dim]`; `grid`: the input's patch grid in an
        image model (an encoding laid out on a grid follows it; others ignore it)."""
        return x

    def rotate(self, q: Tensor, k: Tensor, offset: int = 0) -> tuple[Tensor, Tensor]:
        """q `[B, H, N, D]`, k `[B, Hkv, N, D]` at positions offset, offset+1, … -> (q, k), rotated."""
        return q, k

    def score_bias(self, nq: int, nk: int) -> Tensor | None:
        """The bias `[1, H, nq, nk]` added to attention scores, or None."""
        return None


def image_grid(grid: Any, name: str) -> tuple[int, int]:
    """The `(rows, cols)` patch grid an image encoding was given, or a one-line refusal outside image models."""
    if grid is None:
        raise ConfigError(f"pos_enc={name} is for image tasks (it needs the patch grid); use rope or sinusoidal here")
    rows, cols = (int(g) for g in grid)
    if rows <= 0 or cols <= 0:
        raise ConfigError(f"pos_enc={name}: the patch grid {rows}x{cols} must be positive")
    return rows, cols


def acts_in_attention(pos_enc: PositionalEncoding) -> bool:
    """Whether an encoding works inside attention (rotates q and k, or biases the scores), so it depends on the
    layer's heads and may differ from layer to layer."""
    cls = type(pos_enc)
    return cls.rotate is not PositionalEncoding.rotate or cls.score_bias is not PositionalEncoding.score_bias


def adds_to_tokens(pos_enc: PositionalEncoding) -> bool:
    """Whether an encoding is added to the token embeddings (once, before the first layer)."""
    return type(pos_enc).add_to_tokens is not PositionalEncoding.add_to_tokens
