"""Weights from elsewhere into attnkit's models, one module per source: timm's VisionTransformer (`timm_vit`),
`torch.nn.Transformer` (`torch_transformer`), and `transplant` for any state dict whose names fit. `rename` holds the
steps both foreign layouts share."""

from attnkit.interop.timm_vit import TimmVitFacts, is_timm_vit, timm_vit_facts, timm_vit_state_dict, vit_from_timm
from attnkit.interop.torch_transformer import torch_transformer_state_dict, transformer_from_torch
from attnkit.interop.transplant import TransplantReport, transplant

__all__ = [
    "TimmVitFacts",
    "TransplantReport",
    "is_timm_vit",
    "timm_vit_facts",
    "timm_vit_state_dict",
    "torch_transformer_state_dict",
    "transformer_from_torch",
    "transplant",
    "vit_from_timm",
]
