"""Greedy and beam search: cached and uncached decoding agree, beam 1 is greedy, beam finds at least greedy's score,
lengths, min_len, n-gram blocking, the cross-attention cache computed once, and one-line refusals of bad options."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from checks import one_line
from torch import Tensor

from attnkit import ConfigError
from attnkit.nn import EncoderDecoder
from attnkit.nn.decoding import Greedy, beam_search, generate, greedy, max_lengths, sequence_log_prob

PAD, BOS, EOS, VOCAB = 0, 1, 2, 20
IDS = {"bos_id": BOS, "eos_id": EOS, "pad_id": PAD}


def reverse_task(b: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Sources of 3–7 tokens (right-padded to 7) and targets: the source reversed, then EOS (padded to 8)."""
    lengths = torch.randint(3, 8, (b,), generator=generator)
    src, tgt = torch.zeros(b, 7, dtype=torch.long), torch.zeros(b, 8, dtype=torch.long)
    for i, n in enumerate(lengths.tolist()):
        seq = torch.randint(3, VOCAB, (n,), generator=generator)
        src[i, :n], tgt[i, :n], tgt[i, n] = seq, seq.flip(0), EOS
    return src, tgt


def tiny(**overrides) -> EncoderDecoder:
    options = {"dim": 32, "depth": 1, "heads": 4, "dropout": 0.0, "max_len": 48, "share_vocab": True, **overrides}
    return EncoderDecoder(VOCAB, VOCAB, **options)


