"""mode=info: parameters per component, FLOPs per sample against a hand count, the memory training keeps."""

from __future__ import annotations

import pytest
import torch

import attnkit
from attnkit.nn import EncoderDecoder, ViT
from attnkit.train.info import _einsum_flops, describe, flops_by_layer


def test_parameters_flops_and_memory_of_a_vit() -> None:
    """One ViT block on 17 tokens of width 64, MLP ratio 2: q, k, v and out projections 4 · 2·N·d², scores and the
    weighted sum 2 · 2·N²·d, MLP 2 · 2·N·d·2d."""
    model = ViT(8, 1, 10, dim=64, depth=2, heads=8, patch_size=4, patch_stride=2, ffn={"name": "mlp", "mlp_ratio": 2.0})
    image = torch.randn(1, 1, 8, 8)
    report = describe(model, lambda: model(image), batch_size=64)
    rows = {r["component"]: r for r in report["layers"]}
    assert report["params"] == sum(p.numel() for p in model.parameters())
    assert sum(r["params"] for r in report["layers"]) == report["params"]
    assert rows["blocks.0"]["params"] == sum(p.numel() for p in model.blocks[0].parameters())
    n, d = 17, 64
    assert rows["blocks.0"]["flops_per_sample"] == 4 * 2 * n * d * d + 2 * 2 * n * n * d + 2 * 2 * n * d * 2 * d
    assert rows["blocks.1"]["activation_mb"] > 0 and report["activation_mb"] >= rows["blocks.1"]["activation_mb"]
    assert report["estimated_training_mb"] > report["weights_grads_adam_mb"] > 0


def test_memory_grows_with_the_square_of_the_length_for_explicit_attention_only() -> None:
    from attnkit.nn import SequenceClassifier

    def attention_mb(kind: str, n: int) -> float:
        model = SequenceClassifier(50, 3, dim=32, depth=1, heads=4, max_len=512, attention=kind, dropout=0.0)
        tokens = torch.randint(1, 50, (1, n))
        return describe(model, lambda: model(tokens), batch_size=1)["activation_mb"]

    assert attention_mb("eager", 512) / attention_mb("eager", 128) > 6  # scores N² dominate
    assert attention_mb("linear", 512) / attention_mb("linear", 128) < 5  # linear in N


def _flop_counter_mode(model: torch.nn.Module, *inputs: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*inputs)
    return counter.get_total_flops()


@pytest.mark.parametrize(
    "kind,name",
    [("attention", name) for name in attnkit.available("attention")]
    + [("mixer", name) for name in attnkit.available("mixer") if name != "attention"],
)
def test_flops_equal_torch_flop_counter_for_every_registered_mixer(kind: str, name: str) -> None:
    """mode=info counts at the level of torch's functions (no torch._dynamo import, seconds saved): the same total as
    torch's FlopCounterMode, for every attention and mixer, with its per-component counts adding up."""
    spec = {"name": name, "max_length": 24} if name == "linformer" else name
    common = {"vocab_size": 40, "dim": 32, "depth": 1, "heads": 4, "max_len": 24}
    if kind == "attention":  # an encoder: not every attention can be causal
        model = attnkit.build("model", "classifier", num_classes=3, attention=spec, **common).eval()
    else:
        model = attnkit.build("model", "decoder", layers=[spec], **common).eval()
    tokens = torch.randint(1, 40, (2, 24))
    total, per = flops_by_layer(model, lambda: model(tokens))
    assert total == _flop_counter_mode(model, tokens) > 0
    assert sum(per.values()) == total


@pytest.mark.parametrize("stem", ["patch", "conv"])
def test_flops_of_convolutions_and_encoder_decoder_equal_torch_flop_counter(stem: str) -> None:
    vit = ViT(16, 3, 10, dim=32, depth=1, heads=4, patch_size=4, stem=stem).eval()
    images = torch.randn(2, 3, 16, 16)
    assert flops_by_layer(vit, lambda: vit(images))[0] == _flop_counter_mode(vit, images)
    model = EncoderDecoder(50, 50, dim=32, depth=1, heads=4).eval()
    src, tgt = torch.randint(4, 50, (2, 9)), torch.randint(4, 50, (2, 7))
    assert flops_by_layer(model, lambda: model(src, tgt))[0] == _flop_counter_mode(model, src, tgt)


def test_einsum_flops_pairwise_left_to_right() -> None:
    a, b, c = torch.randn(2, 3), torch.randn(3, 4), torch.randn(4, 5)
    assert _einsum_flops("ij,jk->ik", a, b) == 2 * 2 * 3 * 4
    assert _einsum_flops("ij,jk,kl->il", a, b, c) == 2 * 2 * 3 * 4 + 2 * 2 * 4 * 5
    assert _einsum_flops("ij,jk->ik", [a, b]) == 2 * 2 * 3 * 4
