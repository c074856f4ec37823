"""Real words (attnkit/text/words.py): what a word is, the non-word rate, and the decoding constraint: never a
non-word on a toy vocabulary (greedy, beam, sampling; BPE, word and character tokenizers), the same outputs as free
decoding where every word is allowed, cached = uncached, a source-only name copied, task.words=free unchanged."""

from __future__ import annotations

import pytest
import torch
from checks import DE_EN, one_line
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn import Decoder, EncoderDecoder
from attnkit.nn.decoding import beam_search, greedy, sample
from attnkit.tasks.seq2seq.generate import DecodeOptions, digit_pieces, generate_ids, word_starts
from attnkit.text.pairs import TextPairs
from attnkit.text.tokenizer import Tokenizers, load_tokenizers
from attnkit.text.words import Lexicon, WordConstraint, non_word_rate, piece_texts, words

TEXTS = [text for pair in DE_EN for text in pair]
LEXICON = Lexicon.of(TEXTS)


def tokenizers_of(kind: str, tmp_path, vocab_size: int = 90) -> Tokenizers:
    pairs = TextPairs(train=DE_EN, val=DE_EN[:2], test=DE_EN[:2], src="de", tgt="en")
    options = {"kind": kind, "vocab_size": vocab_size, "min_frequency": 1, "cache_dir": str(tmp_path)}
    return load_tokenizers(pairs, options)


def model_for(tokenizers: Tokenizers, seed: int = 0) -> EncoderDecoder:
    torch.manual_seed(seed)
    size = tokenizers.tgt.vocab_size
    return EncoderDecoder(size, size, dim=32, depth=1, heads=4, dropout=0.0, max_len=64, share_vocab=True).eval()


def sources(tokenizers: Tokenizers, texts: list[str]) -> tuple[Tensor, Tensor]:
    tok = tokenizers.src
    ids = [row + [tok.eos_id] for row in tok.encode(texts)]
    width = max(map(len, ids))
    src = torch.tensor([row + [tok.pad_id] * (width - len(row)) for row in ids])
    return src, src.eq(tok.pad_id)


# -- words and the rate ---------------------------------------------------------------------------------------


def test_words_are_runs_of_letters_in_lower_case():
    assert words("Don't stop at 10am!") == ["don", "t", "stop", "at", "am"]
    assert words("Fußball, Straße: 3-2") == ["fußball", "straße"]
    assert words("½ ﬁne") == ["fine"]  # NFKC: the ligature is two letters
    assert words("1990 — 42%") == []


def test_non_words_are_neither_known_nor_in_the_source():
    lexicon = Lexicon(["the", "farmers", "won"])
    assert lexicon.non_words("The farmerss won 3-1") == ["farmerss"]
    assert lexicon.non_words("Ferrari won", source="Ferrari wins") == []
    assert lexicon.mark("The farmerss won", "") == "The «farmerss» won"
    rate = non_word_rate(lexicon, ["the farmerss won", "Ferrari won", "12 34"], ["", "Ferrari", ""])
    assert rate == pytest.approx(1 / 5)
    assert non_word_rate(lexicon, ["", "3"], ["", ""]) == 0.0


@pytest.mark.parametrize("kind", ["bpe", "words", "chars"])
def test_piece_texts_rebuild_the_decoded_text(kind, tmp_path):
    tok = tokenizers_of(kind, tmp_path).tgt
    texts = piece_texts(tok)
    for text in ("A woman reads a book.", "Two children play football."):
        ids = tok.encode([text])[0]
        assert "".join(texts[i] for i in ids).strip() == tok.decode([ids])[0]


# -- the constraint ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bpe", "chars"])
def test_the_constraint_never_emits_a_non_word(kind, tmp_path):
    """An untrained model writes non-words freely; with the constraint, greedy and beam write none."""
    tokenizers = tokenizers_of(kind, tmp_path)
    lexicon = Lexicon.of([en for _, en in DE_EN])  # English only: the German source words come from the source
    constraint = WordConstraint.for_tokenizers(tokenizers.tgt, lexicon, tokenizers.src)
    texts = [de for de, _ in DE_EN]
    src, mask = sources(tokenizers, texts)
    bad, written = {"free": 0, "real": 0}, 0
    for seed in range(3):
        model = model_for(tokenizers, seed)
        for beam in (1, 3):
            for mode in bad:
                options = DecodeOptions(beam=beam, max_len_a=0.0, max_len_b=24, min_len=4, words=mode)
                outputs = tokenizers.tgt.decode(generate_ids(model, src, mask, tokenizers, options, constraint))
                bad[mode] += sum(len(lexicon.non_words(o, s)) for o, s in zip(outputs, texts, strict=True))
                written += sum(len(words(o)) for o in outputs) if mode == "real" else 0
    free_bad, real_bad = bad["free"], bad["real"]
    assert written >= 20  # the constrained outputs hold words, not nothing
    assert free_bad > 0  # the test can fail: without the constraint, this model writes non-words
    assert real_bad == 0


