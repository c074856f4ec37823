"""Can this attention serve this use? Every rule, written once, with the one-line refusal a user sees.

Two places apply them: a `MultiHeadAttention` checks the use it is built for (`check_use`) once, when the model is
built; a kernel called directly checks each call (`Attention.check`). `where` is the config key that chose the
attention (`attention`, `model.decoder.cross_attention`, ...), so that each message names the value to change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attnkit import registry
from attnkit.errors import ConfigError

if TYPE_CHECKING:
    from attnkit.nn.attention.base import Attention
    from attnkit.nn.pos_enc.base import PositionalEncoding


def component_name(component: Any, kind: str) -> str:
    """How a user names `component`: its registry name under `kind`, or else its class name."""
    for entry in registry.entries(kind):
        if type(component) is entry.obj:
            return entry.name
    return type(component).__name__


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def head_dim(dim: int, heads: int, where: str = "model") -> int:
    """The width of one head, dim / heads; refused unless `heads` divides `dim` (`where`: the config node of both)."""
    if heads <= 0 or dim % heads:
        raise ConfigError(
            f"heads={heads} does not divide the width {where}.dim={dim}; choose heads among {_divisors(dim)} "
            f"or change {where}.dim"
        )
    return dim // heads


def check_kv_heads(heads: int, kv_heads: int) -> None:
    """Grouped-query attention shares each key/value head among heads / kv_heads query heads."""
    if kv_heads <= 0 or heads % kv_heads:
        raise ConfigError(f"kv_heads={kv_heads} must divide heads={heads}; choose one of {_divisors(heads)}")


def check_causal(attention: Attention, where: str = "attention") -> None:
    """A causal (decoder) self-attention needs a kernel that masks the future."""
    if not attention.supports_causal:
        causal = ", ".join(e.name for e in registry.entries("attention") if getattr(e.obj, "supports_causal", False))
        raise ConfigError(
            f"decoder self-attention must be causal; {where}={component_name(attention, 'attention')} cannot mask "
            f"the future; set {where}=softmax (or another causal attention: {causal})"
        )


def check_cross(attention: Attention, where: str = "attention") -> None:
    """Cross-attention needs a kernel whose queries and keys may come from two sequences."""
    if not attention.supports_cross:
        raise ConfigError(
            f"{where}={component_name(attention, 'attention')} cannot be cross-attention (it needs one sequence); "
            f"set {where}=softmax (or another attention that supports cross-attention)"
        )


def check_key_padding(attention: Attention, where: str = "attention") -> None:
    """Padded keys (batched sources of several lengths) need a kernel that takes a key padding mask."""
    if not attention.supports_key_padding:
        raise ConfigError(
            f"{where}={component_name(attention, 'attention')} cannot ignore padded source tokens, which batched "
            f"sources need; set {where}=softmax (or another attention that takes a key padding mask)"
        )


def check_bias(attention: Attention, source: str = "a bias argument", where: str = "attention") -> None:
    """A score bias (a `bias`-kind positional encoding, say `source="pos_enc=alibi"`) needs a kernel that adds one."""
    if not attention.supports_bias:
        raise ConfigError(
            f"{source} needs score bias; {where}={component_name(attention, 'attention')} has none "
            f"(choose softmax or eager, or a rotary/absolute encoding)"
        )


def check_max_length(attention: Attention, keys: int, where: str = "attention") -> None:
    """A kernel with a `max_length` takes at most that many keys; `keys` is the most it may be given."""
    limit = attention.max_length
    if limit is not None and keys > limit:
        raise ConfigError(
            f"{where}={component_name(attention, 'attention')} takes at most {limit} keys (max_length={limit}) but "
            f"may get {keys}; set {where}.max_length={keys} (or more), or give shorter sequences "
            f"(model.max_len, or a larger model.patch_size for images)"
        )


def check_weights(attention: Attention, where: str = "attention") -> None:
    """Attention weights (need_weights=True, attention maps) need a kernel that computes them."""
    if not attention.supports_weights:
        raise ConfigError(
            f"{where}={component_name(attention, 'attention')} cannot return attention weights; use softmax or eager"
        )


def check_use(
    attention: Attention,
    *,
    causal: bool = False,
    cross: bool = False,
    key_padding: bool = False,
    max_keys: int | None = None,
    pos_enc: PositionalEncoding | None = None,
    where: str = "attention",
) -> None:
    """Refuse, when a model is built, a use `attention` cannot serve: causal, cross, padded keys, the score bias of
    `pos_enc` (an encoding of kind 'bias'), up to `max_keys` keys (None: no bound known)."""
    if causal:
        check_causal(attention, where)
    if cross:
        check_cross(attention, where)
    if key_padding:
        check_key_padding(attention, where)
    if getattr(pos_enc, "kind", None) == "bias":
        check_bias(attention, f"pos_enc={component_name(pos_enc, 'pos_enc')}", where)
    if max_keys is not None:
        check_max_length(attention, max_keys, where)


def check_mixer(mixer: Any, *, causal: bool, key_padding: bool, where: str = "attention") -> None:
    """Refuse, when a model is built, a use a token mixer cannot serve: causal (decoders), bidirectional (encoders,
    the ViT), padded tokens (batched sequences of several lengths). Multi-head attention checks its kernel itself."""
    name = component_name(mixer, "mixer")
    if causal and not getattr(mixer, "supports_causal", True):
        raise ConfigError(f"{where}={name} has no causal form, which a decoder needs; choose a causal mixer")
    if not causal and not getattr(mixer, "supports_bidirectional", True):
        causal_models = "task=lm, or the decoder of task=translation/summarization"
        raise ConfigError(
            f"{where}={name} has no bidirectional form, which encoders and the ViT need; use it in causal stacks "
            f"({causal_models}), or choose attention here"
        )
    if key_padding and not getattr(mixer, "supports_key_padding", True):
        raise ConfigError(
            f"{where}={name} cannot ignore padded tokens, which batched sequences of several lengths need; "
            f"choose another mixer here"
        )
