"""The encoder–decoder model: shapes, padding, causality, cached decoding equal to the full pass for every attention
and positional-encoding kind, per-stack overrides, tied embeddings, refusals and the registry."""

from __future__ import annotations

import contextlib
import io

import pytest
import torch
from checks import one_line
from torch import Tensor

import attnkit
from attnkit import ConfigError, cli, registry
from attnkit.nn import EncoderDecoder, SoftmaxAttention

from .plugin_encodings import PLUGINS, registered

VOCAB, DIM, HEADS = 20, 32, 4
TINY = {
    "src_vocab": VOCAB,
    "tgt_vocab": VOCAB,
    "dim": DIM,
    "depth": 1,
    "decoder_depth": 2,
    "heads": HEADS,
    "dropout": 0.0,
    "max_len": 64,
}
ATTENTIONS = attnkit.available("attention")


def flag(name: str, capability: str) -> bool:
    return getattr(attnkit.get("attention", name), capability)


CAUSAL_CACHED = [n for n in ATTENTIONS if flag(n, "supports_causal") and flag(n, "supports_cache")]
CROSS_CACHED = [n for n in ATTENTIONS if flag(n, "supports_cross") and flag(n, "supports_cache")]


@pytest.fixture
def local_pos_encs():
    """The test-local plugin encodings (one of each kind) registered for the duration of one test."""
    with registered():
        yield


