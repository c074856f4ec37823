"""`mode=info`: what a configured model costs before it trains: parameters per component, FLOPs per sample, and the
activation and attention memory that training keeps for the backward pass, per layer.

Parameters are counted on the built model; FLOPs on one forward pass of one sample, counting what torch's
FlopCounterMode counts (matrix products, convolutions, scaled dot-product attention) at the level of torch's
functions, which needs none of the seconds that FlopCounterMode's first use takes to import torch._dynamo; memory by
recording every tensor the forward pass saves for the backward pass (saved_tensors_hooks, each storage counted once),
attributed to the layer that saved it, for one sample and scaled by the batch size. Weights, their gradients and
AdamW's two moments add 4 × the parameters' bytes.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from attnkit.nn.attention.base import Attention
from attnkit.nn.capabilities import component_name
from attnkit.nn.multihead import MultiHeadAttention


def parameters_by_component(model: nn.Module) -> dict[str, int]:
    """Parameters of each top-level component (blocks one by one); shared parameters counted where first seen."""
    seen: set[int] = set()
    out: dict[str, int] = {}
    for name, child in _components(model):
        count = 0
        for p in child.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                count += p.numel()
        out[name] = count
    out["(model's own)"] = sum(p.numel() for p in model.parameters(recurse=False) if id(p) not in seen)
    return {k: v for k, v in out.items() if v}


def _components(model: nn.Module) -> list[tuple[str, nn.Module]]:
    out = []
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleList):
            out.extend((f"{name}.{i}", block) for i, block in enumerate(child))
        else:
            out.append((name, child))
    return out


def _component_of(name: str, components: list[str]) -> str | None:
    """The component (top-level child, or block) that module `name` belongs to."""
    for component in components:
        if name == component or name.startswith(component + "."):
            return component
    return None


def _product_flops(a: Tensor, b: Tensor, out: Tensor) -> int:
    """A (batched, broadcast) matrix product: 2 x the output's elements x the contracted length."""
    return 2 * out.numel() * a.shape[-1]


def _einsum_flops(equation: str, *operands: Any) -> int:
    """A contraction of operands taken two by two, left to right, as einsum's decomposition into products does:
    2 x the product of the sizes of every index the pair involves."""
    operands = tuple(operands[0]) if len(operands) == 1 and isinstance(operands[0], (list, tuple)) else operands
    inputs, _, output = equation.replace(" ", "").partition("->")
    terms = inputs.split(",")
    if len(terms) < 2 or "." in equation:
        return 0
    sizes = {c: n for term, x in zip(terms, operands, strict=False) for c, n in zip(term, x.shape, strict=False)}
    total, left = 0, terms[0]
    for i, right in enumerate(terms[1:], start=2):
        total += 2 * math.prod(sizes[c] for c in set(left) | set(right))
        later = set(output).union(*terms[i:])  # the indices still needed after this pair
        left = "".join(c for c in dict.fromkeys(left + right) if c in later)
    return total


def _flops(name: str, args: tuple, kwargs: dict, out: Any) -> int:
    """FLOPs of one call of the torch function `name` (0 for what FlopCounterMode does not count either)."""
    if name in ("linear",):
        x, weight = args[0], args[1] if len(args) > 1 else kwargs["weight"]
        return 2 * x.numel() * weight.shape[0]
    if name in ("matmul", "__matmul__", "mm", "bmm"):
        return _product_flops(args[0], args[1], out)
    if name in ("addmm", "baddbmm"):
        return _product_flops(args[1], args[2], out)
    if name in ("conv1d", "conv2d", "conv3d"):
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        return 2 * out.numel() * math.prod(weight.shape[1:])
    if name == "scaled_dot_product_attention":
        q, k, v = args[:3]
        return 2 * q.shape[:-1].numel() * k.shape[-2] * (q.shape[-1] + v.shape[-1])
    if name == "einsum":
        return _einsum_flops(*args)
    return 0


class _FlopCount(TorchFunctionMode):
    """Adds the FLOPs of each torch function called (see `_flops`) to the component `where()` names."""

    def __init__(self, where: Callable[[], str | None]) -> None:
        super().__init__()
        self.where = where
        self.total = 0
        self.per: dict[str, int] = defaultdict(int)

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        flops = _flops(getattr(func, "__name__", ""), args, kwargs, out)
        if flops:
            self.total += flops
            if (component := self.where()) is not None:
                self.per[component] += flops
        return out


