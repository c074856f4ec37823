"""One stack for every model (attnkit.nn.stack): the ViT, the classifier and both halves of the encoder–decoder hold
`Stack`s built by `encoder_stack` / `decoder_stack`, under the attribute names their state dicts have always used."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnkit.nn import DecoderBlock, EncoderBlock, EncoderDecoder, SequenceClassifier, ViT
from attnkit.nn.block import DropPath
from attnkit.nn.pos_enc import Rope
from attnkit.nn.stack import Stack, decoder_stack, encoder_stack, plan_stack

DEFAULTS = {"attention": "softmax", "heads": 4, "kv_heads": None}

# model, the attribute holding a stack, the attribute holding its encodings, the block class
STACKS = {
    "vit": (lambda: ViT(8, 1, 3, dim=16, depth=3, heads=4, patch_size=4), "blocks", "layer_pos_enc", EncoderBlock),
    "classifier": (
        lambda: SequenceClassifier(20, 3, dim=16, depth=3, heads=4),
        "blocks",
        "layer_pos_enc",
        EncoderBlock,
    ),
    "encoder": (
        lambda: EncoderDecoder(20, 20, dim=16, depth=3, heads=4),
        "encoder_blocks",
        "encoder_layer_pos_enc",
        EncoderBlock,
    ),
    "decoder": (
        lambda: EncoderDecoder(20, 20, dim=16, depth=3, heads=4),
        "decoder_blocks",
        "decoder_layer_pos_enc",
        DecoderBlock,
    ),
}


@pytest.mark.parametrize("name", STACKS)
def test_every_model_holds_a_stack_under_its_old_names(name) -> None:
    build, blocks, encodings, block_cls = STACKS[name]
    model = build()
    stack = getattr(model, blocks)
    assert type(stack) is Stack and len(stack) == 3
    assert all(type(block) is block_cls for block in stack)
    assert f"{blocks}.2.norm1.weight" in model.state_dict()  # keys of the ModuleList it replaced
    assert isinstance(getattr(model, encodings), nn.Module)


def plan(depth: int = 3, layers=None, pos_enc=None, **defaults):
    pos_enc = pos_enc if pos_enc is not None else Rope(16, 4)
    return plan_stack(depth, layers, {**DEFAULTS, **defaults}, "rope", pos_enc, lambda spec, heads: Rope(16, heads))


def test_plan_shares_the_stack_encoding_unless_a_layer_needs_its_own() -> None:
    shared = Rope(16, 4)
    p = plan(layers=[None, {"heads": 2}, "local"], pos_enc=shared)
    assert [layer["heads"] for layer in p.layers] == [4, 2, 4] and p.layers[2]["attention"] == "local"
    assert p.encodings.of(0) is shared and p.encodings.of(2) is shared
    assert p.encodings.of(1) is not shared and p.encodings.of(1).rot == 8  # rebuilt for 2 heads
    assert [p.block_where(i, "model") for i in (0, 1)] == ["model.layers[0]", "model.layers[1]"]
    assert plan().block_where(1, "model") == "model"  # no per-layer entries: the stack's prefix


def test_encoder_stack_drop_path_rises_linearly() -> None:
    stack = encoder_stack(plan(depth=5), 16, drop_path=0.2)
    assert isinstance(stack[0].drop_path, nn.Identity)  # rate 0: no module to call
    rates = [block.drop_path.p for block in stack[1:]]
    assert all(isinstance(block.drop_path, DropPath) for block in stack[1:])
    assert rates == pytest.approx([0.05, 0.1, 0.15, 0.2])


def test_stack_runs_the_blocks_in_turn_with_their_biases_and_caches() -> None:
    torch.manual_seed(0)
    encoder = encoder_stack(plan(), 16).eval()
    x, biases = torch.randn(2, 5, 16), [None, torch.randn(1, 4, 5, 5), None]
    by_hand = x
    for block, bias in zip(encoder, biases, strict=True):
        by_hand = block(by_hand, bias=bias)
    torch.testing.assert_close(encoder(x, biases=biases), by_hand)
    torch.testing.assert_close(encoder[:-1](x, biases=biases[:-1]), encoder[1](encoder[0](x), bias=biases[1]))

    decoder = decoder_stack(plan(layers={"0": {"cross_attention": "eager"}}, cross_attention="softmax"), 16).eval()
    memory, cache = torch.randn(2, 7, 16), {}
    full = decoder(x, memory, biases=[None] * 3)
    first, rest = (
        decoder(x[:, :3], memory, biases=[None] * 3, cache=cache),
        decoder(x[:, 3:], memory, biases=[None] * 3, cache=cache),
    )
    assert sorted(cache) == [0, 1, 2] and sorted(cache[0]) == ["cross", "self"]  # one entry per layer
    torch.testing.assert_close(torch.cat([first, rest], dim=1), full, atol=1e-5, rtol=1e-5)
