"""AdamW on its fused kernel, with parameter groups: no weight decay on biases, norm scales, class tokens and learned
position tables."""

from __future__ import annotations

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: matrices (token embeddings included) decay; one-dimensional parameters (biases, norm
    scales), the class token and learned position tables do not."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        skip = param.ndim <= 1 or name.endswith(("cls_token", "pos_enc.weight"))
        (no_decay if skip else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def adamw(
    groups: list[dict], lr: float, betas: tuple[float, float], mixed_precision: bool = False
) -> torch.optim.AdamW:
    """AdamW on its fused kernel where every parameter allows it (floating point, on the CPU or a CUDA device), else
    (or under Lightning's mixed precision, which cannot clip the gradients of a fused optimizer) its multi-tensor one.

    PyTorch does not choose either kernel on the CPU by itself: it loops over the parameters in Python. On the digits
    ViT (72 parameters) a step measured 1.0 ms fused, 3.2 ms multi-tensor and 4.5 ms looped (2 cores), against about
    18 ms for the model's forward and backward. The update is the same up to rounding.
    """
    params = [p for group in groups for p in group["params"]]
    plain = bool(params) and all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
    kernel = {"fused": True} if plain and not mixed_precision else {"foreach": True} if plain else {}
    return torch.optim.AdamW(groups, lr=lr, betas=betas, **kernel)
