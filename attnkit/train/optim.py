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


def adamw(groups: list[dict], lr: float, betas: tuple[float, float]) -> torch.optim.AdamW:
    """AdamW on its fused kernel where every parameter allows it (floating point, on the CPU or a CUDA device).

    PyTorch does not choose the fused (or even the multi-tensor) kernel on the CPU by itself: it loops over the
    parameters in Python. On the digits ViT (72 parameters) a step measured 1.0 ms fused against 4.5 ms looped
    (2 cores), about a tenth of the model's training step. The update is the same up to rounding.
    """
    params = [p for group in groups for p in group["params"]]
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused or None)