def test_every_piece_the_constraint_allows_keeps_a_word_possible(tmp_path):
    tokenizers = tokenizers_of("bpe", tmp_path)
    constraint = WordConstraint.for_tokenizers(tokenizers.tgt, LEXICON)
    texts = piece_texts(tokenizers.tgt)
    prefixes = {w[:k] for w in LEXICON.known for k in range(len(w) + 1)}
    for start in ("a wo", "the", "two chi", ""):
        ids = tokenizers.tgt.encode([start])[0] if start else []
        allowed = constraint(torch.tensor([ids]), None)[0].nonzero().flatten().tolist()
        word = constraint.current(ids)
        assert word == (words(start)[-1] if start and start[-1].isalpha() else "")
        for i in allowed:
            if i == tokenizers.tgt.eos_id:
                assert word in LEXICON.known or not word
                continue
            text = texts[i].lower()
            if text.isalpha():
                assert word + text in prefixes
            else:
                assert (word in LEXICON.known or not word) and all(w in prefixes for w in words(text))


class NoUnknown(nn.Module):
    """A model that never writes <unk>: a word tokenizer's every other piece is a whole known word."""

    def __init__(self, net: EncoderDecoder, unk: int) -> None:
        super().__init__()
        self.net, self.unk, self.max_len, self.tgt_vocab = net, unk, net.max_len, net.tgt_vocab

    def encode(self, src, mask):
        return self.net.encode(src, mask)

    def decode(self, tgt, memory, mask, cache=None):
        logits = self.net.decode(tgt, memory, mask, cache=cache)
        logits[..., self.unk] = float("-inf")
        return logits

    def reorder_cache(self, cache, index):
        self.net.reorder_cache(cache, index)


def test_beam_search_agrees_with_free_decoding_when_every_word_is_allowed(tmp_path):
    tokenizers = tokenizers_of("words", tmp_path, vocab_size=200)
    tok = tokenizers.tgt
    model = NoUnknown(model_for(tokenizers, 1), tok.unk_id)
    constraint = WordConstraint.for_tokenizers(tok, LEXICON)
    src, mask = sources(tokenizers, [de for de, _ in DE_EN])
    ids = {"bos_id": tok.bos_id, "eos_id": tok.eos_id, "pad_id": tok.pad_id, "max_len_a": 0.0, "max_len_b": 12}
    for beam in (1, 4):
        free = beam_search(model, src, mask, beam=beam, **ids)
        assert torch.equal(beam_search(model, src, mask, beam=beam, allowed=constraint, **ids), free)


@pytest.mark.parametrize("kind", ["bpe", "chars"])
def test_cached_and_uncached_decoding_agree_under_the_constraint(kind, tmp_path):
    tokenizers = tokenizers_of(kind, tmp_path)
    tok = tokenizers.tgt
    model = model_for(tokenizers, 2)
    constraint = WordConstraint.for_tokenizers(tok, LEXICON, tokenizers.src)
    src, mask = sources(tokenizers, [de for de, _ in DE_EN[:6]])
    ids = {"bos_id": tok.bos_id, "eos_id": tok.eos_id, "pad_id": tok.pad_id, "max_len_a": 0.0, "max_len_b": 16}
    cached = greedy(model, src, mask, allowed=constraint, **ids)
    assert torch.equal(cached, greedy(model, src, mask, allowed=constraint, use_cache=False, **ids))
    beamed = beam_search(model, src, mask, beam=3, allowed=constraint, **ids)
    assert torch.equal(beamed, beam_search(model, src, mask, beam=3, allowed=constraint, use_cache=False, **ids))


class Scripted(nn.Module):
    """A model that wants to write `script` (token ids), then EOS; every other token is far less likely."""

    supports_cache = False

    def __init__(self, script: list[int], vocab: int, eos: int) -> None:
        super().__init__()
        self.script, self.vocab, self.eos, self.max_len = [*script, eos], vocab, eos, 64
        self.anchor = nn.Parameter(torch.zeros(1))

    def encode(self, src, mask):
        return torch.zeros(src.shape[0], src.shape[1], 1)

    def decode(self, tgt, memory, mask, cache=None):
        generator = torch.Generator().manual_seed(0)
        logits = torch.randn(tgt.shape[0], tgt.shape[1], self.vocab, generator=generator)
        step = tgt.shape[1] - 1
        logits[:, -1, self.script[min(step, len(self.script) - 1)]] += 20.0
        return logits


