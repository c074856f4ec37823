"""Test-time views: an image and its copies moved by a few pixels, classified together."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def shifted_views(images: Tensor, shift: int) -> Tensor:
    """The images, then their copies moved `shift` pixels down, up, right and left (edge pixels repeated, as the
    training shifts do): `[B, C, H, W]` -> `[5, B, C, H, W]`, the unmoved images first."""
    s = int(shift)
    h, w = images.shape[-2:]
    padded = F.pad(images, (s, s, s, s), mode="replicate")
    corners = [(s, s), (0, s), (2 * s, s), (s, 0), (s, 2 * s)]  # (top, left) of each view in the padded images
    return torch.stack([padded[..., y : y + h, x : x + w] for y, x in corners])


def view_logits(model: nn.Module, images: Tensor, shift: int) -> Tensor:
    """`model`'s logits for each view of `shifted_views`, in one batch: `[B, C, H, W]` -> `[V, B, classes]` (one
    view, the images themselves, when `shift` is 0)."""
    if shift <= 0:
        return model(images)[None]
    views = shifted_views(images, shift)
    return model(views.flatten(0, 1)).unflatten(0, views.shape[:2])


def mean_log_probs(logits: Tensor) -> Tensor:
    """The log of the views' mean probabilities: `[V, B, classes]` -> `[B, classes]`."""
    return logits.log_softmax(dim=-1).logsumexp(dim=0) - math.log(logits.shape[0])