@pytest.fixture(scope="module")
def trained() -> EncoderDecoder:
    """A model trained for 120 steps on reversal: right on most tokens, not on every sentence."""
    torch.manual_seed(0)
    net = tiny()
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(120):
        src, tgt = reverse_task(64, generator)
        tgt_in = torch.cat([torch.full((64, 1), BOS), tgt[:, :-1]], dim=1)
        loss = F.cross_entropy(net(src, tgt_in).flatten(0, 1), tgt.flatten(), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval()


@pytest.fixture
def untrained() -> EncoderDecoder:
    return tiny(decoder_depth=2).eval()


@pytest.fixture(params=["untrained", "trained"])
def net(request) -> EncoderDecoder:
    return request.getfixturevalue(request.param)


def sources(b: int = 12, seed: int = 1) -> tuple[Tensor, Tensor]:
    return reverse_task(b, torch.Generator().manual_seed(seed))


def eos_positions(tokens: Tensor) -> Tensor:
    """Index of the first EOS per row (the row's width when there is none)."""
    is_eos = tokens.eq(EOS)
    return torch.where(is_eos.any(1), is_eos.int().argmax(1), torch.full_like(is_eos[:, 0], tokens.shape[1], dtype=int))


def test_trained_model_is_not_trivial(trained) -> None:
    src, tgt = sources(32)
    out = greedy(trained, src, **IDS)
    width = min(out.shape[1], tgt.shape[1])
    correct = (out[:, :width] == tgt[:, :width])[tgt[:, :width] != PAD].float().mean()
    assert 0.5 < correct < 1.0


# --- cached and uncached decoding give the same tokens --------------------------------------------------------


def test_greedy_with_and_without_cache(net) -> None:
    src, _ = sources()
    assert torch.equal(greedy(net, src, **IDS), greedy(net, src, **IDS, use_cache=False))


@pytest.mark.parametrize(
    "options",
    [{"beam": 4}, {"beam": 3, "length_penalty": 0.0, "no_repeat_ngram": 2}, {"beam": 5, "min_len": 4}],
    ids=["beam4", "lp0-ngram2", "min_len4"],
)
def test_beam_search_with_and_without_cache(net, options) -> None:
    src, _ = sources()
    assert torch.equal(
        beam_search(net, src, **IDS, **options), beam_search(net, src, **IDS, **options, use_cache=False)
    )


def test_beam_of_one_is_greedy(net) -> None:
    src, _ = sources()
    assert torch.equal(beam_search(net, src, **IDS, beam=1), greedy(net, src, **IDS))


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_scores_at_least_greedy(trained, length_penalty) -> None:
    src, _ = sources(32)
    best = beam_search(trained, src, **IDS, beam=5, length_penalty=length_penalty)
    first = greedy(trained, src, **IDS)
    beam_score = sequence_log_prob(trained, src, best, bos_id=BOS, length_penalty=length_penalty)
    greedy_score = sequence_log_prob(trained, src, first, bos_id=BOS, length_penalty=length_penalty)
    assert (beam_score >= greedy_score - 1e-5).all()
    assert (beam_score > greedy_score + 1e-3).any()  # beam search finds better outputs for some sentences


# --- the outputs and their lengths ----------------------------------------------------------------------------


@pytest.mark.parametrize("search", [greedy, beam_search])
def test_outputs_stop_at_eos_and_respect_the_length_limits(untrained, search) -> None:
    src, _ = sources()
    out = search(untrained, src, **IDS, max_len_a=1.0, max_len_b=0)
    limits = max_lengths(untrained, src.eq(PAD), max_len_a=1.0, max_len_b=0, max_len=None)
    torch.testing.assert_close(limits, src.ne(PAD).sum(1))
    ends = eos_positions(out)
    assert (ends <= limits).all()  # at most `limit` tokens, then EOS (forced at the limit)
    assert out.shape[1] == int(ends.max()) + 1
    for row, end in zip(out, ends.tolist(), strict=True):
        assert row[end] == EOS
        assert not torch.isin(row[:end], torch.tensor([PAD, BOS, EOS])).any()
        assert (row[end + 1 :] == PAD).all()


@pytest.mark.parametrize("search", [greedy, beam_search])
def test_max_len_caps_every_sentence(untrained, search) -> None:
    src, _ = sources()
    out = search(untrained, src, **IDS, max_len=3)
    assert out.shape[1] <= 4 and (eos_positions(out) <= 3).all()


@pytest.mark.parametrize("search", [greedy, beam_search])
def test_without_an_end_token_every_sentence_runs_to_its_limit(untrained, search) -> None:
    src, _ = sources()
    out = search(untrained, src, bos_id=BOS, eos_id=-1, max_len_a=1.0, max_len_b=2)
    lengths = src.ne(PAD).sum(1) + 2
    assert out.shape[1] == int(lengths.max())
    torch.testing.assert_close(out.ne(PAD).sum(1), lengths)


@pytest.mark.parametrize("search", [greedy, beam_search])
def test_min_len(trained, search) -> None:
    src, _ = sources()
    out = search(trained, src, **IDS, min_len=9)
    assert (eos_positions(out) >= 9).all()


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram(untrained, n) -> None:
    src, _ = sources()
    plain = beam_search(untrained, src, **IDS, max_len_a=0, max_len_b=12)
    out = beam_search(untrained, src, **IDS, max_len_a=0, max_len_b=12, no_repeat_ngram=n)

    def repeats(row: Tensor) -> bool:
        tokens = row[row.ne(PAD)].tolist()
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        return len(grams) != len(set(grams))

    assert any(repeats(row) for row in plain)  # an untrained model repeats itself
    assert not any(repeats(row) for row in out)


# --- a strategy of one's own: the loop that greedy and beam search share -----------------------------------------


class LeastLikely(Greedy):
    """Greedy with another `pick` (as sampling would be): the least probable token the constraints allow."""

    def pick(self, logp: Tensor) -> Tensor:
        return logp.masked_fill(logp.isneginf(), float("inf")).argmin(dim=-1)


def test_a_new_strategy_is_a_pick_and_gets_the_loop_constraints_and_cache(untrained) -> None:
    src, _ = sources()
    options = {**IDS, "max_len_a": 0.0, "max_len_b": 6, "max_len": None, "min_len": 2}
    out = generate(untrained, src, None, LeastLikely, **options, use_cache=True)
    assert torch.equal(out, generate(untrained, src, None, LeastLikely, **options, use_cache=False))
    assert torch.equal(
        generate(untrained, src, None, Greedy, **options, use_cache=True), greedy(untrained, src, **options)
    )
    assert not torch.equal(out, greedy(untrained, src, **options))
    ends = eos_positions(out)
    assert ((ends >= 2) & (ends <= 6)).all()  # min_len and the limit hold; EOS is forced at the limit
    for row, end in zip(out, ends.tolist(), strict=True):
        assert row[end] == EOS and not torch.isin(row[:end], torch.tensor([PAD, BOS, EOS])).any()


# --- the cache and the model's state --------------------------------------------------------------------------


@pytest.mark.parametrize("search", [greedy, beam_search])
def test_cross_attention_keys_are_computed_once_per_source(untrained, search) -> None:
    src, _ = sources(b=5)
    calls: list[int] = []
    hooks = [
        block.cross_attn.k_proj.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
        for block in untrained.decoder_blocks
    ]
    try:
        search(untrained, src, **IDS)
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == [5] * len(untrained.decoder_blocks)  # one batch of the 5 sources per layer, beams included


def test_training_mode_is_restored_and_no_graph_is_built(untrained) -> None:
    untrained.train()
    src, _ = sources()
    for search in (greedy, beam_search):
        out = search(untrained, src, **IDS)
        assert untrained.training and not out.requires_grad
    with torch.no_grad():
        # eval mode inside: dropout would make cached and uncached decoding differ
        noisy = tiny(dropout=0.5).train()
        assert torch.equal(greedy(noisy, src, **IDS), greedy(noisy, src, **IDS, use_cache=False))


# --- refusals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"beam": 0}, "beam=0"),
        ({"beam": -2}, "beam=-2"),
        ({"beam": 2.5}, "beam=2.5"),
        ({"min_len": 10, "max_len": 5}, "min_len=10 exceeds the maximum target length 5"),
        ({"min_len": 60}, "min_len=60 exceeds the maximum target length 47"),
        ({"min_len": -1}, "min_len=-1"),
        ({"max_len_a": -0.5}, "max_len_a=-0.5"),
        ({"max_len_b": -1}, "max_len_b=-1"),
        ({"max_len": 0}, "max_len=0"),
        ({"no_repeat_ngram": -1}, "no_repeat_ngram=-1"),
        ({"bos_id": VOCAB}, f"bos_id={VOCAB} is outside the target vocabulary"),
        ({"pad_id": -1}, "pad_id=-1"),
    ],
)
def test_bad_options_are_refused_in_one_line(untrained, options, fragment) -> None:
    src, _ = sources()
    with pytest.raises(ConfigError) as exc:
        beam_search(untrained, src, **{**IDS, **options})
    assert fragment in one_line(exc)
    if "beam" not in options and "no_repeat_ngram" not in options:
        with pytest.raises(ConfigError) as exc:
            greedy(untrained, src, **{**IDS, **options})
        assert fragment in one_line(exc)


