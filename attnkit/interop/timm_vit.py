"""timm's VisionTransformer into attnkit's `vit`: `vit_from_timm(model_or_state_dict, ...)` builds the ViT with the
same function (same logits, float32, eval); `timm_vit_state_dict` only renames (and splits, folds) timm's weights into
attnkit's names. What attnkit's ViT cannot express exactly is refused with one `ConfigError` line naming the feature.
Plain PyTorch: timm is imported only to recognise a timm model object.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.interop.rename import split_qkv, zero_missing_biases
from attnkit.interop.transplant import transplant
from attnkit.nn.vit import ViT

_TIMM_UNSUPPORTED = (
    (r"reg_token$", "register tokens (reg_tokens > 0)"),
    (r"dist_token$|head_dist\.", "a distillation token (DeiT distilled)"),
    (r"norm_pre\.", "a norm before the blocks (pre_norm=True)"),
    (r"attn_pool\.", "attention pooling (global_pool='map' or 'prr')"),
    (r"patch_embed\.norm\.", "a norm after the patch embedding (embed_norm_layer)"),
    (r"blocks\.\d+\.attn\.norm\.", "a norm inside attention (scale_attn_norm=True)"),
    (r"blocks\.\d+\.attn\.gate\.", "gated attention"),
    (r"blocks\.\d+\.mlp\.norm\.", "a norm inside the MLP (scale_mlp_norm=True)"),
)
_TIMM_RENAMES = (  # timm name (regex) -> attnkit name; qkv, proj, ls and pos_embed are handled apart
    (r"^(blocks\.\d+)\.norm([12])\.(weight|bias)$", r"\1.norm\2.\3"),
    (r"^(blocks\.\d+)\.attn\.([qk])_norm\.(weight|bias)$", r"\1.attn.\2_norm.\3"),
    (r"^(blocks\.\d+)\.mlp\.(fc[12])\.(weight|bias)$", r"\1.ffn.\2.\3"),
    (r"^(patch_embed\.proj|head)\.(weight|bias)$", r"\1.\2"),
    (r"^(?:fc_)?norm\.(weight|bias)$", r"norm.\1"),
    (r"^cls_token$", "cls_token"),
)


def is_timm_vit(state_dict: Mapping[str, Any]) -> bool:
    """Whether a state dict has the names of timm's VisionTransformer (a patch embedding and fused qkv blocks)."""
    return "patch_embed.proj.weight" in state_dict and any(
        re.fullmatch(r"blocks\.\d+\.attn\.qkv\.weight", k) for k in state_dict
    )


def timm_vit_state_dict(
    state_dict: Mapping[str, Tensor], *, no_embed_class: bool | None = None, strict: bool = True
) -> tuple[dict[str, Tensor], list[str]]:
    """(attnkit ViT state dict, notes) from a timm VisionTransformer state dict.

    qkv is split into q/k/v projections; layer scale (`ls1`, `ls2`) is folded into the output projection and `fc2`
    (the same function); `fc_norm` becomes `norm` (the ViT then needs `norm_after_pool=True` for mean pooling);
    `pos_embed` `[1, N, dim]` becomes `pos_enc.weight` `[N, dim]`, with a zero row for the class token when timm
    gives it no position (`no_embed_class`; None: guessed, true when the table is a square grid and there is a class
    token). Linear layers without bias get a zero bias. `strict`: a feature attnkit's ViT cannot express, or an
    unknown name, is refused with one line; otherwise such names are kept as they are (and dropped by `transplant`).
    """
    out: dict[str, Tensor] = {}
    notes: list[str] = []
    kept: set[str] = set()  # names passed through as they are (not strict)
    gammas = {k: v for k, v in state_dict.items() if re.fullmatch(r"blocks\.\d+\.ls[12]\.gamma", k)}
    if gammas:
        notes.append("layer scale (ls1, ls2) folded into attn.out_proj and ffn.fc2")
    for name, value in state_dict.items():
        if not isinstance(value, Tensor) or name in gammas:
            continue
        if (feature := _unsupported(name)) is not None:
            if strict:
                raise ConfigError(f"timm ViT with {feature} ({name}): attnkit's ViT has no such part")
            out[name] = value
            kept.add(name)
            continue
        if m := re.fullmatch(r"(blocks\.\d+)\.attn\.qkv\.(weight|bias)", name):
            split_qkv(out, f"{m[1]}.attn", m[2], value)
            continue
        if m := re.fullmatch(r"(blocks\.\d+)\.(attn\.proj|mlp\.fc2)\.(weight|bias)", name):
            gamma = gammas.get(f"{m[1]}.ls{1 if m[2] == 'attn.proj' else 2}.gamma")
            if gamma is not None:
                value = value * (gamma[:, None] if m[3] == "weight" else gamma)
            out[f"{m[1]}.{'attn.out_proj' if m[2] == 'attn.proj' else 'ffn.fc2'}.{m[3]}"] = value
            continue
        if name == "pos_embed":
            table = value.reshape(value.shape[-2], value.shape[-1])
            guess = "cls_token" in state_dict and math.isqrt(table.shape[0]) ** 2 == table.shape[0]
            if "cls_token" in state_dict and (guess if no_embed_class is None else no_embed_class):
                table = torch.cat([table.new_zeros(1, table.shape[1]), table])
                notes.append("the class token has no position in timm (no_embed_class): pos_enc row 0 set to zero")
            out["pos_enc.weight"] = table
            continue
        for pattern, replacement in _TIMM_RENAMES:
            if re.fullmatch(pattern, name):
                out[re.sub(pattern, replacement, name)] = value
                break
        else:
            if strict:
                raise ConfigError(f"timm ViT weight {name!r} has no place in attnkit's ViT (an unsupported variant)")
            out[name] = value
            kept.add(name)
    if any(re.fullmatch(r"blocks\.\d+\.attn\.qkv\.weight", k) for k in state_dict):
        notes.append("fused qkv split into q_proj, k_proj, v_proj")
    if "fc_norm.weight" in state_dict:
        notes.append("timm's fc_norm (on the pooled vector) is the ViT's norm: model.norm_after_pool=true places it so")
    zero_missing_biases(out, kept)
    return out, notes


