"""Recurrent decoding of linear-time attention: a kernel's `step` equals its causal parallel form, the multi-head
layer keeps a fixed-size state instead of keys and values when it can (and the KV cache otherwise), and greedy and
beam search give the same tokens with and without the cache."""

from __future__ import annotations

import pytest
import torch
from checks import one_line
from torch import Tensor

import attnkit
from attnkit import ConfigError
from attnkit.nn import EncoderDecoder, MultiHeadAttention
from attnkit.nn.decoding import beam_search, greedy

ATTENTIONS = attnkit.available("attention")
RECURRENT = [n for n in ATTENTIONS if attnkit.get("attention", n).supports_recurrent]
CAUSAL_CACHED = [
    n for n in ATTENTIONS if attnkit.get("attention", n).supports_causal and attnkit.get("attention", n).supports_cache
]
HEADS, HEAD_DIM, DIM = 4, 8, 32
PAD, BOS, EOS, VOCAB = 0, 1, 2, 20
IDS = {"bos_id": BOS, "eos_id": EOS, "pad_id": PAD}


def kernel(name: str, **options):
    """A kernel with small chunks, so that short sequences cross several chunk boundaries."""
    built = attnkit.build_spec("attention", {"name": name, **options}, dim=DIM, heads=HEADS, head_dim=HEAD_DIM).eval()
    built.chunk_size = 4
    return built


def qkv(n: int, kv_heads: int, dtype: torch.dtype, b: int = 2, scale: float = 1.5) -> tuple[Tensor, Tensor, Tensor]:
    return (
        scale * torch.randn(b, HEADS, n, HEAD_DIM, dtype=dtype),
        scale * torch.randn(b, kv_heads, n, HEAD_DIM, dtype=dtype),
        torch.randn(b, kv_heads, n, HEAD_DIM, dtype=dtype),
    )


def run_steps(attn, q: Tensor, k: Tensor, v: Tensor, chunks: list[int]) -> tuple[Tensor, list[dict]]:
    """`attn.step` over the positions in chunks of the given sizes: the outputs, concatenated, and every state."""
    state, outs, states, start = None, [], [], 0
    for size in chunks:
        end = start + size
        out, state = attn.step(q[:, :, start:end], k[:, :, start:end], v[:, :, start:end], state)
        outs.append(out)
        states.append(state)
        start = end
    assert start == q.shape[2]
    return torch.cat(outs, dim=2), states


def cache_bytes(cache: dict) -> int:
    """Sum of the sizes of every tensor in a (nested) cache."""
    return sum(
        value.nbytes if isinstance(value, Tensor) else cache_bytes(value) if isinstance(value, dict) else 0
        for value in cache.values()
    )


# --- the kernel's recurrent step -----------------------------------------------------------------------------


def test_the_recurrent_kernels() -> None:
    """linear and performer have a recurrent form; softmax and the others keep the KV cache."""
    assert {"linear", "performer"} <= set(RECURRENT)
    for name in ("softmax", "eager", "local"):
        assert not attnkit.get("attention", name).supports_recurrent


@pytest.mark.parametrize("name", RECURRENT)
@pytest.mark.parametrize("kv_heads", [HEADS, 2, 1])
@pytest.mark.parametrize(
    "chunks", [[1] * 11, [5, 1, 1, 4], [11], [3, 3, 3, 2]], ids=["tokens", "prompt_then_tokens", "one_call", "threes"]
)
def test_step_equals_the_causal_parallel_form_in_float64(name, kv_heads, chunks) -> None:
    torch.manual_seed(0)
    attn = kernel(name)
    q, k, v = qkv(11, kv_heads, torch.float64)
    out, _ = run_steps(attn, q, k, v, chunks)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, attn(q, k, v, causal=True), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("name", RECURRENT)
