"""Hybrid stacks: per-layer attention, heads and positional encodings in the ViT, the encoder–decoder and the
classifier, checked against models built by hand layer by layer."""

from __future__ import annotations

import pytest
import torch
from checks import compose, one_line

from attnkit import ConfigError
from attnkit.nn import DecoderBlock, EncoderBlock, EncoderDecoder, SequenceClassifier, ViT
from attnkit.nn.decoding import greedy
from attnkit.nn.layers import layer_plan
from attnkit.nn.stack import Stack

DEFAULTS = {"attention": "softmax", "heads": 4, "kv_heads": None}


def test_plan_from_a_list_and_from_ranges() -> None:
    listed = layer_plan(3, ["local", None, {"heads": 2, "attention": {"name": "eager"}}], DEFAULTS)
    assert [p["attention"] for p in listed] == ["local", "softmax", {"name": "eager"}]
    assert [p["heads"] for p in listed] == [4, 4, 2]
    ranged = layer_plan(6, {"0-3": "local", "4-": {"attention": "softmax", "heads": 2}}, DEFAULTS)
    assert [p["attention"] for p in ranged] == ["local"] * 4 + ["softmax"] * 2 and ranged[5]["heads"] == 2
    assert layer_plan(2, {"1": {"name": "local", "window": 4}}, DEFAULTS)[1]["attention"] == {
        "name": "local",
        "window": 4,
    }
    assert layer_plan(2, None, DEFAULTS) == [DEFAULTS, DEFAULTS]


@pytest.mark.parametrize(
    ("layers", "fragment"),
    [
        (["local"], "lists 1 layers but the stack has 3"),
        ({"0-3": "local"}, "outside the stack of 3 layers"),
        ({"0-1": "local", "1": "eager"}, "layer 1 is given by both"),
        ({"a": "local"}, "'a' is not a layer range"),
        ({"0": {"atention": "local"}}, "has no key 'atention' (did you mean 'attention'"),
        ("local", "must be a list"),
        ([3, None, None], "must be an attention or mixer name, or a mapping"),
    ],
)
def test_plan_mistakes_are_one_line(layers, fragment) -> None:
    with pytest.raises(ConfigError) as exc:
        layer_plan(3, layers, DEFAULTS)
    assert fragment in one_line(exc)


def test_vit_hybrid_equals_the_model_built_by_hand() -> None:
    """Local attention with 2 heads below, softmax with 4 above: the same parameters (names and shapes) as a ViT
    whose blocks are replaced by hand, and the same outputs with the same weights."""
    tiny = {"image_size": 8, "in_channels": 1, "num_classes": 3, "dim": 16, "depth": 4, "heads": 4, "patch_size": 2}
    hybrid = ViT(**tiny, layers={"0-1": {"attention": {"name": "local", "window": 3}, "heads": 2}, "2-": "softmax"})
    by_hand = ViT(**tiny)
    n = by_hand.patch_embed.grid[0] * by_hand.patch_embed.grid[1] + 1
    by_hand.blocks = Stack(
        EncoderBlock(16, h, attention=a, max_keys=n, pos_enc=by_hand.pos_enc)
        for h, a in [
            (2, {"name": "local", "window": 3}),
            (2, {"name": "local", "window": 3}),
            (4, "softmax"),
            (4, "softmax"),
        ]
    )
    shapes = lambda m: {k: v.shape for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(hybrid) == shapes(by_hand)
    by_hand.load_state_dict(hybrid.state_dict())
    images = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(hybrid.eval()(images), by_hand.eval()(images))
    assert [layer["attention"] for layer in hybrid.plan][::2] == [{"name": "local", "window": 3}, "softmax"]


def test_encoder_decoder_hybrid_equals_the_model_built_by_hand() -> None:
    """Local then softmax attention in the encoder, linear then softmax self-attention in the decoder: the same
    parameters and the same logits as an encoder–decoder whose blocks are replaced by hand."""
    torch.manual_seed(0)
    common = {"dim": 16, "depth": 2, "heads": 4, "max_len": 32, "pos_enc": "sinusoidal"}
    hybrid = EncoderDecoder(
        30, 30, **common, encoder={"layers": ["local", "softmax"]}, decoder={"layers": {"0": "linear"}}
    ).eval()
    by_hand = EncoderDecoder(30, 30, **common)
    block = {"ffn": "mlp", "norm": "layernorm", "dropout": 0.1, "max_keys": 32}
    by_hand.encoder_blocks = Stack(
        EncoderBlock(16, 4, attention=a, key_padding=True, pos_enc=by_hand.encoder_pos_enc, **block)
        for a in ("local", "softmax")
    )
    by_hand.decoder_blocks = Stack(
        DecoderBlock(16, 4, self_attention=a, cross_attention="softmax", pos_enc=by_hand.decoder_pos_enc, **block)
        for a in ("linear", "softmax")
    )
    shapes = lambda m: {k: v.shape for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(hybrid) == shapes(by_hand)
    by_hand.load_state_dict(hybrid.state_dict())
    src, tgt = torch.randint(3, 30, (2, 9)), torch.randint(3, 30, (2, 6))
    src[1, 6:] = 0  # padded source
    torch.testing.assert_close(hybrid(src, tgt), by_hand.eval()(src, tgt))
    assert hybrid.plan["encoder"][0]["attention"] == "local" and hybrid.plan["decoder"][0]["attention"] == "linear"


def test_per_layer_bias_encodings_are_their_own_and_train() -> None:
    model = ViT(
        8, 1, 3, dim=16, depth=3, heads=4, patch_size=4, pos_enc="alibi", layers=[None, {"pos_enc": "t5"}, {"heads": 2}]
    )
    own = {k.split(".")[2] for k in model.state_dict() if k.startswith("layer_pos_enc.own.")}
    assert own == {"1"}  # t5's table; layer 2 rebuilds alibi for its 2 heads (no parameters)
    assert model.layer_pos_enc.of(0) is model.pos_enc and model.layer_pos_enc.of(2) is not model.pos_enc
    x = torch.randn(2, 1, 8, 8)
    torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 2])).backward()
    assert all(p.grad is not None for p in model.parameters())  # t5's table of layer 1 included