def test_a_name_found_only_in_the_source_can_be_copied(tmp_path):
    rows = [*DE_EN, ("Ferrari gewinnt in Monza.", "Ferrari wins at Monza.")]
    pairs = TextPairs(train=rows, val=rows[:2], test=rows[:2], src="de", tgt="en")
    tokenizers = load_tokenizers(pairs, {"vocab_size": 150, "min_frequency": 1, "cache_dir": str(tmp_path)})
    tok = tokenizers.tgt
    lexicon = Lexicon.of(TEXTS)  # no Ferrari, no Monza: they come from the source alone
    assert "ferrari" not in lexicon.known
    constraint = WordConstraint.for_tokenizers(tok, lexicon, tokenizers.src)
    script = tok.encode(["Ferrari runs"])[0]  # "runs" is a word of the training text
    model = Scripted(script, tok.vocab_size, tok.eos_id)
    options = DecodeOptions(beam=1, max_len_a=0.0, max_len_b=12)
    given, _ = sources(tokenizers, ["Ferrari gewinnt in Monza."])
    other, _ = sources(tokenizers, ["Ein Hund läuft im Park."])
    (copied,) = tok.decode(generate_ids(model, given, given.eq(tok.pad_id), tokenizers, options, constraint))
    assert copied == "Ferrari runs"
    (refused,) = tok.decode(generate_ids(model, other, other.eq(tok.pad_id), tokenizers, options, constraint))
    assert "ferrari" not in refused.lower() and lexicon.non_words(refused, "Ein Hund läuft im Park.") == []


def test_a_word_cut_by_the_length_limit_is_dropped(tmp_path):
    tokenizers = tokenizers_of("chars", tmp_path)
    tok = tokenizers.tgt
    constraint = WordConstraint.for_tokenizers(tok, LEXICON)
    ids = tok.encode(["a woman rea"])[0]
    assert tok.decode([constraint.trim(ids)]) == ["a woman"]
    whole = tok.encode(["a woman reads"])[0]
    assert constraint.trim(whole) == whole


def test_task_words_free_is_the_search_without_the_constraint(tmp_path):
    tokenizers = tokenizers_of("bpe", tmp_path)
    tok = tokenizers.tgt
    model = model_for(tokenizers, 3)
    src, mask = sources(tokenizers, [de for de, _ in DE_EN])
    options = DecodeOptions(beam=3, max_len_a=0.0, max_len_b=14, no_repeat_ngram=2, words="free")
    ids = {"bos_id": tok.bos_id, "eos_id": tok.eos_id, "pad_id": tok.pad_id}
    marks = {"word_starts": word_starts(tok), "stutter_free": digit_pieces(tok)}
    plain = beam_search(model, src, mask, beam=3, max_len_a=0.0, max_len_b=14, no_repeat_ngram=2, **ids, **marks)
    expected = [[t for t in row if t not in (tok.eos_id, tok.pad_id)] for row in plain.tolist()]
    assert generate_ids(model, src, mask, tokenizers, options, WordConstraint.for_tokenizers(tok, LEXICON)) == expected


def test_sampling_from_a_language_model_writes_real_words(tmp_path):
    tokenizers = tokenizers_of("chars", tmp_path)
    tok = tokenizers.tgt
    torch.manual_seed(4)
    model = Decoder(tok.vocab_size, dim=32, depth=1, heads=4, max_len=80).eval()
    constraint = WordConstraint(piece_texts(tok), LEXICON, eos_id=tok.eos_id, prompted=True)
    prompt = torch.tensor([tok.encode(["a wom"])[0]])
    free = tok.decode(sample(model, prompt, max_new_tokens=40, seed=0).tolist())[0]
    real = sample(model, prompt, max_new_tokens=40, seed=0, allowed=constraint)
    text = tok.decode([constraint.trim(prompt[0].tolist() + real[0].tolist())])[0]
    assert LEXICON.non_words(free)  # the test can fail
    assert LEXICON.non_words(text) == [] and text.startswith("a wom")


def test_task_words_must_be_real_or_free():
    with pytest.raises(ConfigError) as info:
        DecodeOptions(words="strict")
    assert one_line(info) and "task.words='strict'" in str(info.value)
