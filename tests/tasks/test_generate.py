"""Generation options of the text tasks: which pieces begin a word for each tokenizer kind (what `no_repeat_ngram`
counts), digits that may repeat, and one-line refusals of bad decoding options."""

from __future__ import annotations

import pytest
from checks import one_line

from attnkit.errors import ConfigError
from attnkit.tasks.seq2seq.generate import DecodeOptions, digit_pieces, word_starts
from attnkit.text.pairs import TextPairs
from attnkit.text.tokenizer import load_tokenizers

TEXTS = [("microsoft seeking a deal in 2000", "microsoft seeking deal"), ("seeking seekers seek deals", "deals")] * 5


def tokenizer(kind: str, tmp_path):
    pairs = TextPairs(train=TEXTS, val=TEXTS[:1], test=TEXTS[:1], src="text", tgt="summary")
    options = {"kind": kind, "vocab_size": 60, "min_frequency": 1}
    return load_tokenizers(pairs, cache_dir=str(tmp_path), **options).tgt


def starts_of(tok, text: str) -> list[tuple[str, bool]]:
    ids = tok.encode([text])[0]
    starts = word_starts(tok)
    return [(tok.tokenizer.id_to_token(i), bool(starts[i])) for i in ids]


def test_bpe_pieces_begin_a_word_at_the_space_mark(tmp_path) -> None:
    tok = tokenizer("bpe", tmp_path)
    pieces = starts_of(tok, "seeking seekers 2000")
    assert all(start == piece.startswith("▁") for piece, start in pieces)
    assert sum(start for _, start in pieces) == 3  # one word start per word
    starts = word_starts(tok)
    assert all(starts[i] for i in (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id))
    digits = digit_pieces(tok)
    assert all(digits[i] == piece.lstrip("▁").isdigit() for piece, i in tok.tokenizer.get_vocab().items())
    assert digits.any()


def test_word_and_character_tokenizers(tmp_path) -> None:
    assert all(start for _, start in starts_of(tokenizer("words", tmp_path / "w"), "seeking a deal"))
    chars = starts_of(tokenizer("chars", tmp_path / "c"), "a deal")
    assert [start for _, start in chars] == [False, True, False, False, False, False]  # words begin at spaces


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"no_repeat_unit": "words"}, "task.no_repeat_unit='words' must be one of word, piece"),
        ({"repetition_penalty": 0}, "task.repetition_penalty=0 must be a number > 0"),
        ({"repetition_penalty": "high"}, "task.repetition_penalty='high' must be a number > 0"),
    ],
)
def test_bad_decoding_options_are_refused_in_one_line(options, fragment) -> None:
    with pytest.raises(ConfigError) as err:
        DecodeOptions(**options)
    assert fragment in one_line(err)
