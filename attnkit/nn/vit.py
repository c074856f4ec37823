"""Vision Transformer (Dosovitskiy et al. 2021): patches → tokens → pre-norm encoder → class token or mean."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn import rates
from attnkit.nn.capabilities import head_dim
from attnkit.nn.layers import summary
from attnkit.nn.pos_enc.base import PositionalEncoding
from attnkit.nn.stack import encoder_stack, plan_stack
from attnkit.ranges import PositiveInt, Range, Rate
from attnkit.registry import build_spec, register


def _pair(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class PatchEmbed(nn.Module):
    """`patch_size` patches every `stride` pixels, linearly embedded: `[B, C, H, W]` -> `[B, gh · gw, dim]`.

    stride = patch_size (the default) gives ViT's non-overlapping patches; a smaller stride gives overlapping
    patches, padded by (patch_size - stride) / 2 so that the grid is H / stride × W / stride.
    `stem="conv"`: a convolutional stem instead (Xiao et al. 2021, "Early convolutions help transformers see
    better"): log2(stride) 3×3 convolutions of stride 2, each with batch norm and ReLU, channels doubling up to `dim`
    (dim / 2, dim for stride 4), then a 1×1 convolution to `dim`; the same grid, `patch_size` unused. The stride must
    be a power of two.
    """

    def __init__(
        self,
        image_size: int | tuple[int, int],
        patch_size: int,
        in_channels: PositiveInt,
        dim: int,
        stride: int | None = None,
        stem: Literal["patch", "conv"] = "patch",
    ) -> None:
        super().__init__()
        h, w = _pair(image_size)
        stride = patch_size if stride is None else stride
        if stride <= 0 or patch_size < stride or (patch_size - stride) % 2:
            raise ConfigError(
                f"model.patch_stride={stride} must be positive, at most model.patch_size={patch_size}"
                f" and differ from it by an even number"
            )
        if patch_size <= 0 or h % stride or w % stride:
            sizes = [p for p in range(1, min(h, w) + 1) if h % p == 0 and w % p == 0]
            raise ConfigError(
                f"model.patch_size={patch_size} (stride {stride}) must divide the image size "
                f"{h}x{w}; choose one of {sizes}"
            )
        self.grid = (h // stride, w // stride)
        if stem == "patch":
            self.proj: nn.Module = nn.Conv2d(
                in_channels, dim, kernel_size=patch_size, stride=stride, padding=(patch_size - stride) // 2
            )
        elif stem == "conv":
            self.proj = conv_stem(in_channels, dim, stride)
        else:
            raise ConfigError(f"model.stem={stem!r} is not a stem; choose 'patch' or 'conv'")

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


def conv_stem(in_channels: int, dim: int, stride: int) -> nn.Sequential:
    """3×3 convolutions of stride 2 (batch norm, ReLU) down to `stride`, then 1×1 to `dim`: `[B, C, H, W]` ->
    `[B, dim, H / stride, W / stride]`."""
    layers = stride.bit_length() - 1
    if stride < 2 or 1 << layers != stride:
        raise ConfigError(
            f"model.stem=conv needs a patch stride that is a power of two (2, 4, 8, ...), not {stride}; "
            f"set model.patch_size (or model.patch_stride) to one, or use model.stem=patch"
        )
    modules: list[nn.Module] = []
    channels = in_channels
    for i in range(layers):
        out = max(8, dim >> (layers - 1 - i))
        modules += [nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
        channels = out
    return nn.Sequential(*modules, nn.Conv2d(channels, dim, kernel_size=1))


@register("model", "vit")
class ViT(nn.Module):
    """Vision Transformer for image classification, built from registered attention, pos_enc, norm and ffn."""

    def __init__(
        self,
        image_size: int | tuple[int, int],
        in_channels: int,
        num_classes: PositiveInt,
        *,
        patch_size: Annotated[int, Range(1), "the side of a square patch in pixels"] = 2,
        patch_stride: PositiveInt | None = None,
        stem: Literal["patch", "conv"] = "patch",
        dim: PositiveInt = 64,
        depth: PositiveInt = 4,
        heads: PositiveInt = 4,
        kv_heads: PositiveInt | None = None,
        qk_norm: str | None = None,
        pool: Literal["cls", "mean"] = "cls",
        norm_after_pool: bool = False,
        dropout: Rate = 0.0,
        drop_path: Rate = 0.0,
        attention: Any = "softmax",
        pos_enc: Any = "learned",
        norm: Any = "layernorm",
        ffn: Any = "mlp",
        layers: Any = None,
    ) -> None:
        """`stem`: `patch` (ViT's linear patch embedding) or `conv` (a convolutional stem, see `PatchEmbed`).
        `layers`: per-layer attention, heads, kv_heads and rotary/bias pos_enc (see attnkit.nn.layers).

        `norm_after_pool`: apply the final norm to the pooled vector instead of to every token before pooling (timm's
        `fc_norm`, its default for mean pooling); the same parameter (`norm`) either way, and no change for pool='cls'.
        """
        super().__init__()
        if depth <= 0 or dim <= 0:
            raise ConfigError(f"model.depth={depth} and model.dim={dim} must be positive")
        if pool not in ("cls", "mean"):
            raise ConfigError(f"model.pool={pool!r} is not a pooling; choose 'cls' or 'mean'")
        self.pool, self.num_classes, self.norm_after_pool = pool, num_classes, bool(norm_after_pool)
        self.patch_embed = PatchEmbed(image_size, patch_size, in_channels, dim, stride=patch_stride, stem=stem)
        n_tokens = self.patch_embed.grid[0] * self.patch_embed.grid[1] + (pool == "cls")
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        pos_enc = "none" if pos_enc is None else pos_enc

        def encoding(spec: Any, layer_heads: int) -> PositionalEncoding:
            return build_spec(
                "pos_enc",
                spec,
                dim=dim,
                heads=layer_heads,
                head_dim=head_dim(dim, layer_heads),
                max_len=n_tokens,
                grid=self.patch_embed.grid,
                prefix_tokens=int(pool == "cls"),
            )

        self.pos_enc = encoding(pos_enc, heads)
        defaults = {"attention": attention, "heads": heads, "kv_heads": kv_heads}
        plan = plan_stack(depth, layers, defaults, pos_enc, self.pos_enc, encoding)
        self.layer_pos_enc = plan.encodings  # no parameters unless a layer has its own
        self.plan = summary(plan.layers)
        self.blocks = encoder_stack(
            plan, dim, drop_path=drop_path, qk_norm=qk_norm, ffn=ffn, norm=norm, dropout=dropout, max_keys=n_tokens
        )
        self.norm = build_spec("norm", norm, dim=dim)
        self.head = nn.Linear(dim, num_classes)
        self.dropout = rates.dropout("model.dropout", dropout)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(_init_weights)

    def tokens(self, images: Tensor) -> Tensor:
        """`[B, C, H, W]` -> tokens `[B, N, dim]`, positions applied (class token first when pool='cls')."""
        return self.embed(images)[0]

    def embed(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """(`tokens`'s tokens `[B, N, dim]`, the patch grid (gh, gw) they were laid out on)."""
        x = self.patch_embed.proj(images)  # [B, dim, gh, gw]
        grid = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        # `grid`: an image of another size moves encodings laid out on the patch grid (or they refuse, with the fix)
        return self.dropout(self.pos_enc.add_to_tokens(x, grid=grid)), grid

    def forward(self, images: Tensor) -> Tensor:
        """`[B, C, H, W]` -> logits `[B, num_classes]`."""
        x = self.tokens(images)
        x = self.blocks(x, biases=self.layer_pos_enc.biases(x.shape[1], x.shape[1]))
        if self.norm_after_pool:
            return self.head(self.norm(x[:, 0] if self.pool == "cls" else x.mean(dim=1)))
        x = self.norm(x)
        return self.head(x[:, 0] if self.pool == "cls" else x.mean(dim=1))

    @torch.no_grad()
    def attention_maps(self, images: Tensor) -> Tensor:
        """Last block's attention from the class token (or the mean query) to each patch: `[B, H, gh, gw]`."""
        x = self.tokens(images)
        biases = self.layer_pos_enc.biases(x.shape[1], x.shape[1])
        x = self.blocks[:-1](x, biases=biases[:-1])
        last, bias = self.blocks[-1], biases[-1]
        _, weights = last.attn(last.norm1(x), bias=bias, need_weights=True)  # [B, H, N, N]
        rows = weights[:, :, 0, 1:] if self.pool == "cls" else weights.mean(dim=2)
        return rows.reshape(rows.shape[0], rows.shape[1], *self.patch_embed.grid)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