def _unsupported(name: str) -> str | None:
    return next((feature for pattern, feature in _TIMM_UNSUPPORTED if re.match(pattern, name)), None)


@dataclass
class TimmVitFacts:
    """What attnkit needs to know of a timm VisionTransformer beyond its weights."""

    image_size: tuple[int, int]
    patch_size: int
    in_channels: int
    num_classes: int
    dim: int
    depth: int
    heads: int
    mlp_hidden: int
    class_token: bool = True
    global_pool: str = "token"
    fc_norm: bool = False
    qk_norm: bool = False
    pos_embed: bool = True
    no_embed_class: bool = False
    eps: float = 1e-6
    activation: str = "gelu"

    def vit_kwargs(self) -> dict[str, Any]:
        """The arguments of attnkit's ViT with the same function."""
        norm = {"name": "layernorm", "eps": self.eps}
        return {
            "image_size": self.image_size,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "patch_size": self.patch_size,
            "dim": self.dim,
            "depth": self.depth,
            "heads": self.heads,
            "qk_norm": norm if self.qk_norm else None,
            "pool": "cls" if self.global_pool == "token" else "mean",
            "norm_after_pool": self.fc_norm,
            "attention": "softmax",
            "pos_enc": "learned" if self.pos_embed else "none",
            "norm": norm,
            "ffn": {"name": "mlp", "mlp_ratio": self.mlp_hidden / self.dim, "activation": self.activation},
        }


def _refuse(feature: str) -> ConfigError:
    return ConfigError(f"timm ViT with {feature}: attnkit's ViT cannot express it (transplant() copies what fits)")


def _activation(act: nn.Module) -> str:
    name = type(act).__name__
    if name == "GELU" and getattr(act, "approximate", "none") == "none":
        return "gelu"
    if isinstance(act, (nn.ReLU, nn.SiLU)):
        return "relu" if isinstance(act, nn.ReLU) else "silu"
    raise _refuse(f"activation {name} (attnkit's mlp has exact gelu, relu, silu)")


def _layernorm_eps(norm: nn.Module, where: str) -> float:
    if not isinstance(norm, nn.LayerNorm) or not norm.elementwise_affine:
        raise _refuse(f"norm {type(norm).__name__} at {where} (attnkit maps LayerNorm with weights only)")
    return float(norm.eps)


