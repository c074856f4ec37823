"""One stack of pre-norm blocks, as every model builds it: the ViT, the sequence classifier, and the encoder and the
decoder of the encoder–decoder.

`plan_stack` reads the per-layer settings (attnkit.nn.layers) and builds the positional encodings the layers use
inside attention; `encoder_stack` and `decoder_stack` build one block per layer; a `Stack` runs them in turn. The
model keeps each part under its own attribute name (`blocks` and `layer_pos_enc`, or `encoder_blocks`, ...): those
names are the state-dict keys that checkpoints, `attnkit.interop` and `init_from` read. The two steps keep the order
in which a model creates its parameters (the encoder–decoder makes its embeddings between them), so that a seed gives
the same weights.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.nn.block import DecoderBlock, EncoderBlock
from attnkit.nn.layers import LayerEncodings, layer_encodings, layer_plan
from attnkit.nn.pos_enc.base import PositionalEncoding


@dataclass
class StackPlan:
    """A stack before its blocks: each layer's settings (`attention`, `heads`, ...) and the encodings they use inside
    attention; `where` is the config key of the per-layer entries, `per_layer` whether any were given."""

    layers: list[dict[str, Any]]
    encodings: LayerEncodings
    where: str
    per_layer: bool

    def block_where(self, i: int, default: str) -> str:
        """The config prefix that block i's messages name: its entry `{where}[i]` if layers were given, else
        `default` (the stack's)."""
        return f"{self.where}[{i}]" if self.per_layer else default


def plan_stack(
    depth: int,
    layers: Sequence[Any] | Mapping[Any, Any] | None,
    defaults: dict[str, Any],
    pos_enc_spec: Any,
    pos_enc: PositionalEncoding,
    build_encoding: Callable[[Any, int], PositionalEncoding],
    *,
    where: str = "model.layers",
) -> StackPlan:
    """The plan of a stack of `depth` layers: `defaults` (the model's attention, heads, kv_heads, ...) under each
    entry of `layers`; a layer that needs a positional encoding of its own gets one from `build_encoding(spec, heads)`,
    the others share `pos_enc`, the stack's, built from `pos_enc_spec`."""
    plan = layer_plan(depth, layers, defaults, where=where)
    own = layer_encodings(plan, pos_enc_spec, pos_enc, defaults["heads"], build_encoding, where=where)
    return StackPlan(plan, LayerEncodings(pos_enc, own, depth), where, layers is not None)


class Stack(nn.ModuleList):
    """Blocks run in turn, `[B, N, dim]` -> `[B, N, dim]`; a ModuleList, so block i is `<name>.i` in a state dict."""

    def forward(
        self, x: Tensor, *args: Any, biases: Sequence[Tensor | None], cache: dict | None = None, **kwargs: Any
    ) -> Tensor:
        """Block i gets `biases[i]`, its layer's score bias, and with `cache` (a dict, filled in place) its own
        `cache[i]`; `args` and `kwargs` (a key padding mask, the decoder's memory, ...) go to every block."""
        for i, (block, bias) in enumerate(zip(self, biases, strict=True)):
            layer_cache = {} if cache is None else {"cache": cache.setdefault(i, {})}
            x = block(x, *args, bias=bias, **layer_cache, **kwargs)
        return x


def encoder_stack(plan: StackPlan, dim: int, *, drop_path: float = 0.0, where: str = "", **options: Any) -> Stack:
    """An `EncoderBlock` per layer of `plan`, with drop-path rates rising linearly from 0 (first) to `drop_path`
    (last); `options` (ffn, norm, dropout, qk_norm, key_padding, max_keys, ...) go to every block, `where` is the
    stack's config prefix."""
    rates = torch.linspace(0, drop_path, len(plan.layers)).tolist()
    return Stack(
        EncoderBlock(
            dim,
            layer["heads"],
            attention=layer["attention"],
            mixer=layer.get("mixer"),
            kv_heads=layer["kv_heads"],
            drop_path=rate,
            pos_enc=plan.encodings.of(i),
            where=plan.block_where(i, where),
            **options,
        )
        for i, (layer, rate) in enumerate(zip(plan.layers, rates, strict=True))
    )


def decoder_stack(plan: StackPlan, dim: int, *, where: str = "", **options: Any) -> Stack:
    """A `DecoderBlock` per layer of `plan` (its `attention` the causal self-attention, its `cross_attention` the
    attention over the memory); `options` go to every block, `where` is the stack's config prefix."""
    return Stack(
        DecoderBlock(
            dim,
            layer["heads"],
            self_attention=layer["attention"],
            cross_attention=layer["cross_attention"],
            mixer=layer.get("mixer"),
            kv_heads=layer["kv_heads"],
            pos_enc=plan.encodings.of(i),
            where=plan.block_where(i, where),
            **options,
        )
        for i, layer in enumerate(plan.layers)
    )