def text_pos_encs() -> list[str]:
    """Registered encodings that build for a text model (image ones need a patch grid and refuse)."""
    names = []
    for name in attnkit.available("pos_enc"):
        with contextlib.suppress(ConfigError):
            attnkit.build_spec("pos_enc", name, dim=DIM, heads=HEADS, head_dim=DIM // HEADS, max_len=64, causal=True)
            names.append(name)
    return names


def pos_enc_kind(name: str) -> str:
    cls = PLUGINS.get(name) or attnkit.get("pos_enc", name)
    return getattr(cls, "kind", "absolute")


POS_ENCS = text_pos_encs() + list(PLUGINS)


def attention_spec(name: str) -> str | dict:
    """A window of 2 keys, so that local attention differs from full attention on these short sequences."""
    return {"name": "local", "window": 2} if name == "local" else name


def model(**overrides) -> EncoderDecoder:
    return EncoderDecoder(**{**TINY, **overrides}).eval()


def batch(b: int = 3, ns: int = 7, nt: int = 6) -> tuple[Tensor, Tensor]:
    src, tgt = torch.randint(3, VOCAB, (b, ns)), torch.randint(3, VOCAB, (b, nt))
    src[1, ns - 3 :] = 0  # a padded sentence
    return src, tgt


def decode_in_chunks(net: EncoderDecoder, src: Tensor, tgt: Tensor, chunks: list[int]) -> Tensor:
    """Logits of `tgt` decoded with a KV cache, `chunks` tokens at a time."""
    mask = net.padding_mask(src)
    memory, cache, outs, start = net.encode(src, mask), {}, [], 0
    for size in chunks:
        outs.append(net.decode(tgt[:, start : start + size], memory, mask, cache=cache))
        start += size
    assert start == tgt.shape[1] and net.cached_length(cache) == tgt.shape[1]
    return torch.cat(outs, dim=1)


# --- shapes, padding, causality ------------------------------------------------------------------------------


@pytest.mark.parametrize("kv_heads", [None, 2])
def test_forward_shapes_and_gradients(kv_heads) -> None:
    net = model(kv_heads=kv_heads, decoder_depth=None, tgt_vocab=13).train()
    src, tgt = batch()
    logits = net(src, tgt.clamp(max=12))
    assert logits.shape == (3, 6, 13)
    assert len(net.encoder_blocks) == len(net.decoder_blocks) == 1
    assert net.encode(src).shape == (3, 7, DIM)
    logits.logsumexp(-1).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_source_padding_does_not_change_other_outputs() -> None:
    net = model()
    src, tgt = batch()
    short = src[1:2, :4]  # sentence 1 without its padding
    with torch.no_grad():
        padded = net(src, tgt)
        alone = net(short, tgt[1:2])
        torch.testing.assert_close(padded[1:2], alone, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(net.encode(src)[1:2, :4], net.encode(short), atol=1e-5, rtol=1e-5)
        other = src.clone()
        other[1, 4:] = 7  # what sits under the mask does not matter
        torch.testing.assert_close(net(other, tgt, src.eq(0)), padded)


def test_padding_mask_defaults_to_the_pad_id() -> None:
    net = model(pad_id=3)
    src, tgt = batch()
    src[0, -2:] = 3
    with torch.no_grad():
        torch.testing.assert_close(net(src, tgt), net(src, tgt, src.eq(3)))
    assert net.src_embed.weight[3].abs().sum() == 0  # the padding row starts at zero


def test_decoder_is_causal() -> None:
    net = model()
    src, tgt = batch()
    changed = tgt.clone()
    changed[:, 3:] = torch.randint(3, VOCAB, (3, 3))
    with torch.no_grad():
        before, after = net(src, tgt), net(src, changed)
    torch.testing.assert_close(before[:, :3], after[:, :3])
    assert not torch.allclose(before[:, 3:], after[:, 3:])


# --- cached decoding equals the full pass ---------------------------------------------------------------------


def cached_params():
    for attention in CAUSAL_CACHED:
        for pos_enc in POS_ENCS:
            if pos_enc_kind(pos_enc) == "bias" and not flag(attention, "supports_bias"):
                continue  # refused at build time (test_bias_encoding_needs_an_attention_with_bias)
            yield pytest.param(attention, pos_enc, id=f"{attention}-{pos_enc}")


@pytest.mark.parametrize(("attention", "pos_enc"), list(cached_params()))
def test_cached_decode_equals_full_pass(attention, pos_enc, local_pos_encs) -> None:
    spec = attention_spec(attention)
    cross = spec if flag(attention, "supports_cross") else "softmax"
    net = model(attention=spec, pos_enc=pos_enc, decoder={"cross_attention": cross})
    src, tgt = batch()
    tolerance = 1e-5
    with torch.no_grad():
        full = net(src, tgt)
        for chunks in ([1] * 6, [3, 1, 2]):
            cached = decode_in_chunks(net, src, tgt, chunks)
            torch.testing.assert_close(cached, full, atol=tolerance, rtol=tolerance)


@pytest.mark.parametrize("cross_attention", CROSS_CACHED)
def test_cached_decode_with_every_cross_attention(cross_attention) -> None:
    net = model(decoder={"cross_attention": cross_attention}, kv_heads=2)
    src, tgt = batch()
    with torch.no_grad():
        torch.testing.assert_close(decode_in_chunks(net, src, tgt, [1] * 6), net(src, tgt), atol=1e-5, rtol=1e-5)


def test_reorder_cache_selects_rows() -> None:
    """Decoding on, after reordering the cache, equals decoding the reordered batch from scratch."""
    net = model()
    src, tgt = batch()
    index = torch.tensor([2, 2, 0, 1])
    with torch.no_grad():
        mask = net.padding_mask(src)
        memory, cache = net.encode(src, mask), {}
        net.decode(tgt[:, :4], memory, mask, cache=cache)
        net.reorder_cache(cache, index)
        assert cache[1]["cross"]["k"].shape[0] == 4
        step = net.decode(tgt[index, 4:], memory[index], mask[index], cache=cache)
        torch.testing.assert_close(step, net(src[index], tgt[index])[:, 4:], atol=1e-5, rtol=1e-5)


def test_uncacheable_attention_refuses_the_cache() -> None:
    class Uncached(SoftmaxAttention):
        supports_cache = False

    net = model(decoder={"cross_attention": Uncached()})
    src, tgt = batch()
    assert not net.supports_cache
    with pytest.raises(ConfigError) as exc:
        net.decode(tgt, net.encode(src), cache={})
    assert "use_cache=False" in one_line(exc)
    assert net(src, tgt).shape == (3, 6, VOCAB)  # the full pass still works


# --- per-stack options ----------------------------------------------------------------------------------------


def test_per_stack_overrides_reach_their_layers() -> None:
    net = model(
        attention="eager",
        pos_enc="learned",
        encoder={"attention": {"name": "local", "window": 3}, "pos_enc": None},
        decoder={"attention": "softmax", "cross_attention": "linear", "pos_enc": "sinusoidal"},
    )
    assert all(type(b.attn.attention).__name__ == "LocalAttention" for b in net.encoder_blocks)
    assert net.encoder_blocks[0].attn.attention.window == 3
    assert all(type(b.self_attn.attention).__name__ == "SoftmaxAttention" for b in net.decoder_blocks)
    assert all(type(b.cross_attn.attention).__name__ == "LinearAttention" for b in net.decoder_blocks)
    assert type(net.encoder_pos_enc).__name__ == "Learned"  # None inherits the model's
    assert net.encoder_pos_enc.max_len == TINY["max_len"]
    assert type(net.decoder_pos_enc).__name__ == "Sinusoidal"
    inherited = model(attention="eager", decoder={"attention": "softmax"})
    assert type(inherited.encoder_blocks[0].attn.attention).__name__ == "EagerAttention"
    assert type(inherited.decoder_blocks[0].cross_attn.attention).__name__ == "EagerAttention"


def test_encodings_are_separate_and_know_their_stack(local_pos_encs) -> None:
    net = model(pos_enc="test_bias")
    assert net.encoder_pos_enc is not net.decoder_pos_enc
    assert not net.encoder_pos_enc.causal and net.decoder_pos_enc.causal
    rotary = model(pos_enc="test_rotary")
    assert all(b.attn.pos_enc is rotary.encoder_pos_enc for b in rotary.encoder_blocks)
    assert all(b.self_attn.pos_enc is rotary.decoder_pos_enc for b in rotary.decoder_blocks)
    assert all(b.cross_attn.pos_enc is not rotary.decoder_pos_enc for b in rotary.decoder_blocks)  # two sequences
    assert all("pos_enc" not in name for name, _ in rotary.encoder_blocks.named_modules())  # held, not registered
    learned = model(pos_enc="learned")
    assert learned.encoder_pos_enc.weight is not learned.decoder_pos_enc.weight


@pytest.mark.parametrize("pos_enc", ["none", *PLUGINS])
def test_positions_reach_both_stacks_through_the_hooks(pos_enc, local_pos_encs) -> None:
    """Without positions each stack sees a set: reversing the source reverses the memory, and reordering the earlier
    targets leaves the last one's logits alone (one causal layer). A plugin encoding of any kind, through its hook,
    breaks both."""
    net = model(pos_enc=pos_enc, decoder_depth=1)
    src, tgt = batch()
    src, tgt = src[:1], tgt[:1]  # no padding
    reordered = torch.cat([tgt[:, :-1].flip(1), tgt[:, -1:]], dim=1)
    with torch.no_grad():
        memory = net.encode(src)
        encoder_blind = torch.allclose(net.encode(src.flip(1)), memory.flip(1), atol=1e-5)
        decoder_blind = torch.allclose(net.decode(tgt, memory)[:, -1], net.decode(reordered, memory)[:, -1], atol=1e-5)
    assert encoder_blind == decoder_blind == (pos_enc == "none")


def test_tied_and_shared_embeddings() -> None:
    tied = model()
    assert tied.output.weight is tied.tgt_embed.weight
    assert tied.src_embed is not tied.tgt_embed
    shared = model(share_vocab=True)
    assert shared.src_embed is shared.tgt_embed is not None and shared.output.weight is shared.tgt_embed.weight
    untied = model(tie_embeddings=False)
    assert untied.output.weight is not untied.tgt_embed.weight
    n_tied = sum(p.numel() for p in tied.parameters())
    assert sum(p.numel() for p in untied.parameters()) == n_tied + VOCAB * DIM
    assert sum(p.numel() for p in shared.parameters()) == n_tied - VOCAB * DIM


def test_embeddings_are_scaled_to_unit_size() -> None:
    net = model(dim=64, heads=4, src_vocab=500)
    x = net.src_embed(torch.arange(1, 500)) * net.embed_scale
    assert 0.8 < x.std().item() < 1.2
    assert model(scale_embeddings=False).embed_scale == 1.0


# --- refusals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ({"attention": "linformer"}, ("decoder self-attention must be causal", "model.decoder.attention=")),
        ({"decoder": {"attention": "linformer"}}, ("attention=linformer", "model.decoder.attention=")),
        ({"attention": "local"}, ("attention=local cannot be cross-attention", "model.decoder.cross_attention=")),
        ({"encoder": {"attn": "local"}}, ("model.encoder has no key 'attn'", "did you mean 'attention'")),
        ({"decoder": "softmax"}, ("model.decoder='softmax' must be a mapping",)),
        ({"share_vocab": True, "tgt_vocab": 30}, ("share_vocab", "src_vocab=20, tgt_vocab=30")),
        ({"heads": 5}, ("heads=5", "model.dim=32")),
        ({"depth": 0}, ("model.depth=0",)),
        ({"pad_id": 20}, ("model.pad_id=20",)),
        ({"attention": {"name": "linformer", "max_length": 16}, "decoder": {"attention": "softmax"}}, ("16 keys",)),
    ],
    ids=lambda v: "-".join(map(str, v)) if isinstance(v, dict) else None,
)
def test_bad_configurations_are_refused_in_one_line(overrides, fragments) -> None:
    with pytest.raises(ConfigError) as exc:
        EncoderDecoder(**{**TINY, **overrides})
    message = one_line(exc)
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("attention", [n for n in ATTENTIONS if not flag(n, "supports_bias")])
@pytest.mark.parametrize("stack", ["encoder", "decoder"])
def test_bias_encoding_needs_an_attention_with_bias(attention, stack, local_pos_encs) -> None:
    other = "decoder" if stack == "encoder" else "encoder"
    overrides = {other: {"pos_enc": "sinusoidal"}, stack: {"attention": attention_spec(attention)}}
    if stack == "decoder":
        overrides["decoder"]["cross_attention"] = "softmax"
    with pytest.raises(ConfigError) as exc:
        EncoderDecoder(**{**TINY, "pos_enc": "test_bias", **overrides})
    message = one_line(exc)
    if stack == "decoder" and not flag(attention, "supports_causal"):
        assert "must be causal" in message
    else:
        assert f"pos_enc=test_bias needs score bias; model.{stack}.attention=" in message


