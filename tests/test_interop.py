"""attnkit.interop: timm ViT and nn.Transformer weights give the same outputs in attnkit's models; refusals are one
line; `transplant` says what it copied, left as initialised and dropped."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnkit import ConfigError
from attnkit.interop import (
    timm_vit_state_dict,
    transformer_from_torch,
    transplant,
    vit_from_timm,
)
from attnkit.nn import ViT

SIZES = {
    "tiny": {"img_size": 32, "patch_size": 4, "embed_dim": 64, "depth": 2, "num_heads": 4, "num_classes": 7},
    "small": {
        "img_size": 8,
        "patch_size": 2,
        "embed_dim": 96,
        "depth": 3,
        "num_heads": 3,
        "mlp_ratio": 4.0,
        "num_classes": 5,
    },
}
POOLS = {"cls": {}, "mean": {"global_pool": "avg", "class_token": False}}


def timm_vit(**kwargs) -> nn.Module:
    """A timm VisionTransformer in eval mode, its weights moved off their (often zero) initialisation."""
    vision_transformer = pytest.importorskip("timm.models.vision_transformer")
    model = vision_transformer.VisionTransformer(**kwargs).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def same_logits(timm_model: nn.Module, ours: nn.Module, size: int, channels: int = 3) -> None:
    images = torch.randn(3, channels, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(images), timm_model(images), atol=1e-5, rtol=0)


@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize("size", list(SIZES))
def test_timm_vit_gives_the_same_logits(size, pool) -> None:
    kwargs = {**SIZES[size], **POOLS[pool]}
    model = timm_vit(**kwargs)
    ours = vit_from_timm(model)
    assert ours.pool == pool and ours.norm_after_pool == (pool == "mean")  # timm's fc_norm after mean pooling
    same_logits(model, ours, kwargs["img_size"])


@pytest.mark.parametrize(
    "features",
    [
        {"no_embed_class": True, "init_values": 0.5, "qk_norm": True, "qkv_bias": False, "act_layer": "relu"},
        {"pos_embed": "none", "proj_bias": False, "in_chans": 1, "dynamic_img_size": True},
        {"global_pool": "avg", "class_token": False, "fc_norm": False, "act_layer": "silu"},
        {"global_pool": "token", "fc_norm": True},
    ],
    ids=["no-embed-class-layer-scale-qk-norm", "no-positions-no-bias", "mean-norm-before-pool", "token-fc-norm"],
)
def test_timm_vit_features_map_exactly(features) -> None:
    model = timm_vit(**{**SIZES["tiny"], **features})
    same_logits(model, vit_from_timm(model), 32, features.get("in_chans", 3))


def test_timm_state_dict_with_its_facts() -> None:
    model = timm_vit(**SIZES["tiny"], no_embed_class=True)
    ours = vit_from_timm(model.state_dict(), heads=4)  # image size and no_embed_class read from the square table
    same_logits(model, ours, 32)
    with pytest.raises(ConfigError, match="pass heads="):
        vit_from_timm(model.state_dict())


def test_timm_dynamic_image_size_other_sizes_are_refused_not_approximated() -> None:
    model = timm_vit(**SIZES["tiny"], dynamic_img_size=True)
    with pytest.raises(ConfigError, match="interpolate"):
        vit_from_timm(model)(torch.randn(1, 3, 48, 48))


@pytest.mark.parametrize(
    ("features", "named"),
    [
        ({"reg_tokens": 2}, "register tokens"),
        ({"pre_norm": True}, "pre_norm=True"),
        ({"global_pool": "avg"}, "global_pool='avg' and a class token"),
        ({"global_pool": "map"}, "global_pool='map'"),
        ({"act_layer": "gelu_tanh"}, "activation GELUTanh"),
        ({"final_norm": False}, "final_norm=False"),
    ],
)
def test_timm_features_attnkit_cannot_express_are_refused_in_one_line(features, named) -> None:
    model = timm_vit(**{**SIZES["tiny"], **features})
    with pytest.raises(ConfigError) as info:
        vit_from_timm(model)
    assert named in str(info.value) and "\n" not in str(info.value)


def test_timm_state_dict_names_refuse_or_pass_through() -> None:
    state = timm_vit(**SIZES["tiny"], reg_tokens=2).state_dict()
    with pytest.raises(ConfigError, match="register tokens"):
        vit_from_timm(state, heads=4)
    mapped, notes = timm_vit_state_dict(state, strict=False)  # init_from: kept as is, dropped by transplant
    assert "reg_token" in mapped and "blocks.1.attn.v_proj.bias" in mapped and "pos_embed" not in mapped
    assert any("qkv split" in note for note in notes)


def test_vit_default_keeps_its_state_dict_and_function() -> None:
    """`norm_after_pool` (off by default) adds no parameter, and the default still norms tokens before pooling."""
    kwargs = {"image_size": 8, "in_channels": 1, "num_classes": 3, "patch_size": 2, "dim": 16, "depth": 1, "heads": 2}
    before, after = ViT(**kwargs, pool="mean"), ViT(**kwargs, pool="mean", norm_after_pool=True)
    assert list(before.state_dict()) == list(after.state_dict())
    after.load_state_dict(before.state_dict())
    images = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        x = before.tokens(images)
        for block in before.blocks:
            x = block(x)
        torch.testing.assert_close(before(images), before.head(before.norm(x).mean(dim=1)))
        torch.testing.assert_close(after(images), before.head(before.norm(x.mean(dim=1))))


# -- nn.Transformer ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "activation"),
    [((32, 4, 2, 3, 48), "relu"), ((48, 3, 1, 2, 192), "gelu"), ((32, 2, 2, 1, 64), "gelu")],
    ids=["small-relu", "wide-gelu", "small-gelu"],
)
def test_nn_transformer_body_gives_the_same_output(shape, activation) -> None:
    dim, heads, enc, dec, ff = shape
    torch_model = nn.Transformer(
        d_model=dim,
        nhead=heads,
        num_encoder_layers=enc,
        num_decoder_layers=dec,
        dim_feedforward=ff,
        activation=activation,
        layer_norm_eps=1e-6,
        norm_first=True,
        batch_first=True,
        dropout=0.0,
    ).eval()
    ours = transformer_from_torch(torch_model, 20, 23, pos_enc="none", scale_embeddings=False).eval()
    src, tgt = torch.randint(1, 20, (3, 9)), torch.randint(1, 23, (3, 6))
    src[0, 6:] = 0  # padding: masked in the encoder and the cross-attention of both
    pad = src.eq(0)
    causal = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    with torch.no_grad():
        body = torch_model(
            ours.src_embed(src),  # the same embedded inputs into both bodies
            ours.tgt_embed(tgt),
            src_key_padding_mask=pad,
            memory_key_padding_mask=pad,
            tgt_mask=causal,
            tgt_is_causal=True,
        )
        torch.testing.assert_close(ours(src, tgt), ours.output(body), atol=1e-5, rtol=0)
    assert ours.encoder_norm.eps == 1e-6 and ours.encoder_blocks[0].ffn.fc1.out_features == ff


def test_nn_transformer_without_bias_and_given_embeddings() -> None:
    torch_model = nn.Transformer(32, 4, 1, 1, 64, dropout=0.0, norm_first=True, batch_first=True, bias=False).eval()
    embed = torch.randn(11, 32)
    ours = transformer_from_torch(
        torch_model, 11, 11, embeddings={"src_embed.weight": embed}, pos_enc="none", scale_embeddings=False
    ).eval()
    assert torch.equal(ours.src_embed.weight, embed)
    src, tgt = torch.randint(1, 11, (2, 5)), torch.randint(1, 11, (2, 4))
    causal = torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1)
    with torch.no_grad():
        body = torch_model(ours.src_embed(src), ours.tgt_embed(tgt), tgt_mask=causal, tgt_is_causal=True)
        torch.testing.assert_close(ours(src, tgt), ours.output(body), atol=1e-5, rtol=0)


def test_post_norm_nn_transformer_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"norm_first=False \(post-norm\).*norm_first=True"):
        transformer_from_torch(nn.Transformer(32, 4, 1, 1, 64), 10, 10)


# -- transplant -------------------------------------------------------------------------------------------------------

VIT = {"image_size": 8, "in_channels": 1, "num_classes": 10, "patch_size": 2, "dim": 16, "depth": 2, "heads": 2}


def test_transplant_into_linear_attention_copies_everything() -> None:
    source = ViT(**VIT)
    target = ViT(**VIT, attention="linear")
    report = transplant(source.state_dict(), target)
    assert report.copied == list(target.state_dict()) and not report.reinitialised and not report.dropped
    for name, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], value), name


def test_transplant_into_linformer_reinitialises_its_projections() -> None:
    target = ViT(**VIT, attention={"name": "linformer", "proj_dim": 8})
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    report = transplant(ViT(**VIT).state_dict(), target)
    assert report.reinitialised == [f"blocks.{i}.attn.attention.proj_{kv}" for i in range(2) for kv in "kv"]
    assert not report.dropped
    assert all(torch.equal(target.state_dict()[n], fresh[n]) for n in report.reinitialised)  # left as initialised
    assert "re-initialised    4  blocks.0-1.attn.attention.{proj_k,proj_v}" in report.table()


def test_transplant_to_rope_drops_the_learned_table() -> None:
    report = transplant(ViT(**VIT).state_dict(), ViT(**VIT, pos_enc="rope"))
    assert report.dropped == ["pos_enc.weight"] and not report.reinitialised
    assert "dropped" in report.table() and "pos_enc.weight" in report.table()


def test_transplant_reports_shapes_that_differ() -> None:
    report = transplant(ViT(**VIT).state_dict(), ViT(**{**VIT, "num_classes": 3}))
    assert report.mismatched == {"head.weight": ((10, 16), (3, 16)), "head.bias": ((10,), (3,))}
    assert report.reinitialised == ["head.weight", "head.bias"] == report.dropped
    assert "shape differs" in report.table() and "source [10, 16], model [3, 16]" in report.table()
    assert report.as_dict()["mismatched"]["head.bias"] == {"source": [10], "target": [3]}


def test_transplant_counts_a_tied_tensor_filled_under_either_name() -> None:
    from attnkit.nn.seq2seq import EncoderDecoder

    target = EncoderDecoder(11, 11, dim=16, depth=1, heads=2)  # output.weight is tgt_embed.weight
    report = transplant({"tgt_embed.weight": torch.ones(11, 16)}, target)
    assert report.copied == ["tgt_embed.weight", "output.weight"] and torch.equal(
        target.output.weight, torch.ones(11, 16)
    )
