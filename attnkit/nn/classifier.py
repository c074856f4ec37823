"""Sequence classifier: token embeddings → pre-norm encoder → pooling (mean of the real tokens, or a class token)
→ linear head. The model of long-sequence benchmarks such as the Long Range Arena's ListOps."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import torch
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn import rates
from attnkit.nn.capabilities import head_dim
from attnkit.nn.layers import summary
from attnkit.nn.stack import encoder_stack, plan_stack
from attnkit.ranges import NonNegativeInt, PositiveInt, Range, Rate
from attnkit.registry import build_spec, register


@register("model", "classifier")
class SequenceClassifier(nn.Module):
    """Encoder over token sequences with a classification head, from registered attention, pos_enc, norm and ffn.

    `max_len` bounds the tokens of a sequence (the class token not counted); `pool`: `mean` over the non-padding
    tokens or `cls` (a learned token in front). Token embeddings are initialised with std dim^-½ and scaled by √dim.
    """

    def __init__(
        self,
        vocab_size: PositiveInt,
        num_classes: PositiveInt,
        *,
        pad_id: NonNegativeInt = 0,
        dim: PositiveInt = 64,
        depth: PositiveInt = 2,
        heads: PositiveInt = 4,
        kv_heads: PositiveInt | None = None,
        qk_norm: str | None = None,
        max_len: Annotated[int, Range(1), "the longest sequence, in tokens"] = 1024,
        pool: Literal["mean", "cls"] = "mean",
        dropout: Rate = 0.1,
        drop_path: Rate = 0.0,
        attention: Any = "softmax",
        pos_enc: Any = "sinusoidal",
        norm: Any = "layernorm",
        ffn: Any = "mlp",
        layers: Any = None,
    ) -> None:
        """`layers`: per-layer attention, heads, kv_heads and rotary/bias pos_enc (see attnkit.nn.layers)."""
        super().__init__()
        for key, value in (("vocab_size", vocab_size), ("num_classes", num_classes), ("dim", dim), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"model.{key}={value!r} must be a positive integer")
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len <= 0:
            raise ConfigError(f"model.max_len={max_len!r} must be a positive integer (the longest sequence)")
        if pool not in ("mean", "cls"):
            raise ConfigError(f"model.pool={pool!r} is not a pooling; choose 'mean' or 'cls'")
        self.pool, self.max_len, self.pad_id, self.dim = pool, max_len, pad_id, dim
        n_tokens = max_len + (pool == "cls")
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        pos_enc = "none" if pos_enc is None else pos_enc

        def encoding(spec: Any, layer_heads: int) -> Any:
            context = {"dim": dim, "heads": layer_heads, "head_dim": head_dim(dim, layer_heads), "max_len": n_tokens}
            return build_spec("pos_enc", spec, **context, causal=False)

        self.pos_enc = encoding(pos_enc, heads)
        defaults = {"attention": attention, "heads": heads, "kv_heads": kv_heads}
        plan = plan_stack(depth, layers, defaults, pos_enc, self.pos_enc, encoding)
        self.layer_pos_enc = plan.encodings
        self.plan = summary(plan.layers)
        self.blocks = encoder_stack(
            plan,
            dim,
            drop_path=drop_path,
            qk_norm=qk_norm,
            ffn=ffn,
            norm=norm,
            dropout=dropout,
            key_padding=True,
            max_keys=n_tokens,
            where="model",
        )
        self.norm = build_spec("norm", norm, dim=dim)
        self.head = nn.Linear(dim, num_classes)
        self.dropout = rates.dropout("model.dropout", dropout)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.embed.weight, std=dim**-0.5)
        with torch.no_grad():
            self.embed.weight[pad_id].zero_()
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, tokens: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """tokens `[B, N]`, padding_mask `[B, N]` (True = padding; None: tokens == pad_id) -> logits `[B, classes]`."""
        if tokens.dim() != 2:
            raise ConfigError(f"tokens must be [B, N]; got shape {tuple(tokens.shape)}")
        if tokens.shape[1] > self.max_len:
            raise ConfigError(
                f"a sequence of {tokens.shape[1]} tokens exceeds model.max_len={self.max_len}; "
                f"raise model.max_len or cut the sequences (data.max_source_len)"
            )
        mask = tokens.eq(self.pad_id) if padding_mask is None else padding_mask.bool()
        x = self.embed(tokens) * math.sqrt(self.dim)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
            mask = torch.cat([mask.new_zeros(mask.shape[0], 1), mask], dim=1)
        x = self.dropout(self.pos_enc.add_to_tokens(x))
        keys_mask = mask if mask.any() else None  # no padding: the kernels' unmasked fast paths
        biases = self.layer_pos_enc.biases(x.shape[1], x.shape[1])
        x = self.norm(self.blocks(x, biases=biases, key_padding_mask=keys_mask))
        if self.pool == "cls":
            return self.head(x[:, 0])
        keep = (~mask).unsqueeze(-1).to(x.dtype)
        return self.head((x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0))
