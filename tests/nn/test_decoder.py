"""The decoder-only language model: causality, cached decoding equal to the full pass and cached sampling equal to
uncached sampling for every causal attention, positional kind and a hybrid stack; sampling's options; tied
embeddings; refusals."""

from __future__ import annotations

import pytest
import torch
from checks import one_line

import attnkit
from attnkit import ConfigError
from attnkit.nn import Decoder, sample
from attnkit.nn.decoding import Sample

VOCAB = 13
TINY = {"dim": 16, "depth": 2, "heads": 2, "max_len": 24, "dropout": 0.0}
CAUSAL = [n for n in attnkit.available("attention") if attnkit.get("attention", n).supports_causal]
BIAS = {n for n in CAUSAL if attnkit.get("attention", n).supports_bias}
POSITIONS = ["none", "sinusoidal", "learned", "rope", "alibi", "t5"]
CASES = [(a, p) for a in CAUSAL for p in POSITIONS if p not in ("alibi", "t5") or a in BIAS]
HYBRID = [{"attention": "linear"}, {"attention": "softmax"}]


def tiny(**overrides) -> Decoder:
    torch.manual_seed(0)
    return Decoder(VOCAB, **{**TINY, **overrides}).eval()


@pytest.mark.parametrize(("attention", "pos_enc"), CASES)
def test_cached_decoding_and_sampling_equal_the_uncached(attention: str, pos_enc: str) -> None:
    net = tiny(attention=attention, pos_enc=pos_enc)
    ids = torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = net(ids)
        cache: dict = {}
        steps = [net(ids[:, :4], cache=cache)] + [net(ids[:, t : t + 1], cache=cache) for t in range(4, 9)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-4)
    options = {"max_new_tokens": 8, "temperature": 1.0, "top_k": 6, "top_p": 0.9, "repetition_penalty": 1.2}
    cached = sample(net, ids[:, :3], seed=5, **options)
    assert torch.equal(cached, sample(net, ids[:, :3], seed=5, use_cache=False, **options))
    assert cached.shape == (2, 8)


@pytest.mark.parametrize(("attention", "pos_enc"), CASES)
def test_a_tiny_model_learns_a_batch_then_generates(attention: str, pos_enc: str) -> None:
    net = tiny(attention=attention, pos_enc=pos_enc).train()
    ids = torch.randint(0, VOCAB, (4, 12), generator=torch.Generator().manual_seed(2))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(net(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses
    out = sample(net.eval(), ids[:, :3], max_new_tokens=6, temperature=0)
    assert out.shape == (4, 6) and int(out.max()) < VOCAB


def test_a_hybrid_stack_decodes_with_a_state_and_a_kv_cache() -> None:
    net = tiny(layers=HYBRID, pos_enc="rope")
    prompt = torch.randint(0, VOCAB, (1, 4))
    cache: dict = {}
    with torch.no_grad():
        net(prompt, cache=cache)
    assert set(cache[0]) == {"state", "length"} and set(cache[1]) == {"k", "v"}
    options = {"max_new_tokens": 10, "temperature": 0.8, "seed": 2}
    assert torch.equal(sample(net, prompt, **options), sample(net, prompt, use_cache=False, **options))


def test_the_model_is_causal_and_ties_its_head() -> None:
    net = tiny()
    ids = torch.randint(0, VOCAB, (1, 10))
    changed = ids.clone()
    changed[0, 6:] = (changed[0, 6:] + 1) % VOCAB
    with torch.no_grad():
        torch.testing.assert_close(net(ids)[:, :6], net(changed)[:, :6])
    assert net.head.weight is net.embed.weight
    assert tiny(tie_embeddings=False).head.weight is not tiny(tie_embeddings=False).embed.weight


def test_sampling_options() -> None:
    """Temperature 0 is greedy; top_k=1 is greedy at any temperature; a seed fixes the draws, another changes them."""
    net = tiny()
    prompt = torch.randint(0, VOCAB, (3, 2))
    greedy = sample(net, prompt, max_new_tokens=12, temperature=0)
    with torch.no_grad():
        ids = prompt
        for _ in range(12):
            ids = torch.cat([ids, net(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(greedy, ids[:, 2:])
    assert torch.equal(sample(net, prompt, max_new_tokens=12, temperature=5.0, top_k=1), greedy)
    hot = {"max_new_tokens": 12, "temperature": 5.0}
    assert torch.equal(sample(net, prompt, seed=1, **hot), sample(net, prompt, seed=1, **hot))
    assert not torch.equal(sample(net, prompt, seed=1, **hot), sample(net, prompt, seed=2, **hot))


def test_top_p_keeps_the_smallest_set_that_reaches_it() -> None:
    logp = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    seen = set()
    search = Sample(torch.tensor([1]), (), eos_id=-1, pad_id=-1, top_p=0.75, seed=0)
    for _ in range(200):
        seen.add(int(search.pick(logp)))
    assert seen == {0, 1}


def test_streamed_tokens_are_the_result() -> None:
    net = tiny()
    streamed: list[int] = []
    out = sample(net, torch.tensor([[1, 2]]), max_new_tokens=7, stream=lambda t: streamed.append(int(t[0])))
    assert streamed == out[0].tolist()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: tiny(attention="linformer"), "another causal attention: eager, linear, local, performer, softmax"),
        (lambda: tiny(attention="nystrom"), "model.attention=nystrom cannot mask the future"),
        (lambda: sample(tiny(), torch.zeros(1, 20, dtype=torch.long), max_new_tokens=5), "task.truncate=left"),
        (lambda: sample(tiny(), torch.zeros(1, 2, dtype=torch.long), max_new_tokens=2, top_p=0), "top_p=0"),
        (lambda: sample(tiny(), torch.zeros(1, 2, dtype=torch.long), max_new_tokens=0), "max_new_tokens=0"),
        (lambda: tiny()(torch.full((1, 3), VOCAB)), f"outside the vocabulary of {VOCAB}"),
    ],
)
def test_refusals_are_one_line(make, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        make()
    assert expected in one_line(exc)


def test_a_sinusoidal_table_is_added_at_the_embeddings_scale_unless_given() -> None:
    """The decoder's token embeddings start at std 0.02: a sinusoidal table at its own scale of 1 would drown them
    (Tiny Shakespeare, docs/measured/lm.md: 3.92 against 3.07 bits per character), so the decoder adds it at 0.02;
    an explicit `scale` wins, and the other models keep 1."""
    assert Decoder(16, dim=8, heads=2, pos_enc="sinusoidal").pos_enc.scale == 0.02
    assert Decoder(16, dim=8, heads=2, pos_enc={"name": "sinusoidal", "scale": 1.0}).pos_enc.scale == 1.0
    assert attnkit.build("pos_enc", "sinusoidal", dim=8).scale == 1.0