@contextlib.contextmanager
def _tracking(model: nn.Module) -> Iterator[Callable[[], tuple[str | None, bool]]]:
    """While open, a function giving (the component whose forward is running, whether an attention kernel is)."""
    components = [name for name, _ in _components(model)]
    stack: list[tuple[str | None, bool]] = []

    def enter(name: str, kernel: bool) -> Callable:
        def hook(module: nn.Module, args: Any) -> None:
            stack.append((_component_of(name, components), kernel))

        return hook

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        stack.pop()

    hooks = []
    for name, module in model.named_modules():
        if name:
            hooks.append(module.register_forward_pre_hook(enter(name, isinstance(module, Attention))))
            hooks.append(module.register_forward_hook(leave))

    def where() -> tuple[str | None, bool]:
        component = next((c for c, _ in reversed(stack) if c), None)
        return component, any(kernel for _, kernel in stack)

    try:
        yield where
    finally:
        for hook in hooks:
            hook.remove()


def flops_by_layer(model: nn.Module, run: Callable[[], Any]) -> tuple[int, dict[str, int]]:
    """(total FLOPs, FLOPs per component) of `run()`, a forward pass through `model`."""
    with _tracking(model) as where, torch.no_grad():
        counter = _FlopCount(lambda: where()[0])
        with counter:
            run()
    return counter.total, dict(counter.per)


def saved_memory_by_layer(model: nn.Module, run: Callable[[], Tensor]) -> tuple[int, dict[str, int], dict[str, int]]:
    """(total bytes, bytes per component, of which bytes inside attention kernels) that the forward pass `run()`
    keeps for the backward pass; each storage counted once, parameters not at all."""
    per: dict[str, int] = defaultdict(int)
    attention: dict[str, int] = defaultdict(int)
    seen = {p.untyped_storage().data_ptr() for p in model.parameters()}
    with _tracking(model) as where:

        def pack(t: Tensor) -> Tensor:
            storage = t.untyped_storage()
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                component, in_kernel = where()
                component = component or "(model's own)"
                per[component] += storage.nbytes()
                if in_kernel:
                    attention[component] += storage.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            run()
    return sum(per.values()), dict(per), dict(attention)


def mixer_of(block: nn.Module) -> tuple[str, str]:
    """(the token mixer of a block, its decoding state per sequence): a mixer's fixed state in numbers, or multi-head
    attention's key/value cache, which grows with every token ("" for a component that is no block)."""
    mixer = getattr(block, "attn", None) or getattr(block, "self_attn", None)
    if mixer is None:
        return "", ""
    if isinstance(mixer, MultiHeadAttention):
        kernel = component_name(mixer.attention, "attention")
        if not mixer.causal:  # an encoder's: nothing is decoded
            return kernel, ""
        if mixer.recurrent:
            return kernel, "recurrent state"
        return kernel, f"{2 * mixer.kv_heads * mixer.head_dim:,} per token"
    size = mixer.state_size() if hasattr(mixer, "state_size") and getattr(mixer, "causal", False) else None
    return component_name(mixer, "mixer"), "" if size is None else f"{size:,} fixed"


def describe(model: nn.Module, sample: Callable[[], Tensor], batch_size: int) -> dict[str, Any]:
    """Parameters, FLOPs per sample and training memory at `batch_size` of `model` on `sample()` (one sample's
    forward pass returning the output)."""
    params = parameters_by_component(model)
    total_params = sum(p.numel() for p in model.parameters())
    model.eval()
    flops, flops_per = flops_by_layer(model, sample)
    model.train()
    saved, saved_per, attention_per = saved_memory_by_layer(model, sample)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    rows = []
    blocks = dict(_components(model))
    for name in params.keys() | flops_per.keys() | saved_per.keys():
        mixer, state = mixer_of(blocks[name]) if name in blocks else ("", "")
        rows.append(
            {
                "component": name,
                "mixer": mixer,
                "decoding_state": state,
                "params": params.get(name, 0),
                "flops_per_sample": flops_per.get(name, 0),
                "activation_mb": round(saved_per.get(name, 0) * batch_size / 2**20, 2),
                "attention_mb": round(attention_per.get(name, 0) * batch_size / 2**20, 2),
            }
        )
    order = {name: i for i, (name, _) in enumerate(_components(model))}
    rows.sort(key=lambda r: order.get(r["component"], len(order)))
    return {
        "params": total_params,
        "flops_per_sample": int(flops),
        "batch_size": batch_size,
        "activation_mb": round(saved * batch_size / 2**20, 1),
        "weights_grads_adam_mb": round(4 * weight_bytes / 2**20, 1),
        "estimated_training_mb": round((saved * batch_size + 4 * weight_bytes) / 2**20, 1),
        "layers": rows,
    }
