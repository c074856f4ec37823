"""Tokenizer kinds (attnkit/text/tokenizer.py): bpe, words and chars; options, checkpoints and the cache."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from checks import DE_EN, one_line, text_pairs

from attnkit.errors import ConfigError, DataError
from attnkit.text.pairs import TextPairs
from attnkit.text.tokenizer import (
    CACHE_VERSION,
    KINDS,
    SPECIAL_TOKENS,
    TokenizerOptions,
    Tokenizers,
    check_tokenizer_options,
    load_tokenizers,
    tokenizer_options,
)

LISTOPS = [
    ("[MAX 2 9 [MIN 4 7 ] 0 ]", "9"),
    ("[SM 1 2 [MED 3 4 5 ] ]", "7"),
    ("[MIN 8 [MAX 1 6 ] ]", "6"),
]
WORDS = [("the cat sat on the mat", "a"), ("the dog sat", "b"), ("a cat", "a")]


def pairs_of(rows: list[tuple[str, str]]) -> TextPairs:
    return TextPairs(train=rows, val=rows[:1], test=rows[:1], src="text", tgt="label")


def load(rows, tmp_path, **options) -> Tokenizers:
    return load_tokenizers(pairs_of(rows), cache_dir=str(tmp_path), **{"min_frequency": 1, **options})


@pytest.mark.parametrize("kind", KINDS)
def test_special_tokens_come_first_in_every_kind(kind, tmp_path):
    tok = load(LISTOPS, tmp_path, kind=kind, vocab_size=100).src
    assert [tok.tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]  # <mask> last: old ids stay
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)


def test_words_are_whitespace_separated_symbols(tmp_path):
    toks = load(LISTOPS, tmp_path, kind="words", vocab_size=100)
    vocab = set(toks.src.tokenizer.get_vocab())
    symbols = {"[MAX", "[MIN", "[MED", "[SM", "]"} | {str(d) for d in range(10)}
    assert vocab == set(SPECIAL_TOKENS) | symbols  # labels are digits too: one joint vocabulary
    ids = toks.src.encode([LISTOPS[0][0]])[0]
    assert len(ids) == len(LISTOPS[0][0].split()) and toks.src.unk_id not in ids
    assert toks.src.decode([ids]) == [LISTOPS[0][0]]


def test_words_decode_with_single_spaces_and_unknown_words_read_as_unk(tmp_path):
    tok = load(WORDS, tmp_path, kind="words", vocab_size=100).src
    ids = tok.encode(["the  cat\tsat \n on   the mat", "the zebra sat"])
    assert tok.decode(ids[:1]) == ["the cat sat on the mat"]
    assert ids[1][1] == tok.unk_id and tok.unk_id not in ids[1][::2]
    assert tok.decode(ids[1:]) == ["the sat"]  # special tokens, <unk> included, are dropped when decoding


def test_words_vocabulary_keeps_the_most_frequent_within_the_cap(tmp_path):
    # counts over sources and labels: the 3, cat 2, sat 2, a 3, on 1, mat 1, dog 1, b 1
    tok = load(WORDS, tmp_path, kind="words", vocab_size=len(SPECIAL_TOKENS) + 4).src
    vocab = tok.tokenizer.get_vocab()
    assert tok.vocab_size == len(SPECIAL_TOKENS) + 4
    ranked = [w for w, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    assert ranked[len(SPECIAL_TOKENS) :] == ["a", "the", "cat", "sat"]
    assert tok.encode(["the mat"])[0] == [vocab["the"], tok.unk_id]
    rare = load(WORDS, tmp_path, kind="words", vocab_size=100, min_frequency=2).src
    assert set(rare.tokenizer.get_vocab()) == set(SPECIAL_TOKENS) | {"the", "a", "cat", "sat"}


def test_words_lowercase(tmp_path):
    tok = load([("The CAT", "x"), ("the cat", "x")], tmp_path, kind="words", lowercase=True).src
    assert tok.decode(tok.encode(["THE Cat"])) == ["the cat"]
    assert set(tok.tokenizer.get_vocab()) == set(SPECIAL_TOKENS) | {"the", "cat", "x"}


def test_chars_decode_restores_the_text_exactly(tmp_path):
    texts = [("Ein Hund  läuft, im Park!", "A dog runs."), ("tab\there; 2 + 2 = 4", "ok")]
    tok = load(texts, tmp_path, kind="chars", vocab_size=200).src
    for text, label in texts:
        ids = tok.encode([text, label])
        assert [len(x) for x in ids] == [len(text), len(label)]
        assert tok.decode(ids) == [text, label]
    assert tok.tokenizer.token_to_id(" ") is not None
    ids = tok.encode(["Hund§"])[0]
    assert ids[-1] == tok.unk_id and tok.decode([ids]) == ["Hund"]


def test_chars_vocabulary_cap(tmp_path):
    tok = load([("aaab", "ba"), ("ccd", "a")], tmp_path, kind="chars", vocab_size=len(SPECIAL_TOKENS) + 2).src
    ranked = [t for t, _ in sorted(tok.tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    assert ranked[len(SPECIAL_TOKENS) :] == ["a", "b"] and ranked[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert tok.encode(["abc"])[0][2] == tok.unk_id


@pytest.mark.parametrize("kind", ["words", "chars"])
def test_checkpoint_state_round_trips(kind, tmp_path):
    toks = load(LISTOPS, tmp_path, kind=kind, vocab_size=100, joint=False)
    again = Tokenizers.from_state(json.loads(json.dumps(toks.to_state())))
    texts = [text for text, _ in LISTOPS] + ["[MAX 1 x ]"]
    assert again.src.encode(texts) == toks.src.encode(texts)
    assert again.src.decode(toks.src.encode(texts)) == toks.src.decode(toks.src.encode(texts))
    assert again.tgt.tokenizer.get_vocab() == toks.tgt.tokenizer.get_vocab()
    assert set(toks.tgt.tokenizer.get_vocab()) == set(SPECIAL_TOKENS) | {"9", "7", "6"}


def test_cache_is_reused_per_kind(tmp_path):
    first = {kind: load(LISTOPS, tmp_path, kind=kind, vocab_size=100) for kind in KINDS}
    assert all(t.info["origin"] == "trained" and t.info["kind"] == kind for kind, t in first.items())
    folders = {kind: Path(t.info["cache"]).name for kind, t in first.items()}
    assert all(folders[kind].startswith(f"{kind}-100-joint-") for kind in KINDS) and len(set(folders.values())) == 3
    for kind in KINDS:
        again = load(LISTOPS, tmp_path, kind=kind, vocab_size=100)
        assert again.info["origin"] == "cache" and again.info["cache"] == first[kind].info["cache"]
        assert again.src.to_json() == first[kind].src.to_json()


def test_bpe_cache_key_is_the_one_it_had_before_kinds(tmp_path):
    pairs = pairs_of(WORDS)
    toks = load_tokenizers(pairs, vocab_size=60, min_frequency=1, cache_dir=str(tmp_path))
    options = {"vocab_size": 60, "joint": True, "min_frequency": 1, "lowercase": False}
    blob = json.dumps({"data": pairs.fingerprint(), "version": CACHE_VERSION, **options}, sort_keys=True).encode()
    assert Path(toks.info["cache"]).name == f"bpe-60-joint-{hashlib.sha256(blob).hexdigest()[:20]}"


def test_options_object_mapping_and_keywords_agree(tmp_path):
    by_object = load_tokenizers(pairs_of(LISTOPS), TokenizerOptions(kind="words", cache_dir=str(tmp_path)))
    by_mapping = load_tokenizers(pairs_of(LISTOPS), {"kind": "words", "cache_dir": str(tmp_path)})
    by_keywords = load_tokenizers(pairs_of(LISTOPS), kind="words", cache_dir=str(tmp_path))
    assert by_object.info["cache"] == by_mapping.info["cache"] == by_keywords.info["cache"]
    assert TokenizerOptions.of(None) == TokenizerOptions()
    assert TokenizerOptions.of({"kind": "chars"}, vocab_size=50) == TokenizerOptions(kind="chars", vocab_size=50)
    assert TokenizerOptions.of(TokenizerOptions(kind="chars"), kind="words").kind == "words"
    assert check_tokenizer_options({"kind": "words"}) == {**check_tokenizer_options(None), "kind": "words"}
    assert tokenizer_options()[0] == "kind" and "vocab_size" in tokenizer_options()


@pytest.mark.parametrize(
    "spec, fragment",
    [
        (
            {"kind": "word"},
            "task.tokenizer.kind='word' is not a tokenizer kind (did you mean 'words'?); choose one of "
            "bpe, words, chars",
        ),
        ({"kind": "sentencepiece"}, "choose one of bpe, words, chars"),
        ({"kinds": "words"}, "task.tokenizer has no option 'kinds' (did you mean 'kind'?)"),
        ({"vocab_size": 5}, "task.tokenizer.vocab_size=5 must be an int > 5"),
        ({"min_frequency": 0}, "task.tokenizer.min_frequency=0 must be an int >= 1"),
        ({"tgt_path": "x.json"}, "task.tokenizer.tgt_path needs task.tokenizer.path"),
        ("words", "task.tokenizer='words' must be a mapping of options"),
    ],
)
def test_bad_options_are_one_line_config_errors(spec, fragment, tmp_path):
    with pytest.raises(ConfigError) as exc:
        check_tokenizer_options(spec)
    assert fragment in one_line(exc)
    if isinstance(spec, dict):
        with pytest.raises(ConfigError, match="task.tokenizer"):
            load_tokenizers(pairs_of(LISTOPS), cache_dir=str(tmp_path), **spec)


@pytest.mark.parametrize("kind", KINDS)
def test_encode_gives_the_ids_of_encode_batch(kind, tmp_path):
    tok = load(WORDS + LISTOPS, tmp_path, kind=kind, vocab_size=60).src
    texts = [text for text, _ in WORDS + LISTOPS] + ["the unseen <unk> word", ""]
    expected = [e.ids for e in tok.tokenizer.encode_batch(texts, add_special_tokens=False)]
    assert tok.encode(texts) == expected


# -- BPE: trained, cached, by path --------------------------------------------------------------------------------


def test_trained_bpe_has_special_tokens_first_and_round_trips(tmp_path):
    toks = load_tokenizers(text_pairs(DE_EN), vocab_size=300, min_frequency=1, cache_dir=str(tmp_path))
    assert toks.joint and toks.info["origin"] == "trained"
    tok = toks.src
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    texts = [de for de, _ in DE_EN] + [en for _, en in DE_EN]
    ids = tok.encode(texts)
    assert all(4 <= i < tok.vocab_size for row in ids for i in row)
    assert tok.decode(ids) == texts
    assert tok.decode([[*ids[0], 2, 0, 0]]) == [texts[0]]  # special tokens are dropped


def test_tokenizer_cache_is_reused_and_keyed_by_data_and_options(tmp_path):
    first = load_tokenizers(text_pairs(DE_EN), vocab_size=300, min_frequency=1, cache_dir=str(tmp_path))
    again = load_tokenizers(text_pairs(DE_EN), vocab_size=300, min_frequency=1, cache_dir=str(tmp_path))
    assert again.info["origin"] == "cache" and again.src.to_json() == first.src.to_json()
    other_size = load_tokenizers(text_pairs(DE_EN), vocab_size=200, min_frequency=1, cache_dir=str(tmp_path))
    other_data = load_tokenizers(text_pairs(DE_EN[:8]), vocab_size=300, min_frequency=1, cache_dir=str(tmp_path))
    assert other_size.info["origin"] == other_data.info["origin"] == "trained"
    assert len(list(tmp_path.iterdir())) == 3


def test_tokenizer_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNKIT_CACHE", str(tmp_path))
    toks = load_tokenizers(text_pairs(DE_EN), vocab_size=300, min_frequency=1)
    assert toks.info["cache"].startswith(str(tmp_path / "tokenizers"))


def test_separate_vocabularies(tmp_path):
    toks = load_tokenizers(text_pairs(DE_EN), vocab_size=300, joint=False, min_frequency=1, cache_dir=str(tmp_path))
    assert not toks.joint
    assert "▁football" in toks.tgt.tokenizer.get_vocab() and "▁football" not in toks.src.tokenizer.get_vocab()
    restored = Tokenizers.from_state(toks.to_state())
    assert restored.src.to_json() == toks.src.to_json() and restored.tgt.to_json() == toks.tgt.to_json()
    joint = Tokenizers.from_state(
        load_tokenizers(text_pairs(DE_EN), vocab_size=300, cache_dir=str(tmp_path)).to_state()
    )
    assert joint.joint


def test_tokenizer_json_by_path(tmp_path):
    toks = load_tokenizers(text_pairs(DE_EN), vocab_size=300, min_frequency=1, cache_dir=str(tmp_path / "c"))
    (tmp_path / "tok.json").write_text(toks.src.to_json())
    loaded = load_tokenizers(text_pairs(DE_EN[:3]), path=str(tmp_path / "tok.json"))
    assert loaded.info["origin"] == "file" and loaded.src.to_json() == toks.src.to_json()
    with pytest.raises(DataError) as exc:
        load_tokenizers(text_pairs(DE_EN), path=str(tmp_path / "missing.json"))
    assert "missing.json" in one_line(exc)
    from tokenizers import Tokenizer, models

    Tokenizer(models.WordLevel({"a": 0, "b": 1}, unk_token="b")).save(str(tmp_path / "bare.json"))
    with pytest.raises(DataError) as exc:
        load_tokenizers(text_pairs(DE_EN), path=str(tmp_path / "bare.json"))
    assert "no pad token" in one_line(exc)


def test_tokenizer_options_are_checked():
    with pytest.raises(ConfigError) as exc:
        check_tokenizer_options({"vocab": 100})
    assert "did you mean 'vocab_size'" in one_line(exc)
    with pytest.raises(ConfigError):
        load_tokenizers(text_pairs(DE_EN), vocab_size=3)
    with pytest.raises(ConfigError):
        load_tokenizers(text_pairs(DE_EN), tgt_path="x.json")