def timm_vit_facts(model: nn.Module) -> TimmVitFacts:
    """The facts of a timm VisionTransformer object, refusing (one line) what attnkit's ViT cannot express."""
    # lazy: timm (an optional extra) takes ~4 s to import after torch, and only a timm model object needs it
    from timm.layers import Attention, LayerScale, Mlp
    from timm.layers import PatchEmbed as TimmPatchEmbed
    from timm.models.vision_transformer import Block, VisionTransformer

    if type(model) is not VisionTransformer:
        raise ConfigError(
            f"{type(model).__name__} is not timm's VisionTransformer (subclasses and other models are not mapped)"
        )
    if model.num_reg_tokens:
        raise _refuse(f"register tokens (reg_tokens={model.num_reg_tokens})")
    if model.global_pool not in ("token", "avg"):
        raise _refuse(f"global_pool={model.global_pool!r} (attnkit pools the class token or the mean)")
    if model.global_pool == "avg" and model.has_class_token:
        raise _refuse("global_pool='avg' and a class token (attnkit's mean pooling has no class token)")
    if not isinstance(model.norm_pre, nn.Identity):
        raise _refuse("pre_norm=True (a norm before the blocks)")
    if isinstance(model.norm, nn.Identity) and isinstance(model.fc_norm, nn.Identity):
        raise _refuse("final_norm=False (no final norm)")
    if isinstance(model.head, nn.Identity):
        raise _refuse("num_classes=0 (no classifier head)")
    patch = model.patch_embed
    if type(patch) is not TimmPatchEmbed or not isinstance(patch.norm, nn.Identity):
        raise _refuse(f"patch embedding {type(patch).__name__} with a norm or another layout")
    if patch.dynamic_img_pad:
        raise _refuse("dynamic_img_pad=True")
    if patch.img_size is None:
        raise _refuse("img_size=None")
    ph, pw = patch.patch_size
    if ph != pw or patch.proj.stride != (ph, pw) or patch.proj.padding not in ((0, 0), 0):
        raise _refuse(f"patch size {ph}x{pw} (attnkit's patches are square, stride = size)")
    blocks = list(model.blocks)
    eps = _layernorm_eps(model.norm if not isinstance(model.norm, nn.Identity) else model.fc_norm, "norm")
    activation = None
    qk_norm = False
    for i, block in enumerate(blocks):
        if type(block) is not Block:
            raise _refuse(f"block type {type(block).__name__} (attnkit's blocks are timm's Block)")
        attn, mlp = block.attn, block.mlp
        if type(attn) is not Attention:
            raise _refuse(f"attention layer {type(attn).__name__}")
        if not isinstance(attn.norm, nn.Identity):
            raise _refuse("scale_attn_norm=True (a norm inside attention)")
        if getattr(attn, "gate", None) is not None:
            raise _refuse("gated attention")
        if attn.head_dim * attn.num_heads != model.embed_dim or attn.num_heads != blocks[0].attn.num_heads:
            raise _refuse("attention width or heads that differ from embed_dim or between blocks")
        if type(mlp) is not Mlp or not isinstance(mlp.fc1, nn.Linear) or not isinstance(mlp.norm, nn.Identity):
            raise _refuse(f"MLP {type(mlp).__name__} (attnkit maps timm's Mlp without norm)")
        if mlp.fc1.out_features != blocks[0].mlp.fc1.out_features:
            raise _refuse("MLP widths that differ between blocks")
        act = _activation(mlp.act)
        if activation not in (None, act):
            raise _refuse("activations that differ between blocks")
        activation = act
        for j, ls in enumerate((block.ls1, block.ls2), 1):
            if not isinstance(ls, (nn.Identity, LayerScale)):
                raise _refuse(f"layer scale {type(ls).__name__} at blocks.{i}.ls{j}")
        norms = {"norm1": block.norm1, "norm2": block.norm2}
        if not isinstance(attn.q_norm, nn.Identity):
            qk_norm = True
            norms.update(q_norm=attn.q_norm, k_norm=attn.k_norm)
        for key, norm in norms.items():
            if _layernorm_eps(norm, f"blocks.{i}.{key}") != eps:
                raise _refuse(f"norms with different eps ({key} of block {i})")
    return TimmVitFacts(
        image_size=tuple(int(s) for s in patch.img_size),
        patch_size=int(ph),
        in_channels=int(patch.proj.in_channels),
        num_classes=int(model.head.out_features),
        dim=int(model.embed_dim),
        depth=len(blocks),
        heads=int(blocks[0].attn.num_heads),
        mlp_hidden=int(blocks[0].mlp.fc1.out_features),
        class_token=bool(model.has_class_token),
        global_pool=str(model.global_pool),
        fc_norm=not isinstance(model.fc_norm, nn.Identity),
        qk_norm=qk_norm,
        pos_embed=model.pos_embed is not None,
        no_embed_class=bool(model.no_embed_class),
        eps=eps,
        activation=activation or "gelu",
    )