def test_capabilities_apply_per_layer() -> None:
    with pytest.raises(ConfigError) as exc:
        ViT(8, 1, 3, dim=16, depth=2, heads=4, patch_size=4, pos_enc="alibi", layers=[None, "linear"])
    assert "model.layers[1].attention=linear has none" in one_line(exc)
    with pytest.raises(ConfigError) as exc:
        EncoderDecoder(
            20, 20, dim=16, depth=1, heads=2, decoder={"layers": [None, {"attention": "linformer"}]}, decoder_depth=2
        )
    assert "model.decoder.layers[1].attention=linformer cannot mask the future" in one_line(exc)
    with pytest.raises(ConfigError) as exc:
        SequenceClassifier(20, 3, dim=16, depth=2, heads=2, layers=[None, {"pos_enc": "sinusoidal"}])
    assert "cannot change per layer" in one_line(exc)


def test_encoder_decoder_stacks_per_layer_decode_with_the_cache() -> None:
    torch.manual_seed(0)
    model = EncoderDecoder(
        30,
        30,
        dim=16,
        depth=2,
        heads=4,
        pos_enc="rope",
        encoder={"layers": [{"attention": "local", "heads": 2}, "softmax"]},
        decoder={
            "layers": {"0": {"cross_attention": "eager", "pos_enc": "t5"}, "1": {"attention": "linear", "heads": 2}}
        },
    ).eval()
    assert model.plan["encoder"][0] == {"attention": "local", "heads": 2}
    assert model.plan["decoder"][1]["attention"] == "linear" and model.plan["decoder"][0]["cross_attention"] == "eager"
    src = torch.randint(3, 30, (2, 7))
    cached = greedy(model, src, bos_id=1, eos_id=2, max_len=6, min_len=6)
    uncached = greedy(model, src, bos_id=1, eos_id=2, max_len=6, min_len=6, use_cache=False)
    assert torch.equal(cached, uncached)


def test_layers_compose_from_the_command_line() -> None:
    cfg = compose("model.layers={0-1:local,2-:softmax}")
    assert cfg["model"]["layers"] == {"0-1": "local", "2-": "softmax"}
    listed = compose("task=translation", "model.encoder.layers=[local,softmax]", "model.decoder.layers=[null,eager]")
    assert listed["model"]["encoder"]["layers"] == ["local", "softmax"]
    assert listed["model"]["decoder"]["layers"] == [None, "eager"]
