"""Encoder and decoder blocks: shapes, and cached token-by-token decoding equal to the full causal pass."""

from __future__ import annotations

import pytest
import torch

import attnkit
from attnkit.nn import DecoderBlock, EncoderBlock, MultiHeadAttention
from attnkit.nn.block import DropPath

DIM, HEADS = 16, 4
ATTENTIONS = attnkit.available("attention")
CACHED = [
    n for n in ATTENTIONS if attnkit.get("attention", n).supports_causal and attnkit.get("attention", n).supports_cache
]
CROSS = [
    n for n in ATTENTIONS if attnkit.get("attention", n).supports_cross and attnkit.get("attention", n).supports_cache
]
TEXT_CONTEXT = {"dim": DIM, "heads": HEADS, "max_len": 16, "causal": True}


def text_pos_encs() -> list[str]:
    """Registered encodings that serve a 1-D sequence (image-only ones refuse to build without a patch grid)."""
    names = []
    for name in attnkit.available("pos_enc"):
        try:
            attnkit.build_spec("pos_enc", name, **TEXT_CONTEXT)
        except attnkit.ConfigError:
            continue
        names.append(name)
    return names


@pytest.mark.parametrize("norm", attnkit.available("norm"))
@pytest.mark.parametrize("ffn", attnkit.available("ffn"))
def test_encoder_block_shapes(norm, ffn) -> None:
    block = EncoderBlock(DIM, HEADS, norm=norm, ffn=ffn)
    x = torch.randn(2, 5, DIM)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[1, -2:] = True
    out = block(x, key_padding_mask=mask)
    assert out.shape == x.shape
    out.sum().backward()
    assert all(p.grad is not None for p in block.parameters())


def test_causal_encoder_block_does_not_see_the_future() -> None:
    block = EncoderBlock(DIM, HEADS, causal=True).eval()
    x = torch.randn(1, 5, DIM)
    y = x.clone()
    y[:, 3:] = torch.randn(1, 2, DIM)
    torch.testing.assert_close(block(x)[:, :3], block(y)[:, :3])
    assert not torch.allclose(EncoderBlock(DIM, HEADS).eval()(x)[:, :3], EncoderBlock(DIM, HEADS).eval()(y)[:, :3])


def test_blocks_name_their_config_keys() -> None:
    encoder = EncoderBlock(DIM, HEADS, where="model.encoder")
    decoder = DecoderBlock(DIM, HEADS)
    assert encoder.attn.where == "model.encoder.attention"
    assert (decoder.self_attn.where, decoder.cross_attn.where) == ("attention", "cross_attention")
    assert decoder.self_attn.causal and not encoder.attn.causal


def test_encoder_block_padding_does_not_leak() -> None:
    """Changing a padded token changes nothing at the other positions."""
    block = EncoderBlock(DIM, HEADS).eval()
    x = torch.randn(1, 5, DIM)
    mask = torch.tensor([[False, False, False, False, True]])
    y = x.clone()
    y[:, -1] = 100.0
    torch.testing.assert_close(block(x, key_padding_mask=mask)[:, :4], block(y, key_padding_mask=mask)[:, :4])


def test_decoder_block_shapes() -> None:
    block = DecoderBlock(DIM, HEADS, kv_heads=2)
    x, memory = torch.randn(2, 4, DIM), torch.randn(2, 7, DIM)
    mask = torch.zeros(2, 7, dtype=torch.bool)
    mask[0, -3:] = True
    out = block(x, memory, memory_padding_mask=mask)
    assert out.shape == x.shape
    out.sum().backward()
    assert all(p.grad is not None for p in block.parameters())


def test_decoder_block_is_causal() -> None:
    block = DecoderBlock(DIM, HEADS).eval()
    x, memory = torch.randn(1, 5, DIM), torch.randn(1, 3, DIM)
    y = x.clone()
    y[:, 3:] = torch.randn(1, 2, DIM)  # the future changes ...
    torch.testing.assert_close(block(x, memory)[:, :3], block(y, memory)[:, :3])  # ... the past does not


def decode(block: DecoderBlock, x: torch.Tensor, memory: torch.Tensor, mask, chunks: list[int]):
    """Run `block` over `x` in chunks of the given sizes with a KV cache; concatenate the outputs."""
    cache: dict = {}
    outs, start = [], 0
    for size in chunks:
        outs.append(block(x[:, start : start + size], memory, memory_padding_mask=mask, cache=cache))
        start += size
    assert start == x.shape[1]
    assert MultiHeadAttention.cached_length(cache["self"]) == x.shape[1]
    assert cache["cross"]["k"].shape[2] == memory.shape[1]
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize("self_attention", CACHED)
@pytest.mark.parametrize("cross_attention", CROSS)
@pytest.mark.parametrize("kv_heads", [None, 2])
@pytest.mark.parametrize("chunks", [[1] * 6, [3, 1, 2]], ids=["token_by_token", "prefill_then_steps"])
def test_decoder_kv_cache_equals_full_causal_pass(self_attention, cross_attention, kv_heads, chunks) -> None:
    block = DecoderBlock(
        DIM, HEADS, self_attention=self_attention, cross_attention=cross_attention, kv_heads=kv_heads
    ).eval()
    x, memory = torch.randn(2, 6, DIM), torch.randn(2, 5, DIM)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[1, -2:] = True
    with torch.no_grad():
        full = block(x, memory, memory_padding_mask=mask)
        cached = decode(block, x, memory, mask, chunks)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", text_pos_encs())
def test_decoder_kv_cache_with_every_text_pos_enc(name) -> None:
    """Cached decoding gives each new token its absolute position, whatever the kind: same outputs as a full pass."""
    pe = attnkit.build_spec("pos_enc", name, **TEXT_CONTEXT)
    for param in pe.parameters():  # t5's table starts at zero: make it count
        torch.nn.init.normal_(param)
    block = DecoderBlock(DIM, HEADS, pos_enc=pe).eval()
    x, memory = torch.randn(2, 6, DIM), torch.randn(2, 5, DIM)

    def step(tokens: torch.Tensor, offset: int, cache: dict | None) -> torch.Tensor:
        n = tokens.shape[1]
        bias = pe.score_bias(n, offset + n)
        return block(pe.add_to_tokens(tokens, offset=offset), memory, bias=bias, cache=cache)

    with torch.no_grad():
        full = step(x, 0, None)
        cache: dict = {}
        cached = torch.cat([step(x[:, t : t + 1], t, cache) for t in range(6)], dim=1)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)


def test_drop_path() -> None:
    x = torch.randn(64, 3, 2)
    assert DropPath(0.5).eval()(x) is x
    assert DropPath(0.0).train()(x) is x
    out = DropPath(0.5).train()(x)
    kept = (out != 0).flatten(1).all(dim=1)
    assert 0 < kept.sum() < 64  # whole samples are dropped, the others are rescaled
    torch.testing.assert_close(out[kept], x[kept] * 2)
    assert (out[~kept] == 0).all()
    assert torch.equal(DropPath(1.0).train()(x), torch.zeros_like(x))