def _facts_from_state_dict(state: Mapping[str, Tensor], heads: int | None, **given: Any) -> TimmVitFacts:
    if heads is None:
        raise ConfigError("vit_from_timm: a state dict does not say the number of heads; pass heads=...")
    if not is_timm_vit(state):
        raise ConfigError(
            "vit_from_timm: not a timm VisionTransformer state dict (no patch_embed.proj, blocks.*.attn.qkv)"
        )
    for name in state:
        if (feature := _unsupported(name)) is not None:
            raise _refuse(f"{feature} ({name})")
    if "norm.weight" not in state and "fc_norm.weight" not in state:
        raise _refuse("final_norm=False (no final norm)")
    if "head.weight" not in state:
        raise _refuse("num_classes=0 (no classifier head)")
    proj = state["patch_embed.proj.weight"]
    dim, in_channels, ph, pw = proj.shape
    if ph != pw:
        raise _refuse(f"patch size {ph}x{pw} (attnkit's patches are square)")
    class_token = "cls_token" in state
    pos = state.get("pos_embed")
    no_embed_class = given.pop("no_embed_class", None)
    image_size = given.pop("image_size", None)
    if pos is not None:
        n = pos.shape[-2]
        if no_embed_class is None:
            no_embed_class = class_token and math.isqrt(n) ** 2 == n
        patches = n - (class_token and not no_embed_class)
        side = math.isqrt(patches)
        if image_size is None and side * side == patches:
            image_size = (side * ph, side * ph)
    if image_size is None:
        raise ConfigError("vit_from_timm: the image size cannot be read from this state dict; pass image_size=...")
    depth = 1 + max(int(m[1]) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
    facts = TimmVitFacts(
        image_size=(image_size, image_size) if isinstance(image_size, int) else tuple(image_size),
        patch_size=int(ph),
        in_channels=int(in_channels),
        num_classes=int(state["head.weight"].shape[0]),
        dim=int(dim),
        depth=depth,
        heads=int(heads),
        mlp_hidden=int(state["blocks.0.mlp.fc1.weight"].shape[0]),
        class_token=class_token,
        global_pool="token" if class_token else "avg",
        fc_norm="fc_norm.weight" in state,
        qk_norm="blocks.0.attn.q_norm.weight" in state,
        pos_embed=pos is not None,
        no_embed_class=bool(no_embed_class),
    )
    for key, value in given.items():
        if not hasattr(facts, key):
            raise ConfigError(f"vit_from_timm: unknown fact {key!r}; give one of {', '.join(facts.__dict__)}")
        setattr(facts, key, value)
    if facts.global_pool not in ("token", "avg") or (facts.global_pool == "avg" and facts.class_token):
        raise _refuse(f"global_pool={facts.global_pool!r} and class_token={facts.class_token}")
    if facts.global_pool == "token" and not facts.class_token:
        raise ConfigError("vit_from_timm: global_pool='token' needs a class token; this state dict has none")
    return facts


def vit_from_timm(source: nn.Module | Mapping[str, Tensor], *, heads: int | None = None, **facts: Any) -> nn.Module:
    """attnkit's ViT computing the same function as a timm VisionTransformer (logits equal within 1e-5, float32).

    `source`: the timm model (everything is read from it), or its state dict plus the facts weights do not hold:
    `heads` (required), and if they differ from timm's defaults `eps` (1e-6), `activation` ("gelu"), `global_pool`
    ("token" with a class token, else "avg"), `image_size` (read from a square position table), `no_embed_class`.
    Mapped: class token and its position (or none: `no_embed_class`), learned or no positions, qkv (split), bias-free
    qkv/proj, layer scale (folded), qk_norm, `fc_norm` after mean pooling (`norm_after_pool`), relu/gelu/silu MLPs.
    Refused in one line: register tokens, pre-norm, attention/map pooling, mean pooling with a class token, norms
    inside attention or MLP, other block/attention/MLP types, non-square patches, `dynamic_img_pad`. timm's
    `dynamic_img_size` resamples positions with antialiasing: the attnkit model refuses other image sizes, unless
    its `pos_enc.interpolate` is set (then other sizes give close, not equal, logits).
    """
    if isinstance(source, nn.Module):
        if heads is not None or facts:
            raise ConfigError("vit_from_timm: a timm model says its own facts; pass heads=... only with a state dict")
        info = timm_vit_facts(source)
        state = source.state_dict()
    else:
        state = dict(source)
        info = _facts_from_state_dict(state, heads, **facts)
    mapped, _ = timm_vit_state_dict(state, no_embed_class=info.no_embed_class, strict=True)
    model = ViT(**info.vit_kwargs())
    report = transplant(mapped, model)
    if report.reinitialised or report.dropped:
        left = (report.reinitialised + report.dropped)[:4]
        raise ConfigError(f"timm ViT weights do not fill attnkit's ViT exactly (first: {', '.join(left)})")
    return model.train(source.training) if isinstance(source, nn.Module) else model.eval()