def test_a_source_must_be_a_batch(untrained) -> None:
    with pytest.raises(ConfigError) as exc:
        greedy(untrained, torch.tensor([3, 4, 5]), **IDS)
    assert "[B, Ns]" in one_line(exc)


# --- n-grams of words, stutters and the repetition penalty ------------------------------------------------------

# pieces of a toy BPE vocabulary: 3 ▁microsoft, 4 ▁seeking, 5 ▁deal, 6 ▁seek, 7 ing, 8 ▁m, 9 ust, 10 ▁2, 11 00, 12 ▁un
STARTS = torch.tensor([True, True, True, True, True, True, True, False, True, False, True, False, True] + [True] * 7)
DIGITS = torch.zeros(VOCAB, dtype=torch.bool)
DIGITS[[10, 11]] = True


def word_banned(pieces: list[int], n: int) -> set[int]:
    from attnkit.nn.decoding import _repeated_words

    banned = _repeated_words(torch.tensor([pieces]), n, STARTS, DIGITS)[0]
    return set(banned.nonzero().flatten().tolist())


@pytest.mark.parametrize(
    ("pieces", "n", "banned"),
    [
        ([3, 4, 4], 2, {4}),  # "microsoft seeking seeking" + "seeking": the bigram (seeking, seeking) again
        ([6, 7, 6, 7, 6], 2, {7}),  # "seek|ing seek|ing seek" + "ing": the same words made of two pieces each
        ([6, 7, 6, 7, 6], 3, set()),  # ... but no word trigram repeats
        ([3, 4, 5, 3, 4], 3, {5}),  # "microsoft seeking deal microsoft seeking" + "deal"
        ([8, 9], 2, {9}),  # "m|ust" + "ust": a piece never follows itself inside a word
        ([10, 11], 2, set()),  # "2|00" + "00" is a number
        ([12, 9, 12], 2, set()),  # "un|ust un" + "ust": only the words so far count, not the pieces in them
    ],
)
def test_no_repeat_ngram_counts_words_and_blocks_stutters(pieces, n, banned) -> None:
    assert word_banned(pieces, n) == banned


def test_piece_ngrams_let_a_stuttering_sequence_through_that_word_ngrams_block(untrained) -> None:
    """The same pieces ("microsoft seeking seeking") pass the piece trigram rule but not the word one at n = 2,
    and a forced stutter is blocked in the search's output."""
    from attnkit.nn.decoding import _repeated_ngrams

    assert not _repeated_ngrams(torch.tensor([[3, 4, 4]]), 3, VOCAB)[0, 4]
    assert word_banned([3, 4, 4], 2) == {4}
    src, _ = sources()
    with torch.no_grad():
        untrained.output.weight[9] += 5 * untrained.output.weight.std()  # "ust" everywhere
    plain = beam_search(untrained, src, **IDS, max_len_a=0, max_len_b=10, beam=3)
    words = beam_search(untrained, src, **IDS, max_len_a=0, max_len_b=10, beam=3, no_repeat_ngram=2, word_starts=STARTS)

    def stutters(row: Tensor) -> bool:
        tokens = row[row.ne(PAD)].tolist()
        return any(a == b and not STARTS[a] for a, b in zip(tokens, tokens[1:], strict=False))

    assert any(stutters(row) for row in plain)
    assert not any(stutters(row) for row in words)


def test_repetition_penalty_lowers_the_tokens_already_written() -> None:
    from attnkit.nn.decoding import _next_log_probs

    logits = torch.tensor([[2.0, -1.0, 0.5, 0.5, 0.5]])
    hyps = torch.tensor([[0, 1]])
    common = {"step": 2, "bos_id": 9, "eos_id": -1, "pad_id": 8, "min_len": 0}
    plain = _next_log_probs(logits, hyps, torch.tensor([10]), **common)
    penalised = _next_log_probs(logits, hyps, torch.tensor([10]), repetition_penalty=2.0, **common)
    expected = torch.log_softmax(torch.tensor([[1.0, -2.0, 0.5, 0.5, 0.5]]), dim=-1)
    torch.testing.assert_close(penalised, expected)
    assert (penalised[0, 2:] > plain[0, 2:]).all()
