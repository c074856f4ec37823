"""The Vision Transformer: shapes, attention maps, config errors, every registered attention and pos_enc."""

from __future__ import annotations

import pytest
import torch
from checks import one_line

import attnkit
from attnkit import ConfigError, registry
from attnkit.nn import PatchEmbed, SoftmaxAttention, ViT

from .plugin_encodings import PLUGINS, registered

ATTENTIONS = attnkit.available("attention")
POS_ENCS = attnkit.available("pos_enc")
TINY = {
    "image_size": 8,
    "in_channels": 3,
    "num_classes": 5,
    "patch_size": 2,
    "dim": 16,
    "depth": 2,
    "heads": 2,
}


def images(b: int = 2, c: int = 3, h: int = 8, w: int = 8) -> torch.Tensor:
    return torch.randn(b, c, h, w)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_forward_shapes(pool) -> None:
    model = ViT(**{**TINY, "pool": pool})
    assert model(images()).shape == (2, 5)
    tokens = model.tokens(images())
    assert tokens.shape == (2, 16 + (pool == "cls"), 16)


def test_patch_embed_shape_and_grid() -> None:
    embed = PatchEmbed((8, 12), patch_size=4, in_channels=1, dim=6)
    assert embed.grid == (2, 3)
    assert embed(torch.randn(2, 1, 8, 12)).shape == (2, 6, 6)


@pytest.mark.parametrize(("stride", "convs"), [(2, 1), (4, 2), (8, 3)])
def test_conv_stem_gives_the_patch_grid(stride, convs) -> None:
    embed = PatchEmbed((16, 24), patch_size=stride, in_channels=3, dim=32, stem="conv")
    assert embed.grid == (16 // stride, 24 // stride)
    assert embed(torch.randn(2, 3, 16, 24)).shape == (2, embed.grid[0] * embed.grid[1], 32)
    strided = [m for m in embed.proj.modules() if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == convs and strided[-1].out_channels == 32  # channels double up to the width


def test_vit_with_a_conv_stem_trains_and_evaluates() -> None:
    model = ViT(**{**TINY, "stem": "conv"})
    model(images()).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.eval()(images()).shape == (2, 5) and model.attention_maps(images()).shape == (2, 2, 4, 4)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [({"image_size": 12, "patch_size": 6}, "power of two"), ({"stem": "unet"}, "model.stem='unet'")],
)
def test_conv_stem_mistakes_are_one_line(options, fragment) -> None:
    with pytest.raises(ConfigError) as exc:
        ViT(**{**TINY, "stem": "conv", **options})
    assert fragment in one_line(exc)


def test_non_square_images() -> None:
    model = ViT(**{**TINY, "image_size": (4, 8)}).eval()
    assert model(images(h=4, w=8)).shape == (2, 5)
    assert model.attention_maps(images(h=4, w=8)).shape == (2, 2, 2, 4)


def test_build_from_registry_with_defaults() -> None:
    node = registry.defaults("model", "vit")
    args = {k: v for k, v in node.items() if k != "name"}
    model = attnkit.build("model", "vit", image_size=8, in_channels=1, num_classes=3, **{**args, "depth": 1})
    assert model(images(c=1)).shape == (2, 3)


@pytest.mark.parametrize("pool", ["cls", "mean"])
@pytest.mark.parametrize("kv_heads", [None, 1])
def test_attention_maps(pool, kv_heads) -> None:
    model = ViT(**{**TINY, "pool": pool, "kv_heads": kv_heads}).eval()
    maps = model.attention_maps(images())
    assert maps.shape == (2, TINY["heads"], 4, 4)
    assert (maps >= 0).all()
    sums = maps.sum(dim=(-2, -1))
    assert (sums <= 1 + 1e-5).all()
    if pool == "mean":  # no class token: all the weight is on patches
        torch.testing.assert_close(sums, torch.ones_like(sums))
    assert not maps.requires_grad


def test_attention_maps_match_the_forward_pass() -> None:
    """The maps come from the same last block that forward uses (here: the class token of a 1-block model)."""
    model = ViT(**{**TINY, "depth": 1, "attention": "eager"}).eval()
    x = images()
    block = model.blocks[0]
    _, weights = block.attn(block.norm1(model.tokens(x)), need_weights=True)
    torch.testing.assert_close(model.attention_maps(x), weights[:, :, 0, 1:].reshape(2, 2, 4, 4))


@pytest.mark.parametrize(("dim", "heads"), [(16, 3), (10, 4), (16, 0)])
def test_heads_must_divide_dim(dim, heads) -> None:
    with pytest.raises(ConfigError) as exc:
        ViT(**{**TINY, "dim": dim, "heads": heads})
    assert f"heads={heads}" in one_line(exc)


@pytest.mark.parametrize(("image_size", "patch_size"), [(8, 3), ((8, 6), 4), (8, 0)])
def test_patch_size_must_divide_image(image_size, patch_size) -> None:
    with pytest.raises(ConfigError) as exc:
        ViT(**{**TINY, "image_size": image_size, "patch_size": patch_size})
    assert f"patch_size={patch_size}" in one_line(exc)


def test_other_config_errors() -> None:
    for bad in ({"kv_heads": 3}, {"pool": "max"}, {"depth": 0}):
        with pytest.raises(ConfigError) as exc:
            ViT(**{**TINY, **bad})
        one_line(exc)
    with pytest.raises(ConfigError) as exc:
        attnkit.build("model", "vit", **{**TINY, "heads": "four"})
    one_line(exc)


def test_attention_max_length_checked_at_build() -> None:
    class ShortSoftmax(SoftmaxAttention):
        max_length = 16

    with pytest.raises(ConfigError) as exc:
        ViT(**TINY, attention=ShortSoftmax())  # 16 patches + the class token
    assert "17" in one_line(exc)
    assert ViT(**TINY, pool="mean", attention=ShortSoftmax())(images()).shape == (2, 5)


def test_learned_positions_cover_the_tokens() -> None:
    for pool, tokens in (("cls", 17), ("mean", 16)):
        model = ViT(**{**TINY, "pool": pool, "pos_enc": "learned"})
        assert model.pos_enc.max_len == tokens


def test_without_positional_encoding() -> None:
    model = ViT(**{**TINY, "pos_enc": None})
    assert model(images()).shape == (2, 5)


def test_drop_path_and_dropout_train_mode() -> None:
    model = ViT(**{**TINY, "drop_path": 0.5, "dropout": 0.1}).train()
    out = model(images())
    assert torch.isfinite(out).all()
    out.sum().backward()
    model.eval()
    x = images()
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)  # no randomness in eval mode


