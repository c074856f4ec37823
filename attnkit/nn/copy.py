"""Copy attention: a decoder output head that can copy source tokens (pointer-generator, See et al. 2017).

The next-token distribution mixes the vocabulary distribution with a copy distribution over the source positions,
given by an attention of the decoder's final states over the encoder's memory, through a learned gate:

    p(w) = g · softmax(logits)(w) + (1 - g) · Σ_{i: src_i = w} a_i,     g = σ(w_g · [h; c] + b_g)

where h is the decoder state, a the copy attention over source positions and c = Σ_i a_i m_i its context. Source ids
are target ids, so the model needs one joint vocabulary. The copy attention is the head's own (scaled dot-product,
`heads` heads averaged), whatever attention the decoder's layers use: it needs explicit weights over the source, which
linear-time kernels do not form. Its keys are computed once per source and kept in the decoding cache.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import torch
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.ranges import PositiveInt, Range
from attnkit.registry import register


@register("copy", "pointer_generator")
class PointerGenerator(nn.Module):
    """Mixes the vocabulary distribution with copying a source token, through a learned gate.

    `heads`: copy-attention heads (their weights are averaged); `gate_bias`: the gate's initial bias (0: g = ½).
    `forward` returns log-probabilities `[B, Nt, V]` (normalised: log-softmax leaves them unchanged).
    """

    def __init__(self, dim: PositiveInt, *, heads: PositiveInt = 1, gate_bias: Annotated[float, Range()] = 0.0) -> None:
        super().__init__()
        if not isinstance(heads, int) or isinstance(heads, bool) or heads <= 0 or dim % heads:
            raise ConfigError(f"copy heads={heads!r} must be a positive integer dividing the model width {dim}")
        self.heads, self.head_dim = heads, dim // heads
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.gate = nn.Linear(2 * dim, 1)
        nn.init.xavier_uniform_(self.query.weight)
        nn.init.xavier_uniform_(self.key.weight)
        nn.init.zeros_(self.gate.weight)
        nn.init.constant_(self.gate.bias, float(gate_bias))

    def _keys(self, memory: Tensor, cache: dict[str, Any] | None) -> Tensor:
        """`[B, heads, Ns, head_dim]` projected source keys (kept in `cache`, a dict, across decoding steps)."""
        if cache is not None and "k" in cache:
            return cache["k"]
        b, n, _ = memory.shape
        keys = self.key(memory).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        if cache is not None:
            cache["k"] = keys
        return keys

    def attention(
        self, hidden: Tensor, memory: Tensor, memory_padding_mask: Tensor | None, cache: dict[str, Any] | None = None
    ) -> Tensor:
        """Copy weights `[B, Nt, Ns]` (each row sums to 1 over the real source positions)."""
        b, nt, _ = hidden.shape
        q = self.query(hidden).view(b, nt, self.heads, self.head_dim).transpose(1, 2)
        scores = q @ self._keys(memory, cache).transpose(-1, -2) / math.sqrt(self.head_dim)  # [B, h, Nt, Ns]
        if memory_padding_mask is not None:
            scores = scores.masked_fill(memory_padding_mask[:, None, None, :], float("-inf"))
        return scores.float().softmax(dim=-1).mean(dim=1)

    def forward(
        self,
        hidden: Tensor,
        logits: Tensor,
        memory: Tensor,
        src: Tensor,
        memory_padding_mask: Tensor | None = None,
        cache: dict[str, Any] | None = None,
    ) -> Tensor:
        """hidden `[B, Nt, dim]` (decoder output), logits `[B, Nt, V]`, memory `[B, Ns, dim]`, src `[B, Ns]` ids of
        the same vocabulary -> log p `[B, Nt, V]`, in float32."""
        weights = self.attention(hidden, memory, memory_padding_mask, cache)  # [B, Nt, Ns]
        context = weights.to(memory.dtype) @ memory  # [B, Nt, dim]
        gate = torch.sigmoid(self.gate(torch.cat([hidden, context], dim=-1)).float())  # [B, Nt, 1]
        copied = torch.zeros_like(logits, dtype=torch.float32)
        copied.scatter_add_(2, src[:, None, :].expand(-1, hidden.shape[1], -1), weights)
        probs = gate * logits.float().softmax(dim=-1) + (1 - gate) * copied
        return probs.clamp_min(torch.finfo(torch.float32).tiny).log()
