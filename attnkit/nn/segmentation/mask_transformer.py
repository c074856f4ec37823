"""Segmenter's mask transformer (Strudel et al. 2021, section 3.2): a learnt embedding per class joins the patch
tokens in a few transformer layers; each class's mask is the scalar product of the (L2-normalised) patch and class
embeddings that come out."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.nn.block import EncoderBlock
from attnkit.nn.capabilities import head_dim
from attnkit.ranges import PositiveInt, Rate
from attnkit.registry import build_spec, register


@register("seg_decoder", "mask_transformer")
class MaskTransformer(nn.Module):
    """`[B, N, in_dim]` patch tokens on a `grid` (gh, gw) -> class scores `[B, num_classes, gh, gw]`.

    The tokens are projected to `dim` (null: the encoder's width), `num_classes` class embeddings are appended, and
    `layers` pre-norm blocks run over all of them: `heads` heads (null: the encoder's, which the model passes, else
    1), registered `attention`, `ffn` and `norm`. Masks: the normalised patch embeddings times the normalised class
    embeddings, `[B, N, K]`, then a layer norm over the classes (as in Segmenter)."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        *,
        dim: PositiveInt | None = None,
        layers: PositiveInt = 2,
        heads: PositiveInt | None = None,
        attention: Any = "softmax",
        ffn: Any = "mlp",
        norm: Any = "layernorm",
        dropout: Rate = 0.0,
        drop_path: Rate = 0.0,
    ) -> None:
        super().__init__()
        dim = in_dim if dim is None else dim
        heads = 1 if heads is None else heads
        head_dim(dim, heads, where="seg_decoder")  # heads must divide dim: one line naming both
        self.proj_in = nn.Linear(in_dim, dim)
        self.classes = nn.Parameter(torch.zeros(1, num_classes, dim))
        rates = torch.linspace(0, drop_path, layers).tolist()
        self.blocks = nn.ModuleList(
            EncoderBlock(
                dim,
                heads,
                attention=attention,
                ffn=ffn,
                norm=norm,
                dropout=dropout,
                drop_path=rate,
                where="model.seg_decoder",
            )
            for rate in rates
        )
        self.norm = build_spec("norm", norm, dim=dim)
        self.proj_patch = nn.Linear(dim, dim, bias=False)
        self.proj_classes = nn.Linear(dim, dim, bias=False)
        self.mask_norm = nn.LayerNorm(num_classes)
        nn.init.trunc_normal_(self.classes, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, tokens: Tensor, grid: tuple[int, int]) -> Tensor:
        n = tokens.shape[1]
        x = torch.cat([self.proj_in(tokens), self.classes.expand(tokens.shape[0], -1, -1)], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        patches = F.normalize(self.proj_patch(x[:, :n]), dim=-1)  # [B, N, dim]
        classes = F.normalize(self.proj_classes(x[:, n:]), dim=-1)  # [B, K, dim]
        masks = self.mask_norm(patches @ classes.transpose(1, 2))  # [B, N, K]
        return masks.transpose(1, 2).reshape(tokens.shape[0], -1, *grid)
