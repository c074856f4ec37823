"""Decoder-only transformer language model (GPT-style): token embedding, causal pre-norm blocks, final norm, a
linear head tied to the embedding.

The blocks are the stack every model builds (`attnkit.nn.stack`), causal: any registered attention with a causal
form, any positional encoding (`none` included), `model.layers` for hybrid stacks. Decoding is incremental with a
cache (a dict, filled in place): each layer's self-attention keeps keys and values, or the kernel's fixed-size
recurrent state (linear, performer), see `attnkit.nn.multihead`. `encode`/`decode`/`reorder_cache` let the one
decoding loop (`attnkit.nn.decoding.generate`) drive it: the prompt plays the part of the source.
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn import rates
from attnkit.nn.attention.base import Attention
from attnkit.nn.capabilities import head_dim
from attnkit.nn.layers import summary
from attnkit.nn.multihead import MultiHeadAttention
from attnkit.nn.pos_enc.base import PositionalEncoding
from attnkit.nn.seq2seq import EncoderDecoder
from attnkit.nn.stack import encoder_stack, plan_stack
from attnkit.ranges import PositiveInt, Range, Rate
from attnkit.registry import build_spec, register

EMBED_STD = 0.02  # GPT-2's: the token embeddings' initial scale
# layer -> {"k", "v"} or {"state", "length"}: each block's self-attention cache
Cache = dict[Any, dict[str, Any]]


@register("model", "decoder")
class Decoder(nn.Module):
    """Causal language model `ids [B, N] -> logits [B, N, vocab_size]` from registered attention, pos_enc, norm, ffn.

    `max_len`: the most positions a sequence (prompt and generated tokens) may have; `tie_embeddings` shares the
    token embedding with the output projection. Weights start as GPT-2's: N(0, 0.02), and the residual output
    projections N(0, 0.02 / sqrt(2 · depth)); a sinusoidal table is added at the embeddings' scale, 0.02 (unless its
    `scale` is given).
    """

    prompted = True  # for the decoding loop: the prompt is the source, no BOS or padding token

    def __init__(
        self,
        vocab_size: PositiveInt,
        *,
        dim: PositiveInt = 128,
        depth: PositiveInt = 2,
        heads: PositiveInt = 4,
        kv_heads: PositiveInt | None = None,
        qk_norm: str | None = None,
        max_len: Annotated[int, Range(1), "the longest sequence, in tokens"] = 256,
        dropout: Rate = 0.0,
        attention: Any = "softmax",
        pos_enc: Any = "rope",
        norm: Any = "layernorm",
        ffn: Any = "mlp",
        layers: Any = None,
        tie_embeddings: bool = True,
    ) -> None:
        """`layers`: per-layer attention, heads, kv_heads and rotary/bias pos_enc (see attnkit.nn.layers)."""
        super().__init__()
        for key, value in (("vocab_size", vocab_size), ("dim", dim), ("depth", depth), ("max_len", max_len)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"model.{key}={value!r} must be a positive integer")
        self.vocab_size, self.dim, self.max_len = vocab_size, dim, max_len
        pos_enc = "none" if pos_enc is None else pos_enc

        def encoding(spec: Any, layer_heads: int) -> Any:
            context = {"dim": dim, "heads": layer_heads, "head_dim": head_dim(dim, layer_heads), "max_len": max_len}
            context["scale"] = EMBED_STD  # an absolute table (sinusoidal) at the token embeddings' scale
            return build_spec("pos_enc", spec, **context, causal=True)

        self.pos_enc = encoding(pos_enc, heads)
        defaults = {"attention": attention, "heads": heads, "kv_heads": kv_heads}
        plan = plan_stack(depth, layers, defaults, pos_enc, self.pos_enc, encoding)
        self.layer_pos_enc = plan.encodings
        self.plan = summary(plan.layers)
        self.embed = nn.Embedding(vocab_size, dim)
        self.blocks = encoder_stack(
            plan,
            dim,
            qk_norm=qk_norm,
            ffn=ffn,
            norm=norm,
            dropout=dropout,
            causal=True,
            max_keys=max_len,
            where="model",
        )
        self.norm = build_spec("norm", norm, dim=dim)
        self.head = nn.Linear(dim, vocab_size, bias=False)
        self.dropout = rates.dropout("model.dropout", dropout)
        self._init_weights(depth)
        if tie_embeddings:
            self.head.weight = self.embed.weight
        self._position_limit = self._limit()

    def _init_weights(self, depth: int) -> None:
        inside_kernels = {id(m) for k in self.modules() if isinstance(k, Attention) for m in k.modules()}
        for module in self.modules():
            if isinstance(module, nn.Linear) and id(module) not in inside_kernels:
                nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.embed.weight, std=EMBED_STD)
        for block in self.blocks:
            last = [m for m in block.ffn.modules() if isinstance(m, nn.Linear)][-1:]
            for proj in (block.attn.out_proj, *last):
                nn.init.normal_(proj.weight, std=0.02 / (2 * depth) ** 0.5)

    def forward(self, ids: Tensor, *, cache: Cache | None = None) -> Tensor:
        """ids `[B, N]` -> logits `[B, N, vocab_size]`. With `cache` (a dict, filled in place) `ids` are the tokens
        after the cached ones: their positions continue from there."""
        return self.head(self.features(ids, cache=cache))

    def features(self, ids: Tensor, *, cache: Cache | None = None) -> Tensor:
        """ids `[B, N]` -> the final norm's output `[B, N, dim]`, what the head maps to logits: a loss over a few
        positions (MQAR's answers) applies `head` to those alone."""
        if ids.dim() != 2:
            raise ConfigError(f"token ids must be [B, N]; got shape {tuple(ids.shape)}")
        offset = self.cached_length(cache)
        end = offset + ids.shape[1]
        limit = self.position_limit()
        if limit is not None and end > limit:
            raise ConfigError(
                f"a sequence of {end} positions exceeds the {limit} this model holds (a learned position table "
                f"without pos_enc.interpolate, or a kernel's max_length); use a shorter sequence, or a model with "
                f"pos_enc=rope, alibi, t5, sinusoidal or none (any length)"
            )
        if not torch.compiler.is_compiling() and ids.numel():
            lowest, highest = (int(t) for t in ids.aminmax())
            if lowest < 0 or highest >= self.vocab_size:
                raise ConfigError(
                    f"token id {highest if highest >= self.vocab_size else lowest} is outside the vocabulary of "
                    f"{self.vocab_size}; the data and model.vocab_size disagree"
                )
        x = self.dropout(self.pos_enc.add_to_tokens(self.embed(ids), offset=offset))
        biases = self.layer_pos_enc.biases(ids.shape[1], end)
        return self.norm(self.blocks(x, biases=biases, cache=cache))

    def position_limit(self) -> int | None:
        """The most positions a forward pass may take: a learned table's size (unless it interpolates) or a kernel's
        `max_length` (linformer), None when unbounded. `max_len` bounds generation, not this."""
        return self._position_limit

    def _limit(self) -> int | None:
        limits = [
            m.max_len
            for m in self.modules()
            if isinstance(m, PositionalEncoding) and m.max_len is not None and not getattr(m, "interpolate", False)
        ]
        limits += [
            m.max_length
            for m in self.modules()
            if isinstance(m, Attention) and getattr(m, "max_length", None) is not None
        ]
        return min(limits, default=None)

    def attention_weights(self, ids: Tensor) -> Tensor:
        """The last block's attention weights `[B, H, N, N]` over ids `[B, N]` (a kernel with `supports_weights`)."""
        x = self.pos_enc.add_to_tokens(self.embed(ids))
        biases = self.layer_pos_enc.biases(ids.shape[1], ids.shape[1])
        x = self.blocks[:-1](x, biases=biases[:-1])
        last = self.blocks[-1]
        _, weights = last.attn(last.norm1(x), bias=biases[-1], need_weights=True)
        return weights

    @staticmethod
    def cached_length(cache: Cache | None) -> int:
        """How many positions the cache holds (0 for None or an empty cache)."""
        return MultiHeadAttention.cached_length(cache.get(0)) if cache else 0

    reorder_cache = staticmethod(EncoderDecoder.reorder_cache)

    # -- the decoding loop's interface (attnkit.nn.decoding.generate): the prompt is the "source" --------------------

    def encode(self, prompt: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """The "memory" of the decoding loop: the prompt ids `[B, Np]` themselves (every row the same length)."""
        if padding_mask is not None and padding_mask.any():
            raise ConfigError("prompts of a batch must have the same length (no padding); generate them one by one")
        return prompt

    def decode(self, tgt: Tensor, prompt: Tensor, padding_mask: Tensor | None = None, *, cache: Cache | None = None):
        """Logits `[B, N, V]` after prompt `[B, Np]` + tgt `[B, 1 + t]` (its first id, the loop's BOS, is not fed).

        With `cache`: an empty cache takes the prompt, a filled one the newest token (tgt `[B, 1]`)."""
        if cache is not None and cache:
            return self(tgt, cache=cache)
        return self(torch.cat([prompt, tgt[:, 1:]], dim=1), cache=cache)