def test_bad_inputs_are_refused_in_one_line() -> None:
    net = model()
    src, tgt = batch()
    for call, fragment in (
        (lambda: net.encode(src.clamp(max=VOCAB - 1) + 1), "source token id 20 is outside the vocabulary of 20"),
        (lambda: net(src, tgt - 5), "target token id -2"),
        (lambda: net.encode(torch.ones(1, 65, dtype=torch.long)), "exceeds model.max_len=64"),
        (lambda: net(src, torch.ones(3, 65, dtype=torch.long)), "target of 65 positions"),
        (lambda: net.encode(src[0]), "source tokens must be [B, N]"),
    ):
        with pytest.raises(ConfigError) as exc:
            call()
        assert fragment in one_line(exc)


# --- registry -------------------------------------------------------------------------------------------------


def test_built_from_the_registry_with_its_defaults() -> None:
    node = registry.defaults("model", "transformer")
    assert node["dim"] == 256 and node["pos_enc"] == "sinusoidal" and node["encoder"] is None
    options = {k: v for k, v in node.items() if k != "name"}
    net = attnkit.build("model", "transformer", src_vocab=VOCAB, tgt_vocab=VOCAB, **{**options, "dim": 32, "depth": 1})
    src, tgt = batch()
    assert net(src, tgt).shape == (3, 6, VOCAB)
    with pytest.raises(ConfigError) as exc:
        attnkit.build("model", "transformer", src_vocab=VOCAB, tgt_vocab=VOCAB, dpeth=2)
    assert "did you mean 'depth'" in one_line(exc)


def test_listed_by_mode_list() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.list_components()
    text = out.getvalue()
    assert "transformer" in text and "Encoder–decoder transformer" in text and "share_vocab=False" in text