@pytest.mark.parametrize("kv_heads", [HEADS, 2])
def test_step_equals_the_causal_parallel_form_in_float32(name, kv_heads) -> None:
    """Longer, with the default chunk size, and keys of large norm (the performer's running maximum moves)."""
    torch.manual_seed(1)
    attn = attnkit.build_spec("attention", name, dim=DIM, heads=HEADS, head_dim=HEAD_DIM).eval()
    q, k, v = qkv(150, kv_heads, torch.float32, b=1, scale=2.0)
    out, _ = run_steps(attn, q, k, v, [70, *[1] * 80])
    torch.testing.assert_close(out, attn(q, k, v, causal=True), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", RECURRENT)
def test_the_state_has_a_fixed_size(name) -> None:
    attn = kernel(name)
    q, k, v = qkv(9, 2, torch.float32)
    _, states = run_steps(attn, q, k, v, [3, *[1] * 6])
    shapes = [{key: tuple(t.shape) for key, t in state.items()} for state in states]
    assert all(shape == shapes[0] for shape in shapes)
    assert all(t.shape[:2] == (2, 2) for t in states[-1].values())  # batch first, one entry per key/value head


def test_performer_step_keeps_its_random_features() -> None:
    """The recurrent step never redraws the projection, even in training with redraw=True, and uses forward's."""
    attn = kernel("performer", redraw=True).train()
    q, k, v = qkv(6, HEADS, torch.float64)
    drawn = attn.projection.clone()
    out, _ = run_steps(attn, q, k, v, [1] * 6)
    assert torch.equal(attn.projection, drawn)
    torch.testing.assert_close(out, attn.eval()(q, k, v, causal=True), atol=1e-10, rtol=1e-10)
    assert torch.equal(attn.projection, drawn)


@pytest.mark.parametrize("name", RECURRENT)
def test_step_refuses_mismatched_inputs(name) -> None:
    attn = kernel(name)
    q, k, v = qkv(3, HEADS, torch.float32)
    with pytest.raises(ConfigError) as exc:
        attn.step(q, k[:, :, :2], v[:, :, :2])
    assert "same new positions" in one_line(exc)
    _, state = attn.step(q, k, v)
    with pytest.raises(ConfigError) as exc:
        attn.step(q[:1], k[:1], v[:1], state)
    assert "batch size" in one_line(exc)


# --- the multi-head layer's cache ----------------------------------------------------------------------------


def layer(name: str, **options) -> MultiHeadAttention:
    pos_enc = options.pop("pos_enc", None)
    if pos_enc is not None:
        context = {"dim": DIM, "heads": HEADS, "head_dim": HEAD_DIM, "max_len": 64, "causal": True}
        pos_enc = attnkit.build_spec("pos_enc", pos_enc, **context)
    return MultiHeadAttention(DIM, HEADS, attention=name, causal=True, pos_enc=pos_enc, **options).eval()


def decode_layer(mha: MultiHeadAttention, x: Tensor, chunks: list[int]) -> tuple[Tensor, dict, list[int]]:
    """The layer over `x` in chunks with one cache: outputs, the cache, and its size in bytes after each call."""
    cache: dict = {}
    outs, sizes, start = [], [], 0
    for size in chunks:
        outs.append(mha(x[:, start : start + size], cache=cache))
        sizes.append(cache_bytes(cache))
        start += size
    return torch.cat(outs, dim=1), cache, sizes


@pytest.mark.parametrize("name", CAUSAL_CACHED)
def test_the_layer_keeps_a_state_exactly_when_the_kernel_has_a_recurrent_form(name) -> None:
    mha = layer(name)
    x = torch.randn(2, 5, DIM)
    with torch.no_grad():
        out, cache, sizes = decode_layer(mha, x, [2, 1, 1, 1])
        torch.testing.assert_close(out, mha(x), atol=1e-5, rtol=1e-5)
    recurrent = attnkit.get("attention", name).supports_recurrent
    assert mha.recurrent == recurrent
    assert ("state" in cache) == recurrent and ("k" in cache) != recurrent
    assert MultiHeadAttention.cached_length(cache) == 5
    assert (sizes[-1] == sizes[0]) == recurrent  # a state keeps its size; keys and values grow


@pytest.mark.parametrize("name", RECURRENT)
@pytest.mark.parametrize(
    "options", [{}, {"pos_enc": "rope"}, {"pos_enc": "rope", "qk_norm": "layernorm", "kv_heads": 2}]
)
def test_the_layers_state_gives_the_full_pass(name, options) -> None:
    torch.manual_seed(0)
    mha = layer(name, **options).double()
    x = torch.randn(2, 9, DIM, dtype=torch.float64)
    with torch.no_grad():
        out, cache, sizes = decode_layer(mha, x, [3, *[1] * 6])
        torch.testing.assert_close(out, mha(x), atol=1e-10, rtol=1e-10)
    assert "k" not in cache and cache["length"] == 9
    assert len(set(sizes)) == 1


@pytest.mark.parametrize("name", RECURRENT)
def test_recurrent_false_keeps_the_kv_cache(name) -> None:
    torch.manual_seed(0)
    mha = layer({"name": name, "recurrent": False})
    assert not mha.recurrent
    x = torch.randn(2, 4, DIM)
    with torch.no_grad():
        out, cache, _ = decode_layer(mha, x, [1] * 4)
        torch.testing.assert_close(out, mha(x), atol=1e-5, rtol=1e-5)
    assert "state" not in cache and cache["k"].shape[2] == 4


@pytest.mark.parametrize("name", RECURRENT)
def test_a_layer_not_built_causal_keeps_the_kv_cache(name) -> None:
    mha = MultiHeadAttention(DIM, HEADS, attention=name).eval()
    assert not mha.recurrent
    cache: dict = {}
    mha(torch.randn(2, 3, DIM), causal=True, cache=cache)
    assert "k" in cache and "state" not in cache


@pytest.mark.parametrize("name", RECURRENT)
def test_padded_keys_fall_back_on_the_kv_cache_and_a_state_refuses_them(name) -> None:
    mha = layer(name)
    x, mask = torch.randn(2, 3, DIM), torch.tensor([[False, False, True], [False, False, False]])
    cache: dict = {}
    mha(x, key_padding_mask=mask, cache=cache)  # a fresh cache: the keys and values are kept
    assert "k" in cache and "state" not in cache
    cache = {}
    mha(x, cache=cache)
    with pytest.raises(ConfigError) as exc:
        mha(x[:, :1], key_padding_mask=mask[:, :1], cache=cache)
    assert "recurrent state" in one_line(exc)


# --- encoder-decoder decoding --------------------------------------------------------------------------------


def tiny(attention: str, pos_enc: str = "sinusoidal", **overrides) -> EncoderDecoder:
    """Untied output embeddings: an untrained model then varies its tokens (a tied one repeats its input)."""
    torch.manual_seed(0)
    options = {"dim": DIM, "depth": 1, "decoder_depth": 2, "heads": HEADS, "dropout": 0.0, "max_len": 48}
    options.update(share_vocab=True, tie_embeddings=False, **overrides)
    return EncoderDecoder(VOCAB, VOCAB, attention=attention, pos_enc=pos_enc, **options)


def sources(b: int = 6) -> Tensor:
    generator = torch.Generator().manual_seed(1)
    src = torch.randint(3, VOCAB, (b, 7), generator=generator)
    src[1, 4:] = PAD  # a padded sentence
    return src


@pytest.mark.parametrize("name", RECURRENT)
@pytest.mark.parametrize("pos_enc", ["sinusoidal", "rope"])
@pytest.mark.parametrize("kv_heads", [None, 2])
def test_greedy_and_beam_search_with_and_without_the_state(name, pos_enc, kv_heads) -> None:
    net = tiny(name, pos_enc, kv_heads=kv_heads).eval()
    src = sources()
    tokens = greedy(net, src, **IDS)
    assert tokens.unique().numel() > 4  # not a degenerate output
    assert torch.equal(tokens, greedy(net, src, **IDS, use_cache=False))
    beam = {"beam": 3, "min_len": 2}
    assert torch.equal(beam_search(net, src, **IDS, **beam), beam_search(net, src, **IDS, **beam, use_cache=False))


@pytest.mark.parametrize("name", RECURRENT)
def test_the_decoders_cache_keeps_its_size(name) -> None:
    """Every sentence decodes 20 tokens (no end token): the cache is as large after the last step as after the
    first, where softmax's grows by one key and value per step and layer."""
    sizes: dict[str, list[int]] = {}
    for attention in (name, "softmax"):
        net = tiny(attention).eval()
        cache_seen: list[int] = []
        decode = net.decode

        def recording(*args, cache=None, _decode=decode, _seen=cache_seen, **kwargs):
            logits = _decode(*args, cache=cache, **kwargs)
            _seen.append(cache_bytes({k: v["self"] for k, v in cache.items()}))
            return logits

        net.decode = recording
        out = greedy(net, sources(3), bos_id=BOS, eos_id=-1, pad_id=PAD, max_len_a=0.0, max_len_b=20)
        assert out.shape == (3, 20)
        sizes[attention] = cache_seen
    assert len(sizes[name]) == 20 and len(set(sizes[name])) == 1
    assert sizes["softmax"][-1] > sizes["softmax"][0]


@pytest.mark.parametrize("name", RECURRENT)
def test_reorder_cache_reorders_the_state(name) -> None:
    """Decoding on after reordering the cache equals decoding the reordered batch from scratch."""
    net = tiny(name).eval()
    src, tgt = sources(3), torch.randint(3, VOCAB, (3, 6))
    index = torch.tensor([2, 2, 0, 1])
    with torch.no_grad():
        mask = net.padding_mask(src)
        memory, cache = net.encode(src, mask), {}
        net.decode(tgt[:, :4], memory, mask, cache=cache)
        assert "state" in cache[0]["self"] and net.cached_length(cache) == 4
        net.reorder_cache(cache, index)
        assert all(t.shape[0] == 4 for t in cache[1]["self"]["state"].values())
        step = net.decode(tgt[index, 4:], memory[index], mask[index], cache=cache)
        torch.testing.assert_close(step, net(src[index], tgt[index])[:, 4:], atol=1e-5, rtol=1e-5)
