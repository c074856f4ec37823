"""Segmenter: a ViT encoder and a registered decoder give per-pixel scores; every decoder trains with every attention,
every mixer and the 2-D positions; the mask transformer is Segmenter's."""

from __future__ import annotations

import pytest
import torch
from checks import one_line

import attnkit
from attnkit import ConfigError
from attnkit.errors import RegistryError
from attnkit.nn.segmentation import Segmenter
from attnkit.nn.segmentation.mask_transformer import MaskTransformer

TINY = {"image_size": (8, 12), "in_channels": 3, "num_classes": 4, "patch_size": 4, "dim": 16, "depth": 1, "heads": 2}
DECODERS = attnkit.available("seg_decoder")
ATTENTIONS = attnkit.available("attention")
SMALL_DECODER = {"linear": "linear", "mask_transformer": {"name": "mask_transformer", "layers": 1}}


def images() -> torch.Tensor:
    return torch.randn(2, 3, 8, 12)


def test_the_built_in_decoders_are_registered() -> None:
    assert {"linear", "mask_transformer"} <= set(DECODERS)


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("decoder", DECODERS)
def test_every_decoder_trains_with_every_attention(decoder, attention) -> None:
    model = Segmenter(**TINY, attention=attention, seg_decoder=SMALL_DECODER.get(decoder, decoder))
    masks = torch.randint(-1, 4, (2, 8, 12))
    scores = model(images())
    assert scores.shape == (2, 4, 8, 12)
    loss = torch.nn.functional.cross_entropy(scores, masks, ignore_index=-1)
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("mixer", [m for m in attnkit.available("mixer") if m != "attention"])
def test_a_hybrid_of_mixers_and_attention_segments(mixer) -> None:
    model = Segmenter(**{**TINY, "depth": 2}, layers=[mixer, "softmax"], seg_decoder=SMALL_DECODER["mask_transformer"])
    model(images()).sum().backward()
    assert model.plan[0]["mixer"] == mixer


@pytest.mark.parametrize("pos_enc", ["rope2d", "sincos2d", "none"])
@pytest.mark.parametrize("stem", ["patch", "conv"])
def test_positions_stems_and_overlapping_patches(pos_enc, stem) -> None:
    if pos_enc not in attnkit.available("pos_enc"):
        pytest.skip(f"no pos_enc {pos_enc}")
    model = Segmenter(
        **{**TINY, "patch_size": 4, "patch_stride": 2 if stem == "patch" else 4}, stem=stem, pos_enc=pos_enc
    )
    assert model(images()).shape == (2, 4, 8, 12)


def test_no_class_token_and_the_decoder_is_the_head() -> None:
    model = Segmenter(**TINY)
    assert model.cls_token is None
    assert type(model.head).__name__ == "LinearDecoder"
    assert not any(isinstance(m, torch.nn.Linear) and m.out_features == 4 for m in model.blocks.modules())


def test_linear_decoder_is_a_per_patch_linear_map_upsampled() -> None:
    """SETR-naive / Segmenter-linear: the score of a pixel is the bilinear upsampling of its patches' linear scores."""
    model = Segmenter(**TINY).eval()
    x = images()
    tokens, grid = model.embed(x)
    tokens = model.norm(model.blocks(tokens, biases=model.layer_pos_enc.biases(tokens.shape[1], tokens.shape[1])))
    patch_scores = (tokens @ model.head.proj.weight.T + model.head.proj.bias).transpose(1, 2).reshape(2, 4, *grid)
    expected = torch.nn.functional.interpolate(patch_scores, size=(8, 12), mode="bilinear", align_corners=False)
    torch.testing.assert_close(model(x), expected)


def test_mask_transformer_masks_are_normalised_products() -> None:
    """Segmenter's masks: cosine similarities of patch and class embeddings (|.| <= 1) before the mask norm; each class
    embedding is a parameter of its own and changes its class's mask only."""
    decoder = MaskTransformer(16, 3, layers=1, heads=2).eval()
    decoder.mask_norm = torch.nn.Identity()
    tokens = torch.randn(2, 6, 16)
    masks = decoder(tokens, (2, 3))
    assert masks.shape == (2, 3, 2, 3)
    assert masks.abs().max() <= 1 + 1e-5
    assert decoder.classes.shape == (1, 3, 16)


def test_mask_transformer_follows_the_encoder_heads_unless_given() -> None:
    model = Segmenter(**{**TINY, "heads": 4}, seg_decoder="mask_transformer")
    assert model.head.blocks[0].attn.heads == 4
    model = Segmenter(**TINY, seg_decoder={"name": "mask_transformer", "heads": 1, "dim": 8, "layers": 3})
    assert model.head.blocks[0].attn.heads == 1 and len(model.head.blocks) == 3


def test_decoder_mistakes_are_one_line() -> None:
    with pytest.raises(RegistryError) as exc:
        Segmenter(**TINY, seg_decoder="unet")
    assert "unet" in one_line(exc) and "mask_transformer" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        Segmenter(**TINY, seg_decoder={"name": "mask_transformer", "dim": 10, "heads": 4})
    assert "10" in one_line(exc)


def test_built_from_the_registry_with_a_plugin_decoder() -> None:
    class Constant(torch.nn.Module):
        def __init__(self, in_dim: int, num_classes: int) -> None:
            super().__init__()
            self.bias = torch.nn.Parameter(torch.arange(num_classes, dtype=torch.float32))

        def forward(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
            return self.bias.view(1, -1, 1, 1).expand(tokens.shape[0], -1, *grid)

    attnkit.register("seg_decoder", "constant_for_test", override=True)(Constant)
    model = attnkit.build("model", "segmenter", **TINY, seg_decoder="constant_for_test")
    assert (model(images()).argmax(1) == 3).all()
