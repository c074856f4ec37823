"""Local (sliding-window) attention: exact softmax over the keys within `window` positions of each query."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from attnkit.errors import ConfigError
from attnkit.nn.attention.base import Attention, check_dropout, repeat_kv
from attnkit.ranges import PositiveInt, Rate
from attnkit.registry import register


@register("attention", "local")
class LocalAttention(Attention):
    """Sliding-window softmax attention (as in Longformer, Beltagy et al. 2020, without global tokens).

    q `[B, H, Nq, D]`, k and v `[B, Hkv, Nk, D]` -> `[B, H, Nq, D]`, Nq <= Nk, query i at position Nk - Nq + i
    (bottom-right, as in cached decoding). A query sees the keys within `window` positions on either side, or with
    `causal` the `window` keys before it and itself. Queries go in blocks of `window`, each against its neighbouring
    keys only, so time and memory grow linearly in N. With window >= N it equals exact softmax attention.
    Self-attention only: the window is a distance between positions of one sequence.
    """

    supports_causal = True
    supports_cross = False
    supports_key_padding = True
    supports_bias = False
    supports_weights = False
    supports_cache = True
    max_length = None

    def __init__(self, window: PositiveInt = 64, dropout: Rate = 0.0) -> None:
        super().__init__()
        if window <= 0:
            raise ConfigError(f"local attention window={window} must be > 0 (keys seen on each side, e.g. 64)")
        self.window = window
        self.dropout = check_dropout("local", dropout)

    def attend(
        self, q: Tensor, k: Tensor, v: Tensor, *, key_padding_mask: Tensor | None, causal: bool, bias: Tensor | None
    ) -> Tensor:
        bsz, heads, nq, d = q.shape
        nk = k.shape[2]
        if nq > nk:
            raise ConfigError(f"LocalAttention needs Nq <= Nk (self-attention); got Nq={nq}, Nk={nk}")
        k, v = repeat_kv(k, heads), repeat_kv(v, heads)
        w = min(self.window, nk)  # distances never exceed nk - 1
        c = max(1, min(w, nq))  # query block size
        span = c + w + (0 if causal else w)  # keys a block sees: [s - w, s + c - 1 (+ w)]
        nb = -(-nq // c)
        off = nk - nq
        right = max(0, (nb - 1) * c + span - w - nq)
        # key block b starts at padded index off + b*c, i.e. at position off + b*c - w
        kb, vb = (
            F.pad(t, (0, 0, w, right))[:, :, off:].unfold(2, span, c)[:, :, :nb].transpose(-2, -1) for t in (k, v)
        )
        qb = F.pad(q, (0, 0, 0, nb * c - nq)).unflatten(2, (nb, c))  # [B, H, nb, c, D]; kb, vb [B, H, nb, span, D]
        # allowed: key inside the sequence and not padding, and within the window of the query
        keep = torch.ones(bsz, nk, dtype=torch.bool, device=q.device)
        if key_padding_mask is not None:
            keep = ~key_padding_mask.bool()
        keyok = F.pad(keep, (w, right), value=False)[:, off:].unfold(1, span, c)[:, :nb]  # [B, nb, span]
        dist = torch.arange(span, device=q.device)[None, :] - w - torch.arange(c, device=q.device)[:, None]
        near = (dist >= -w) & (dist <= (0 if causal else w))  # [c, span]
        allowed = (keyok[:, :, None, :] & near)[:, None]  # [B, 1, nb, c, span]
        dead = ~allowed.any(dim=-1, keepdim=True)
        scores = (qb @ kb.transpose(-2, -1)) * (1.0 / math.sqrt(d))
        scores = scores.masked_fill(~(allowed | dead), float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(q.dtype).masked_fill(dead, 0.0)
        if self.training and self.dropout > 0.0:
            weights = F.dropout(weights, p=self.dropout)
        return (weights @ vb).flatten(2, 3)[:, :, :nq]
