"""`mode=info`: what a configured model costs before it trains: parameters per component, FLOPs per sample, and the
activation and attention memory that training keeps for the backward pass, per layer.

Parameters are counted on the built model; FLOPs with torch's FlopCounterMode on one forward pass of one sample;
memory by recording every tensor the forward pass saves for the backward pass (saved_tensors_hooks, each storage
counted once), attributed to the layer that saved it, for one sample and scaled by the batch size. Weights, their
gradients and AdamW's two moments add 4 × the parameters' bytes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

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


def flops_by_layer(model: nn.Module, run: Callable[[], Any]) -> tuple[int, dict[str, int]]:
    """(total FLOPs, FLOPs per component) of `run()`, a forward pass through `model`."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        run()
    counts = {
        key.split(".", 1)[1]: int(sum(ops.values())) for key, ops in counter.get_flop_counts().items() if "." in key
    }
    components = [name for name, _ in _components(model)]
    per: dict[str, int] = defaultdict(int)
    for key, flops in counts.items():
        component = _component_of(key, components)
        parent = key.rsplit(".", 1)[0] if "." in key else None
        # a module's count includes its children's: count the outermost modules of each component only
        if component and not (parent and _component_of(parent, components) == component and parent in counts):
            per[component] += flops
    return counter.get_total_flops(), dict(per)


def saved_memory_by_layer(model: nn.Module, run: Callable[[], Tensor]) -> tuple[int, dict[str, int], dict[str, int]]:
    """(total bytes, bytes per component, of which bytes inside attention kernels) that the forward pass `run()`
    keeps for the backward pass; each storage counted once, parameters not at all."""
    components = [name for name, _ in _components(model)]
    stack: list[str] = []
    in_kernel: list[bool] = []
    per: dict[str, int] = defaultdict(int)
    attention: dict[str, int] = defaultdict(int)
    seen = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def enter(name: str, kernel: bool) -> Callable:
        def hook(module: nn.Module, args: Any) -> None:
            stack.append(name)
            in_kernel.append(kernel)

        return hook

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        stack.pop()
        in_kernel.pop()

    hooks = []
    for name, module in model.named_modules():
        if name:
            hooks.append(module.register_forward_pre_hook(enter(name, isinstance(module, Attention))))
            hooks.append(module.register_forward_hook(leave))

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            component = next((c for n in reversed(stack) if (c := _component_of(n, components))), "(model's own)")
            per[component] += storage.nbytes()
            if any(in_kernel):
                attention[component] += storage.nbytes()
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            run()
    finally:
        for hook in hooks:
            hook.remove()
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
