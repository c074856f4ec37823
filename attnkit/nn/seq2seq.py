"""Encoder–decoder transformer (Vaswani et al. 2017) for text-to-text tasks, pre-norm, with an incremental KV cache.

Encoder self-attention, decoder self-attention and cross-attention each take a registered attention spec; each stack
has its own positional encoding. `attention=` and `pos_enc=` set every stack at once; `encoder={...}` and
`decoder={...}` override one stack, a missing or None value inheriting the model's. `decoder={"copy": true}` adds
copy attention (a registered `copy` head, `attnkit.nn.copy`): the decoder can then copy source tokens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import torch
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn import rates
from attnkit.nn.attention.base import Attention
from attnkit.nn.capabilities import head_dim
from attnkit.nn.layers import summary
from attnkit.nn.multihead import MultiHeadAttention
from attnkit.nn.stack import decoder_stack, encoder_stack, plan_stack
from attnkit.ranges import NonNegativeInt, PositiveInt, Range, Rate
from attnkit.registry import build_spec, did_you_mean, register

# layer -> {"self": {"k", "v"} or {"state": {...}, "length"}, "cross": {"k", "v"}}; see attnkit.nn.multihead;
# with a copy head also "copy" -> its projected source keys
Cache = dict[Any, dict[str, Any]]

_STACK_KEYS = {
    "encoder": ("attention", "pos_enc", "layers"),
    "decoder": ("attention", "cross_attention", "pos_enc", "layers", "copy"),
}


def _stack_overrides(where: str, spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """The non-None entries of `model.encoder` / `model.decoder`, refusing unknown keys."""
    keys = _STACK_KEYS[where]
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"model.{where}={spec!r} must be a mapping with keys {', '.join(keys)} (or null)")
    for key in spec:
        if key not in keys:
            raise ConfigError(
                f"model.{where} has no key {key!r}{did_you_mean(str(key), list(keys))}; keys: {', '.join(keys)}"
            )
    return {key: value for key, value in spec.items() if value is not None}


@register("model", "transformer")
class EncoderDecoder(nn.Module):
    """Encoder–decoder transformer for sequence-to-sequence tasks, from registered attention, pos_enc, norm, ffn.

    Token embeddings are initialised with std dim^-½ and multiplied by √dim (`scale_embeddings`), so that the
    encoder and decoder inputs have unit scale while the tied output projection gives logits of unit scale; this
    holds whatever the position kind, so the scale is applied with rotary and bias encodings too.
    `tie_embeddings` shares the decoder input embedding with the output projection; `share_vocab` (joint
    vocabularies, src_vocab == tgt_vocab) also shares the source embedding. Targets are right-padded: the causal
    mask keeps real positions from seeing the padding after them.
    """

    def __init__(
        self,
        src_vocab: PositiveInt,
        tgt_vocab: PositiveInt,
        *,
        dim: PositiveInt = 256,
        depth: PositiveInt = 3,
        decoder_depth: PositiveInt | None = None,
        heads: PositiveInt = 4,
        kv_heads: PositiveInt | None = None,
        max_len: Annotated[int, Range(1), "the longest sequence, in tokens"] = 512,
        dropout: Rate = 0.1,
        attention: Any = "softmax",
        pos_enc: Any = "sinusoidal",
        norm: Any = "layernorm",
        ffn: Any = "mlp",
        qk_norm: str | None = None,
        encoder: dict | None = None,
        decoder: dict | None = None,
        tie_embeddings: bool = True,
        share_vocab: bool = False,
        scale_embeddings: bool = True,
        pad_id: NonNegativeInt = 0,
    ) -> None:
        super().__init__()
        decoder_depth = depth if decoder_depth is None else decoder_depth
        for key, value in (
            ("src_vocab", src_vocab),
            ("tgt_vocab", tgt_vocab),
            ("dim", dim),
            ("depth", depth),
            ("decoder_depth", decoder_depth),
            ("max_len", max_len),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"model.{key}={value!r} must be a positive integer")
        if not 0 <= pad_id < min(src_vocab, tgt_vocab):
            raise ConfigError(
                f"model.pad_id={pad_id} is not a token of vocabularies of {src_vocab} and {tgt_vocab} ids; "
                f"give the tokenizer's padding id"
            )
        if share_vocab and src_vocab != tgt_vocab:
            raise ConfigError(
                f"model.share_vocab=true needs one joint vocabulary; got src_vocab={src_vocab}, tgt_vocab={tgt_vocab} "
                f"(train a joint tokenizer or set model.share_vocab=false)"
            )
        self.src_vocab, self.tgt_vocab, self.dim, self.max_len, self.pad_id = src_vocab, tgt_vocab, dim, max_len, pad_id
        self.embed_scale = math.sqrt(dim) if scale_embeddings else 1.0
        enc = {"attention": attention, "pos_enc": pos_enc, **_stack_overrides("encoder", encoder)}
        dec = {
            "attention": attention,
            "cross_attention": attention,
            "pos_enc": pos_enc,
            **_stack_overrides("decoder", decoder),
        }
        enc_pos, dec_pos = ("none" if spec is None else spec for spec in (enc["pos_enc"], dec["pos_enc"]))

        def encoding(causal: bool) -> Any:
            def build(spec: Any, layer_heads: int) -> Any:
                context = {"dim": dim, "heads": layer_heads, "head_dim": head_dim(dim, layer_heads), "max_len": max_len}
                return build_spec("pos_enc", spec, **context, causal=causal)

            return build

        self.encoder_pos_enc = encoding(False)(enc_pos, heads)
        self.decoder_pos_enc = encoding(True)(dec_pos, heads)
        shared = {"heads": heads, "kv_heads": kv_heads}
        enc_plan = plan_stack(
            depth,
            enc.get("layers"),
            {**shared, "attention": enc["attention"]},
            enc_pos,
            self.encoder_pos_enc,
            encoding(False),
            where="model.encoder.layers",
        )
        dec_plan = plan_stack(
            decoder_depth,
            dec.get("layers"),
            {**shared, "attention": dec["attention"], "cross_attention": dec["cross_attention"]},
            dec_pos,
            self.decoder_pos_enc,
            encoding(True),
            where="model.decoder.layers",
        )
        self.encoder_layer_pos_enc, self.decoder_layer_pos_enc = enc_plan.encodings, dec_plan.encodings
        self.plan = {"encoder": summary(enc_plan.layers), "decoder": summary(dec_plan.layers)}

        self.tgt_embed = nn.Embedding(tgt_vocab, dim, padding_idx=pad_id)
        self.src_embed = self.tgt_embed if share_vocab else nn.Embedding(src_vocab, dim, padding_idx=pad_id)
        block = {"ffn": ffn, "norm": norm, "dropout": dropout, "qk_norm": qk_norm, "max_keys": max_len}
        self.encoder_blocks = encoder_stack(enc_plan, dim, key_padding=True, where="model.encoder", **block)
        self.decoder_blocks = decoder_stack(dec_plan, dim, where="model.decoder", **block)
        self.encoder_norm = build_spec("norm", norm, dim=dim)
        self.decoder_norm = build_spec("norm", norm, dim=dim)
        self.output = nn.Linear(dim, tgt_vocab, bias=False)
        self.dropout = rates.dropout("model.dropout", dropout)
        self._uncacheable = sorted(
            {
                type(kernel).__name__
                for block in self.decoder_blocks
                for kernel in (getattr(block.self_attn, "attention", block.self_attn), block.cross_attn.attention)
                if not getattr(kernel, "supports_cache", True)
            }
        )
        self._init_weights()
        self.copy = self._copy_head(dec.get("copy"), dim, share_vocab)  # after: it initialises itself
        if tie_embeddings:
            self.output.weight = self.tgt_embed.weight

    @staticmethod
    def _copy_head(spec: Any, dim: int, share_vocab: bool) -> nn.Module | None:
        """The decoder's copy head from `model.decoder.copy`: false/None (none), true (pointer_generator), a name or
        a spec; copying maps source ids to target ids, so it needs the joint vocabulary."""
        if spec is None or spec is False:
            return None
        if not share_vocab:
            raise ConfigError(
                "model.decoder.copy needs one joint vocabulary: source ids must be target ids (set model.share_vocab="
                "true and task.tokenizer.joint=true, or model.decoder.copy=false)"
            )
        return build_spec("copy", "pointer_generator" if spec is True else spec, dim=dim)

    @property
    def copies_source(self) -> bool:
        """Whether `decode` needs the source token ids (`src=`): the model has a copy head."""
        return self.copy is not None

    @property
    def supports_cache(self) -> bool:
        """Whether `decode` can run incrementally: every decoder kernel keeps its output with a KV cache."""
        return not self._uncacheable

    def _init_weights(self) -> None:
        """Xavier-uniform projections (attention kernels keep their own), embeddings N(0, dim^-1), pad row zero."""
        inside_kernels = {id(m) for k in self.modules() if isinstance(k, Attention) for m in k.modules()}
        for module in self.modules():
            if isinstance(module, nn.Linear) and id(module) not in inside_kernels:
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for embed in {id(e): e for e in (self.src_embed, self.tgt_embed)}.values():
            nn.init.normal_(embed.weight, std=self.dim**-0.5)
            with torch.no_grad():
                embed.weight[self.pad_id].zero_()

    def _check_tokens(self, tokens: Tensor, vocab: int, what: str, length: int) -> None:
        if tokens.dim() != 2:
            raise ConfigError(f"{what} tokens must be [B, N]; got shape {tuple(tokens.shape)}")
        if length > self.max_len:
            raise ConfigError(
                f"{what} of {length} positions exceeds model.max_len={self.max_len}; "
                f"truncate the {what}s or raise model.max_len"
            )
        if torch.compiler.is_compiling() or not tokens.numel():
            return  # a compiled forward skips it (reading the ids back breaks the graph); eager calls check
        lowest, highest = (int(t) for t in tokens.aminmax())
        if lowest < 0 or highest >= vocab:
            bad = highest if highest >= vocab else lowest
            raise ConfigError(
                f"{what} token id {bad} is outside the vocabulary of {vocab}; the tokenizer and the model's "
                f"{'src_vocab' if what == 'source' else 'tgt_vocab'} disagree"
            )

    def encode(self, src: Tensor, src_padding_mask: Tensor | None = None) -> Tensor:
        """src `[B, Ns]` -> memory `[B, Ns, dim]`; src_padding_mask `[B, Ns]` (True = padding; None: src == pad_id)."""
        self._check_tokens(src, self.src_vocab, "source", src.shape[-1])
        mask = self.padding_mask(src) if src_padding_mask is None else src_padding_mask
        mask = mask if mask.any() else None  # no padding: the kernels' unmasked fast paths
        x = self.dropout(self.encoder_pos_enc.add_to_tokens(self.src_embed(src) * self.embed_scale))
        biases = self.encoder_layer_pos_enc.biases(src.shape[1], src.shape[1])
        return self.encoder_norm(self.encoder_blocks(x, biases=biases, key_padding_mask=mask))

    def padding_mask(self, tokens: Tensor) -> Tensor:
        """`[B, N]` bool, True where `tokens` is the padding id."""
        return tokens.eq(self.pad_id)

    def decode(
        self,
        tgt: Tensor,
        memory: Tensor,
        memory_padding_mask: Tensor | None = None,
        *,
        cache: Cache | None = None,
        src: Tensor | None = None,
    ) -> Tensor:
        """tgt `[B, Nt]`, memory `[B, Ns, dim]` -> logits `[B, Nt, tgt_vocab]`.

        With a copy head (`copies_source`), `src` `[B, Ns]` (the source ids) is required and the result is the
        log-probabilities of the mixed distribution, in float32 (log-softmax leaves them unchanged).

        With `cache` (a dict, filled in place), `tgt` holds only the new tokens: their positions continue after the
        cached ones, self-attention keys and values are appended (or, for a kernel with a recurrent form such as
        linear or performer, its fixed-size state is updated), and cross-attention ones are computed from `memory`
        once.
        """
        if cache is not None and self._uncacheable:
            raise ConfigError(
                f"attention {', '.join(self._uncacheable)} cannot decode incrementally (supports_cache=False); "
                f"decode with use_cache=False"
            )
        offset = self.cached_length(cache)
        self._check_tokens(tgt, self.tgt_vocab, "target", offset + tgt.shape[-1])
        x = self.dropout(self.decoder_pos_enc.add_to_tokens(self.tgt_embed(tgt) * self.embed_scale, offset=offset))
        biases = self.decoder_layer_pos_enc.biases(tgt.shape[1], offset + tgt.shape[1])
        if memory_padding_mask is not None and not memory_padding_mask.any():
            memory_padding_mask = None
        x = self.decoder_blocks(x, memory, biases=biases, memory_padding_mask=memory_padding_mask, cache=cache)
        x = self.decoder_norm(x)
        if self.copy is None:
            return self.output(x)
        if src is None or src.shape != memory.shape[:2]:
            raise ConfigError(
                f"this model copies source tokens (model.decoder.copy): decode needs src=<source ids [B, Ns]> matching "
                f"memory {tuple(memory.shape[:2])}; got {None if src is None else tuple(src.shape)}"
            )
        copy_cache = None if cache is None else cache.setdefault("copy", {})
        return self.copy(x, self.output(x), memory, src, memory_padding_mask, copy_cache)

    def forward(self, src: Tensor, tgt_in: Tensor, src_padding_mask: Tensor | None = None) -> Tensor:
        """Teacher forcing: src `[B, Ns]`, tgt_in `[B, Nt]` (BOS + target, right-padded) -> logits `[B, Nt, V]`."""
        mask = self.padding_mask(src) if src_padding_mask is None else src_padding_mask
        return self.decode(tgt_in, self.encode(src, mask), mask, src=src)

    @staticmethod
    def cached_length(cache: Cache | None) -> int:
        """How many target positions the cache holds (0 for None or an empty cache)."""
        if not cache:
            return 0
        return MultiHeadAttention.cached_length(cache.get(0, {}).get("self"))

    @staticmethod
    def reorder_cache(cache: Cache, index: Tensor) -> None:
        """Keep rows `index` `[B']` of every cached tensor, in place (beam reordering, dropping finished rows): keys
        and values, and every tensor of a recurrent state (all batch first); other entries (lengths) are kept."""

        def select(node: dict) -> None:
            for key, value in node.items():
                if isinstance(value, Tensor):
                    node[key] = value.index_select(0, index)
                elif isinstance(value, dict):
                    select(value)

        select(cache)
