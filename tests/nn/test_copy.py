"""Copy attention (`model.decoder.copy`): the mixed distribution is a distribution, cached decoding equals uncached
with every attention and positional encoding, the copy task is learned faster and reaches unseen tokens, and bad
options are refused in one line."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from checks import one_line

import attnkit
from attnkit import ConfigError
from attnkit.nn import EncoderDecoder
from attnkit.nn.decoding import beam_search, greedy

PAD, BOS, EOS, VOCAB = 0, 1, 2, 40
IDS = {"bos_id": BOS, "eos_id": EOS, "pad_id": PAD}
ATTENTIONS = attnkit.available("attention")
POS_ENCS = [name for name in attnkit.available("pos_enc") if not name.endswith("2d")]  # image grids only


def copying(attention: str = "softmax", pos_enc: str = "sinusoidal", copy=True, **overrides) -> EncoderDecoder:
    """A small copying model with `attention` wherever it can serve (softmax where it cannot be causal or cross)."""
    kernel = attnkit.get("attention", attention)
    bias_encoding = getattr(attnkit.get("pos_enc", pos_enc), "kind", None) == "bias"
    if bias_encoding and not kernel.supports_bias:
        pytest.skip(f"pos_enc={pos_enc} needs score bias, which attention={attention} has not")
    decoder = {
        "copy": copy,
        "attention": attention if kernel.supports_causal else "softmax",
        "cross_attention": attention if kernel.supports_cross else "softmax",
    }
    options = {"dim": 32, "depth": 1, "decoder_depth": 2, "heads": 4, "dropout": 0.0, "max_len": 40}
    return EncoderDecoder(
        VOCAB, VOCAB, share_vocab=True, attention=attention, pos_enc=pos_enc, decoder=decoder, **options, **overrides
    ).eval()


def sources(b: int = 4, n: int = 9, seed: int = 0) -> torch.Tensor:
    src = torch.randint(3, VOCAB, (b, n), generator=torch.Generator().manual_seed(seed))
    src[1, 5:] = PAD
    src[2, 7:] = PAD
    return src


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_the_mixed_distribution_sums_to_one_with_finite_gradients(attention) -> None:
    torch.manual_seed(0)
    net = copying(attention).train()
    src, tgt_in = sources(), torch.randint(3, VOCAB, (4, 6))
    logp = net(src, tgt_in)
    assert logp.dtype == torch.float32 and logp.shape == (4, 6, VOCAB)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(4, 6))
    (logp.logsumexp(-1).sum() + F.nll_loss(logp.flatten(0, 1), tgt_in.flatten())).backward()
    assert all(p.grad is None or p.grad.isfinite().all() for p in net.parameters())


def test_copying_puts_mass_on_source_tokens_only_through_the_gate() -> None:
    """With the gate shut on the vocabulary (g = 0), all mass is on the source's tokens, spread by the copy attention;
    padding is never copied."""
    torch.manual_seed(0)
    net = copying(copy={"name": "pointer_generator", "gate_bias": -50.0})
    src = sources()
    probs = net(src, torch.randint(3, VOCAB, (4, 3))).exp()
    for row, tokens in zip(probs, src, strict=True):
        present = torch.zeros(VOCAB, dtype=torch.bool)
        present[tokens[tokens.ne(PAD)]] = True
        assert row[:, present].sum(-1).min() > 1 - 1e-5
        assert row[:, PAD].max() < 1e-6


@pytest.mark.parametrize("pos_enc", POS_ENCS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_cached_decoding_equals_uncached(attention, pos_enc) -> None:
    torch.manual_seed(1)
    net = copying(attention, pos_enc)
    if not net.supports_cache:
        pytest.skip(f"attention={attention} decodes without a cache")
    src = sources()
    for search, options in ((greedy, {}), (beam_search, {"beam": 3, "no_repeat_ngram": 2})):
        cached = search(net, src, **IDS, max_len_b=6, use_cache=True, **options)
        uncached = search(net, src, **IDS, max_len_b=6, use_cache=False, **options)
        assert torch.equal(cached, uncached), (search.__name__, cached, uncached)


def _train_repeat(copy: bool, vocab: int = 1000, cap: int = 300) -> tuple[int | None, float]:
    """Steps to 90% token accuracy on repeating 8 tokens drawn from ids 3..499, then accuracy on ids 500..999, which
    training never showed."""
    torch.manual_seed(0)
    net = EncoderDecoder(
        vocab, vocab, dim=32, depth=1, heads=2, dropout=0.0, max_len=16, share_vocab=True, decoder={"copy": copy}
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)

    def batch(low: int, high: int) -> tuple[torch.Tensor, torch.Tensor]:
        src = torch.randint(low, high, (32, 8), generator=generator)
        return src, torch.cat([torch.full((32, 1), BOS), src[:, :-1]], dim=1)

    reached = None
    for step in range(1, cap + 1):
        src, tgt_in = batch(3, 500)
        out = net(src, tgt_in)
        loss = F.cross_entropy(out.flatten(0, 1), src.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (out.argmax(-1) == src).float().mean() >= 0.9:
            reached = step
            break
    net.eval()
    with torch.no_grad():
        src, tgt_in = batch(500, vocab)
        unseen = (net(src, tgt_in).argmax(-1) == src).float().mean().item()
    return reached, unseen


def test_the_copy_task_is_learned_faster_and_reaches_unseen_tokens() -> None:
    with_copy, unseen_copy = _train_repeat(copy=True)
    without, unseen_plain = _train_repeat(copy=False)
    assert with_copy is not None
    assert without is None or with_copy <= 0.75 * without, (with_copy, without)
    assert unseen_copy > 0.2 and unseen_plain < 0.05, (unseen_copy, unseen_plain)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"share_vocab": False}, "needs one joint vocabulary"),
        ({"decoder": {"copy": {"name": "pointer_generator", "heads": 3}}}, "heads=3 must be a positive integer"),
        ({"decoder": {"copy": "pointr_generator"}}, "did you mean 'pointer_generator'"),
        ({"decoder": {"copy": {"name": "pointer_generator", "gate": 1}}}, "has no option 'gate'"),
    ],
)
def test_bad_copy_options_are_refused_in_one_line(options, fragment) -> None:
    spec = {"dim": 32, "depth": 1, "heads": 4, "share_vocab": True, "decoder": {"copy": True}, **options}
    with pytest.raises((ConfigError, attnkit.RegistryError)) as err:
        EncoderDecoder(VOCAB, VOCAB, **spec)
    assert fragment in one_line(err)


def test_decode_without_the_source_is_refused_in_one_line() -> None:
    net, src = copying(), sources()
    memory = net.encode(src)
    with pytest.raises(ConfigError) as err:
        net.decode(torch.full((4, 1), BOS), memory)
    assert "needs src=" in one_line(err)
