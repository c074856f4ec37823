"""mode=info: parameters per component, FLOPs per sample against a hand count, the memory training keeps."""

from __future__ import annotations

import torch

from attnkit.nn import ViT
from attnkit.train.info import describe


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
