"""Hybrid stacks: per-layer choices of attention, heads and (rotary or bias) positional encoding.

`layers` is None (every layer as the model), a list with one entry per layer, or a mapping from layer indices or
ranges to an entry: `{"0-3": "local", "4-": "softmax"}` ("4-": from layer 4 to the last; "5": one layer). An entry is
None (as the model), an attention or token-mixer name or spec (`gla`, `{name: local, window: 8}`), or a mapping with
any of `attention`, `mixer`, `cross_attention` (decoder stacks), `heads`, `kv_heads`, `pos_enc`. A mixer (kind
`mixer`: gla, mamba2, ...) takes the place of the layer's self-attention: `[gla, gla, softmax, gla]` is a hybrid. A
layer's `pos_enc` must act inside attention (rotary or bias: rope, alibi, t5, none): an absolute encoding is added
to the tokens once, before the first layer, so it is the model's choice.

From the command line the list form composes best with Hydra: a list replaces the default (null) as a whole, so no
`+` is needed, and whole stacks can be swept: `-m 'model.layers=[local,local,softmax,softmax],[softmax,softmax,softmax,
softmax]'`. The mapping form is for YAML and for `model.layers={0-3:local,4-5:softmax}` on the command line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn.pos_enc.base import acts_in_attention, adds_to_tokens
from attnkit.registry import available, did_you_mean

KEYS = ("attention", "mixer", "cross_attention", "heads", "kv_heads", "pos_enc")


def layer_plan(
    depth: int,
    layers: Sequence[Any] | Mapping[Any, Any] | None,
    defaults: dict[str, Any],
    *,
    where: str = "model.layers",
) -> list[dict[str, Any]]:
    """Per layer, the settings it uses: `defaults` (the model's attention, heads, ...; `pos_enc` None = the model's)
    with the layer's entry on top. Every mistake (a range outside the stack, two entries for one layer, an unknown
    key, a list of the wrong length) is one ConfigError naming `where`."""
    entries: list[Any] = [None] * depth
    if layers is None:
        pass
    elif isinstance(layers, Mapping):
        claimed: dict[int, str] = {}
        for key, entry in layers.items():
            for i in _indices(str(key), depth, where):
                if i in claimed:
                    raise ConfigError(f"{where}: layer {i} is given by both {claimed[i]!r} and {key!r}; give it once")
                claimed[i] = str(key)
                entries[i] = entry
    elif isinstance(layers, Sequence) and not isinstance(layers, str):
        if len(layers) != depth:
            raise ConfigError(
                f"{where} lists {len(layers)} layers but the stack has {depth}; give one entry per layer (null: as "
                f"the model), or a mapping such as {{0-1: local}}"
            )
        entries = list(layers)
    else:
        raise ConfigError(f"{where}={layers!r} must be a list (one entry per layer) or a mapping of layer ranges")
    return [{**defaults, **_entry(entry, f"{where}[{i}]")} for i, entry in enumerate(entries)]


def _indices(key: str, depth: int, where: str) -> range:
    start, dash, end = key.partition("-")
    try:
        first = int(start)
        last = (depth - 1 if end == "" else int(end)) if dash else first
    except ValueError:
        raise ConfigError(f"{where}: {key!r} is not a layer range; write 3, 0-3 or 4- (layers count from 0)") from None
    if not 0 <= first <= last < depth:
        raise ConfigError(f"{where}: layers {key!r} are outside the stack of {depth} layers (0-{depth - 1})")
    return range(first, last + 1)


def _entry(entry: Any, where: str) -> dict[str, Any]:
    if entry is None:
        return {}
    if isinstance(entry, str):
        return _named(entry, entry, where)
    if not isinstance(entry, Mapping):
        raise ConfigError(
            f"{where}={entry!r} must be an attention or mixer name, or a mapping with keys {', '.join(KEYS)}"
        )
    if "name" in entry:  # an attention or mixer spec: {name: local, window: 8}
        return _named(str(entry["name"]), dict(entry), where)
    for key in entry:
        if key not in KEYS:
            hint = did_you_mean(str(key), list(KEYS))
            raise ConfigError(f"{where} has no key {key!r}{hint}; keys: {', '.join(KEYS)}")
    return {k: v for k, v in entry.items() if v is not None}


def _named(name: str, spec: Any, where: str) -> dict[str, Any]:
    """A layer named by its component: a token mixer (other than plain `attention`) or else an attention kernel."""
    kernels, mixers = available("attention"), [m for m in available("mixer") if m != "attention"]
    if name in mixers and name not in kernels:
        return {"mixer": spec}
    if name not in kernels:
        raise ConfigError(
            f"{where}: {name!r} is neither an attention nor a mixer{did_you_mean(name, kernels + mixers)}; "
            f"attention: {', '.join(kernels)}; mixers: {', '.join(mixers)} "
            f"(a plugin's components need plugins=[path/to/plugin.py])"
        )
    return {"attention": spec}


def summary(plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plan as plain data for the run's config and `mode=info`: attention names with their options."""

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (str, int, float, bool)) or value is None:
            return value
        return type(value).__name__

    def shown(layer: dict[str, Any]) -> dict[str, Any]:
        skip = {"attention"} if layer.get("mixer") is not None else set()  # a mixer replaces the self-attention
        return {k: plain(v) for k, v in layer.items() if v is not None and k not in skip}

    return [shown(layer) for layer in plan]


def layer_encodings(
    plan: list[dict[str, Any]],
    model_spec: Any,
    model_encoding: Any,
    model_heads: int,
    build: Any,
    *,
    where: str = "model.layers",
) -> dict[int, Any]:
    """The layers that need a positional encoding of their own, built by `build(spec, heads)`: the one their entry
    names, or the model's built again for a layer with other heads when it works inside attention."""
    out = {}
    for i, layer in enumerate(plan):
        spec = layer.get("pos_enc")
        if spec is None and layer["heads"] != model_heads and acts_in_attention(model_encoding):
            spec = model_spec
        if spec is None:
            continue
        encoding = build(spec, layer["heads"])
        if adds_to_tokens(encoding):
            name = spec if isinstance(spec, str) else dict(spec).get("name")
            raise ConfigError(
                f"{where}[{i}].pos_enc={name} is added to the tokens once, before the first layer, so it cannot "
                f"change per layer; per layer use rope, alibi, t5 or none (and pos_enc= for the tokens)"
            )
        out[i] = encoding
    return out


class LayerEncodings(nn.Module):
    """The positional encoding each layer of a stack uses inside attention: its own (registered here, so that it
    trains and is saved) or the stack's (held, not registered: the model owns it)."""

    def __init__(self, shared: nn.Module, own: dict[int, nn.Module], depth: int) -> None:
        super().__init__()
        self.own = nn.ModuleDict({str(i): encoding for i, encoding in own.items()})
        self.__dict__["shared"] = shared
        self.depth = depth

    def of(self, layer: int) -> nn.Module:
        key = str(layer)
        return self.own[key] if key in self.own else self.shared  # noqa: SIM401  (ModuleDict has no get)

    def biases(self, nq: int, nk: int) -> list[Tensor | None]:
        """Each layer's score bias `[1, H, nq, nk]` (or None), computed once per encoding."""
        computed: dict[int, Tensor | None] = {}
        out = []
        for layer in range(self.depth):
            encoding = self.of(layer)
            if id(encoding) not in computed:
                computed[id(encoding)] = encoding.score_bias(nq, nk)
            out.append(computed[id(encoding)])
        return out
