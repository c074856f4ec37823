"""Segmenter (Strudel et al. 2021): the ViT encoder as it is, its patch tokens decoded to class scores per patch by a
registered `seg_decoder`, upsampled bilinearly to the image."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch.nn.functional as F
from torch import Tensor

from attnkit.nn.vit import ViT
from attnkit.ranges import PositiveInt, Range, Rate
from attnkit.registry import build_spec, register


@register("model", "segmenter")
class Segmenter(ViT):
    """A ViT encoder (any attention, mixer, positional encoding, stem or patch stride; `layers` per layer) without a
    class token, and a decoder (`seg_decoder`: `linear` or `mask_transformer`, or a plugin's) from its normalised
    patch tokens to per-pixel class scores: `[B, C, H, W]` -> `[B, num_classes, H, W]`."""

    def __init__(
        self,
        image_size: int | tuple[int, int],
        in_channels: int,
        num_classes: PositiveInt,
        *,
        patch_size: Annotated[int, Range(1), "the side of a square patch in pixels"] = 8,
        patch_stride: PositiveInt | None = None,
        stem: Literal["patch", "conv"] = "patch",
        dim: PositiveInt = 96,
        depth: PositiveInt = 4,
        heads: PositiveInt = 4,
        kv_heads: PositiveInt | None = None,
        qk_norm: str | None = None,
        dropout: Rate = 0.0,
        drop_path: Rate = 0.0,
        attention: Any = "softmax",
        pos_enc: Any = "learned",
        norm: Any = "layernorm",
        ffn: Any = "mlp",
        layers: Any = None,
        seg_decoder: Any = "linear",
    ) -> None:
        super().__init__(
            image_size,
            in_channels,
            num_classes,
            patch_size=patch_size,
            patch_stride=patch_stride,
            stem=stem,
            dim=dim,
            depth=depth,
            heads=heads,
            kv_heads=kv_heads,
            qk_norm=qk_norm,
            pool="mean",  # no class token: every token is a patch
            dropout=dropout,
            drop_path=drop_path,
            attention=attention,
            pos_enc=pos_enc,
            norm=norm,
            ffn=ffn,
            layers=layers,
        )
        self.head = build_spec("seg_decoder", seg_decoder, in_dim=dim, num_classes=num_classes, heads=heads)

    def forward(self, images: Tensor) -> Tensor:
        """`[B, C, H, W]` -> class scores `[B, num_classes, H, W]`."""
        x, grid = self.embed(images)  # [B, gh * gw, dim]
        x = self.norm(self.blocks(x, biases=self.layer_pos_enc.biases(x.shape[1], x.shape[1])))
        scores = self.head(x, grid)  # [B, K, gh, gw]
        return F.interpolate(scores, size=images.shape[-2:], mode="bilinear", align_corners=False)