def pairs(allowed: bool):
    """attention × pos_enc pairs the capability flags allow (or forbid): a bias needs an attention that takes one."""
    for attention in ATTENTIONS:
        for pos_enc in POS_ENCS:
            needs_bias = getattr(attnkit.get("pos_enc", pos_enc), "kind", "absolute") == "bias"
            ok = not needs_bias or attnkit.get("attention", attention).supports_bias
            if ok == allowed:
                yield pytest.param(attention, pos_enc, id=f"{attention}-{pos_enc}")


@pytest.mark.parametrize(("attention", "pos_enc"), list(pairs(allowed=False)))
def test_forbidden_pairs_fail_at_build_with_the_reason(attention, pos_enc) -> None:
    with pytest.raises(ConfigError) as exc:
        ViT(**{**TINY, "patch_size": 4, "attention": attention, "pos_enc": pos_enc})
    assert one_line(exc).startswith(f"pos_enc={pos_enc} needs score bias; attention={attention} has none")


@pytest.mark.parametrize(("attention", "pos_enc"), list(pairs(allowed=True)))
def test_every_attention_and_pos_enc_trains(attention, pos_enc) -> None:
    model = ViT(**{**TINY, "patch_size": 4, "attention": attention, "pos_enc": pos_enc})
    x, y = images(), torch.tensor([1, 3])
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    if attnkit.get("attention", attention).supports_weights:
        assert model.eval().attention_maps(x).shape == (2, 2, 2, 2)


@pytest.mark.parametrize("pos_enc", ["none", *PLUGINS])
def test_plugin_encodings_of_every_kind_reach_the_vit(pos_enc) -> None:
    """Without positions the ViT sees a set of patches: swapping two leaves the logits alone. A plugin encoding of
    any kind, through its hook, breaks that; it trains and gives attention maps like a built-in one."""
    with registered():
        model = ViT(**{**TINY, "pos_enc": pos_enc}).eval()
    x = images()
    swapped = x.clone()
    swapped[..., :2, :2], swapped[..., 6:, 6:] = x[..., 6:, 6:], x[..., :2, :2]  # patches (0, 0) and (3, 3)
    with torch.no_grad():
        assert torch.allclose(model(x), model(swapped), atol=1e-5) == (pos_enc == "none")
    assert model.attention_maps(x).shape == (2, 2, 4, 4)
    model(x).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_every_attention_from_a_spec_mapping(attention) -> None:
    spec = registry.defaults("attention", attention)
    model = attnkit.build("model", "vit", **{**TINY, "depth": 1, "patch_size": 4, "attention": spec})
    assert model(images()).shape == (2, 5)


@pytest.mark.parametrize("pos_enc", POS_ENCS)
def test_every_pos_enc_survives_a_weight_average(pos_enc) -> None:
    """An EMA of the weights (AveragedModel with buffers, as the vit task uses) copies every buffer each step:
    an encoding's buffers must keep their shapes after a forward pass."""
    model = ViT(**{**TINY, "patch_size": 4, "pos_enc": pos_enc})
    ema = torch.optim.swa_utils.AveragedModel(model, use_buffers=True)
    model(images()).sum().backward()
    ema.update_parameters(model)
    ema.update_parameters(model)
    assert ema.module(images()).shape == (2, 5)
