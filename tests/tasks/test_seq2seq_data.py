"""Text-to-text data shared by translation and summarization: sources, cleaning, splits, tokenizers, batches."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest
import torch
from checks import one_line

import attnkit
from attnkit.data.warning import DataWarning
from attnkit.errors import ConfigError, DataError
from attnkit.tasks.seq2seq.batches import EncodedPairs, LengthBatchSampler, collate, encode_splits
from attnkit.tasks.seq2seq.data import HFTextData, TextFilesData, TextPairs, carve, clean_pairs
from attnkit.tasks.seq2seq.tokenizer import Tokenizers, check_tokenizer_options, load_tokenizers

DE_EN = [
    ("Ein Hund läuft im Park.", "A dog runs in the park."),
    ("Zwei Kinder spielen Fußball.", "Two children play football."),
    ("Eine Frau liest ein Buch.", "A woman reads a book."),
    ("Ein Mann fährt Fahrrad.", "A man rides a bike."),
    ("Drei Hunde schlafen.", "Three dogs sleep."),
    ("Ein Kind isst einen Apfel.", "A child eats an apple."),
    ("Die Sonne scheint hell.", "The sun shines brightly."),
    ("Ein Vogel singt laut.", "A bird sings loudly."),
    ("Zwei Frauen gehen spazieren.", "Two women go for a walk."),
    ("Der Zug kommt spät.", "The train is late."),
]


def write_jsonl(path, rows) -> str:
    path.write_text("".join((json.dumps(r, ensure_ascii=False) if r is not None else "") + "\n" for r in rows))
    return str(path)


def hf_rows(pairs):
    return [{"id": i, "translation": {"de": de, "en": en}} for i, (de, en) in enumerate(pairs)]


@pytest.fixture
def corpus(tmp_path):
    """train / validation / test in the Hugging Face translation layout."""
    write_jsonl(tmp_path / "train.jsonl", hf_rows(DE_EN[:6]))
    write_jsonl(tmp_path / "validation.jsonl", hf_rows(DE_EN[6:8]))
    write_jsonl(tmp_path / "test.jsonl", hf_rows(DE_EN[8:]))
    return tmp_path


# ------------------------------------------------------------------------------------------------ registry


def test_sources_are_registered_beside_the_image_sources():
    names = attnkit.available("data")
    assert {"text_files", "hf_text", "number_words", "digits", "fashion_mnist", "image_folder", "hf"} <= set(names)
    assert attnkit.get("data", "text_files") is TextFilesData and attnkit.get("data", "hf_text") is HFTextData
    from attnkit.registry import defaults

    for name in ("text_files", "hf_text", "number_words"):
        node = defaults("data", name)
        assert node["name"] == name and node["batch_size"] == 64 and node["on_long"] == "truncate"


def test_importing_the_package_stays_light():
    code = (
        "import sys\n"
        "import attnkit.tasks.translation\n"
        "heavy = ['tokenizers', 'sacrebleu', 'num2words', 'datasets', 'pytorch_lightning', 'lightning', 'hydra']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"on_long": "drop"}, "truncate, error"),
        ({"on_empty": "ignore"}, "skip, error"),
        ({"format": "xml"}, "auto, jsonl, csv, tsv"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "leaves no training pairs"),
        ({"limit_train": 0}, "limit_train"),
        ({"max_source_len": 1}, "max_source_len"),
    ],
)
def test_bad_options_are_one_line_config_errors(kwargs, fragment):
    with pytest.raises(ConfigError) as exc:
        TextFilesData(train="x.jsonl", **kwargs)
    assert fragment in one_line(exc)
    with pytest.raises(ConfigError):  # through the registry too, by type
        attnkit.build("data", "text_files", on_long="drop")


# ------------------------------------------------------------------------------------ cleaning and carving


def test_empty_pairs_are_skipped_and_counted_in_one_warning():
    rows = [("line 1", "a", "b"), ("line 2", "  ", "c"), ("line 3", "d", None), ("line 4", " e ", " f ")]
    with pytest.warns(DataWarning) as record:
        pairs = clean_pairs(rows, "train.jsonl", "skip")
    assert pairs == [("a", "b"), ("e", "f")]
    assert len(record) == 1
    message = str(record[0].message)
    assert "skipped 2 pair(s)" in message and "line 2, line 3" in message and "on_empty=error" in message


def test_empty_pairs_refused_with_on_empty_error():
    with pytest.raises(DataError) as exc:
        clean_pairs([("line 1", "a", "b"), ("line 7", "c", "")], "train.jsonl", "error")
    message = one_line(exc)
    assert "train.jsonl line 7" in message and "empty target" in message and "on_empty=skip" in message


def test_carve_is_deterministic_disjoint_and_sized():
    train = [(f"s{i}", f"t{i}") for i in range(100)]
    parts = carve({"train": train}, 0.1, 0.2, seed=3)
    assert (len(parts["train"]), len(parts["val"]), len(parts["test"])) == (70, 10, 20)
    assert sorted(parts["train"] + parts["val"] + parts["test"]) == sorted(train)
    assert carve({"train": train}, 0.1, 0.2, seed=3) == parts
    assert carve({"train": train}, 0.1, 0.2, seed=4)["test"] != parts["test"]
    assert parts["train"] == sorted(parts["train"], key=lambda p: int(p[0][1:]))  # train keeps its order
    given = carve({"train": train, "test": [("x", "y")]}, 0.1, 0.2, seed=3)
    assert given["test"] == [("x", "y")] and len(given["val"]) == 10 and len(given["train"]) == 90
    with pytest.raises(DataError) as exc:
        carve({"train": train[:1], "test": [("x", "y")]}, 0.1, 0.0, seed=0)
    assert "data.validation=" in one_line(exc)


# ---------------------------------------------------------------------------------------------- text_files


def test_text_files_translation_layout_folder(corpus):
    source = attnkit.build("data", "text_files", path=str(corpus), src="de", tgt="en")
    pairs = source.load()
    assert source.load() is pairs
    assert (pairs.train, pairs.val, pairs.test) == (DE_EN[:6], DE_EN[6:8], DE_EN[8:])
    assert (pairs.src, pairs.tgt) == ("de", "en")
    reverse = TextFilesData(path=str(corpus), src="en", tgt="de").load()
    assert reverse.train[0] == (DE_EN[0][1], DE_EN[0][0])


def test_text_files_explicit_paths_relative_to_launch_dir(corpus, monkeypatch):
    monkeypatch.chdir(corpus)
    pairs = TextFilesData(train="train.jsonl", test="test.jsonl", src="de", tgt="en", val_fraction=0.34).load()
    assert pairs.test == DE_EN[8:] and len(pairs.val) == 2 and len(pairs.train) == 4
    assert sorted(pairs.train + pairs.val) == sorted(DE_EN[:6])


@pytest.mark.parametrize("fmt, sep", [("csv", ","), ("tsv", "\t")])
def test_text_files_csv_and_tsv_with_custom_fields(tmp_path, fmt, sep):
    import csv

    path = tmp_path / f"pairs.{fmt}"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=sep)
        writer.writerow(["id", "german", "english"])
        for i, (de, en) in enumerate(DE_EN):
            writer.writerow([i, de, en])
    pairs = TextFilesData(train=str(path), src="german", tgt="english", val_fraction=0.2, test_fraction=0.2).load()
    assert (len(pairs.train), len(pairs.val), len(pairs.test)) == (6, 2, 2)
    assert sorted(pairs.train + pairs.val + pairs.test) == sorted(DE_EN)


def test_text_files_flat_jsonl_fields(tmp_path):
    rows = [{"body": de, "subject": en} for de, en in DE_EN]
    path = write_jsonl(tmp_path / "all.jsonl", rows)
    pairs = TextFilesData(train=path, src="body", tgt="subject", val_fraction=0.1, test_fraction=0.1).load()
    assert len(pairs.train) == 8 and all(p in DE_EN for p in pairs.train)


def test_text_files_unknown_language_names_the_available_ones(corpus):
    with pytest.raises(DataError) as exc:
        TextFilesData(path=str(corpus), src="fr", tgt="en").load()
    message = one_line(exc)
    assert "no language 'fr'" in message and "available: de, en" in message and "data.src=" in message
    assert "train.jsonl line 1" in message


def test_text_files_missing_field_names_the_line(tmp_path):
    rows = [{"source": "a", "target": "b"}, {"source": "c", "target": "d"}, {"source": "e", "tgt": "f"}]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError) as exc:
        TextFilesData(train=path).load()
    message = one_line(exc)
    assert "line 3" in message and "no field 'target' (data.tgt)" in message and "available: source, tgt" in message


def test_text_files_empty_lines_skipped_and_counted(tmp_path):
    rows = [*hf_rows(DE_EN[:5]), None, {"translation": {"de": "", "en": "x"}}, *hf_rows(DE_EN[5:])]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.warns(DataWarning, match=r"skipped 2 pair\(s\).*line 6, line 7"):
        pairs = TextFilesData(train=path, src="de", tgt="en", val_fraction=0.1, test_fraction=0.1).load()
    assert len(pairs.train) + len(pairs.val) + len(pairs.test) == 10
    with pytest.raises(DataError) as exc:
        TextFilesData(train=path, src="de", tgt="en", on_empty="error").load()
    assert "line 6" in one_line(exc)


def test_text_files_missing_or_malformed_files(tmp_path):
    with pytest.raises(DataError) as exc:
        TextFilesData().load()
    assert "data.train=" in one_line(exc)
    with pytest.raises(DataError) as exc:
        TextFilesData(train=str(tmp_path / "absent.jsonl")).load()
    assert "absent.jsonl" in one_line(exc) and "does not exist" in str(exc.value)
    with pytest.raises(DataError) as exc:
        TextFilesData(path=str(tmp_path / "nowhere")).load()
    assert "nowhere" in one_line(exc)
    with pytest.raises(DataError) as exc:
        TextFilesData(path=str(tmp_path)).load()
    assert "no train file" in one_line(exc)
    (tmp_path / "a.jsonl").write_text('{"source": "x", "target": "y"}\n{not json\n')
    with pytest.raises(DataError) as exc:
        TextFilesData(train=str(tmp_path / "a.jsonl")).load()
    assert "line 2 is not JSON" in one_line(exc)
    (tmp_path / "b.jsonl").write_text('[{"source": "x", "target": "y"}]\n')
    with pytest.raises(DataError) as exc:
        TextFilesData(train=str(tmp_path / "b.jsonl")).load()
    assert "JSON array" in one_line(exc)
    (tmp_path / "c.txt").write_text("x\n")
    with pytest.raises(DataError) as exc:
        TextFilesData(train=str(tmp_path / "c.txt")).load()
    assert "data.format=" in one_line(exc)


# ------------------------------------------------------------------------------------------------- hf_text


def test_hf_text_local_json_in_translation_layout(corpus, offline, tmp_path):
    files = {split: str(corpus / f"{split}.jsonl") for split in ("train", "validation", "test")}
    source = attnkit.build("data", "hf_text", data_files=files, src="de", tgt="en", cache_dir=str(tmp_path / "c"))
    pairs = source.load()
    assert (pairs.train, pairs.val, pairs.test) == (DE_EN[:6], DE_EN[6:8], DE_EN[8:])


def test_hf_text_columns_and_carved_splits(tmp_path, offline):
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"de": de, "en": en} for de, en in DE_EN])
    source = HFTextData(
        dataset="json",
        data_files=path,
        src="de",
        tgt="en",
        val_fraction=0.2,
        test_fraction=0.2,
        cache_dir=str(tmp_path / "c"),
    )
    pairs = source.load()
    assert (len(pairs.train), len(pairs.val), len(pairs.test)) == (6, 2, 2)
    with pytest.raises(DataError) as exc:
        HFTextData(data_files=path, src="fr", tgt="en", cache_dir=str(tmp_path / "c")).load()
    message = one_line(exc)
    assert "'fr'" in message and "available: de, en" in message


def test_hf_text_errors_in_one_line(corpus, offline, tmp_path):
    with pytest.raises(DataError) as exc:
        HFTextData().load()
    assert "data.dataset=" in one_line(exc)
    with pytest.raises(DataError) as exc:
        HFTextData(
            data_files=str(corpus / "train.jsonl"),
            src="de",
            tgt="en",
            test_split="holdout",
            cache_dir=str(tmp_path / "c"),
        ).load()
    assert "'holdout'" in one_line(exc) and "splits: train" in str(exc.value)
    with pytest.raises(DataError) as exc:  # offline: the hub is never reached
        HFTextData(dataset="someone/no-such-dataset", cache_dir=str(tmp_path / "c")).load()
    assert "someone/no-such-dataset" in one_line(exc)


# ---------------------------------------------------------------------------------------------- tokenizers


def pairs_of(train) -> TextPairs:
    return TextPairs(train=list(train), val=list(train[:2]), test=list(train[:2]), src="de", tgt="en")


def test_trained_bpe_has_special_tokens_first_and_round_trips(tmp_path):
    toks = load_tokenizers(pairs_of(DE_EN), vocab_size=300, min_frequency=1, cache_dir=str(tmp_path))
    assert toks.joint and toks.info["origin"] == "trained"
    tok = toks.src
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, 3)
    texts = [de for de, _ in DE_EN] + [en for _, en in DE_EN]
    ids = tok.encode(texts)
    assert all(4 <= i < tok.vocab_size for row in ids for i in row)
    assert tok.decode(ids) == texts
    assert tok.decode([[*ids[0], 2, 0, 0]]) == [texts[0]]  # special tokens are dropped


def test_tokenizer_cache_is_reused_and_keyed_by_data_and_options(tmp_path):
    first = load_tokenizers(pairs_of(DE_EN), vocab_size=300, min_frequency=1, cache_dir=str(tmp_path))
    again = load_tokenizers(pairs_of(DE_EN), vocab_size=300, min_frequency=1, cache_dir=str(tmp_path))
    assert again.info["origin"] == "cache" and again.src.to_json() == first.src.to_json()
    other_size = load_tokenizers(pairs_of(DE_EN), vocab_size=200, min_frequency=1, cache_dir=str(tmp_path))
    other_data = load_tokenizers(pairs_of(DE_EN[:8]), vocab_size=300, min_frequency=1, cache_dir=str(tmp_path))
    assert other_size.info["origin"] == other_data.info["origin"] == "trained"
    assert len(list(tmp_path.iterdir())) == 3


def test_tokenizer_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNKIT_CACHE", str(tmp_path))
    toks = load_tokenizers(pairs_of(DE_EN), vocab_size=300, min_frequency=1)
    assert toks.info["cache"].startswith(str(tmp_path / "tokenizers"))


def test_separate_vocabularies(tmp_path):
    toks = load_tokenizers(pairs_of(DE_EN), vocab_size=300, joint=False, min_frequency=1, cache_dir=str(tmp_path))
    assert not toks.joint
    assert "▁football" in toks.tgt.tokenizer.get_vocab() and "▁football" not in toks.src.tokenizer.get_vocab()
    restored = Tokenizers.from_state(toks.to_state())
    assert restored.src.to_json() == toks.src.to_json() and restored.tgt.to_json() == toks.tgt.to_json()
    joint = Tokenizers.from_state(load_tokenizers(pairs_of(DE_EN), vocab_size=300, cache_dir=str(tmp_path)).to_state())
    assert joint.joint


def test_tokenizer_json_by_path(tmp_path):
    toks = load_tokenizers(pairs_of(DE_EN), vocab_size=300, min_frequency=1, cache_dir=str(tmp_path / "c"))
    (tmp_path / "tok.json").write_text(toks.src.to_json())
    loaded = load_tokenizers(pairs_of(DE_EN[:3]), path=str(tmp_path / "tok.json"))
    assert loaded.info["origin"] == "file" and loaded.src.to_json() == toks.src.to_json()
    with pytest.raises(DataError) as exc:
        load_tokenizers(pairs_of(DE_EN), path=str(tmp_path / "missing.json"))
    assert "missing.json" in one_line(exc)
    from tokenizers import Tokenizer, models

    Tokenizer(models.WordLevel({"a": 0, "b": 1}, unk_token="b")).save(str(tmp_path / "bare.json"))
    with pytest.raises(DataError) as exc:
        load_tokenizers(pairs_of(DE_EN), path=str(tmp_path / "bare.json"))
    assert "no pad token" in one_line(exc)


def test_tokenizer_options_are_checked():
    with pytest.raises(ConfigError) as exc:
        check_tokenizer_options({"vocab": 100})
    assert "did you mean 'vocab_size'" in one_line(exc)
    with pytest.raises(ConfigError):
        load_tokenizers(pairs_of(DE_EN), vocab_size=3)
    with pytest.raises(ConfigError):
        load_tokenizers(pairs_of(DE_EN), tgt_path="x.json")


# ------------------------------------------------------------------------------------------------- batches


@pytest.fixture
def tokenizers(tmp_path) -> Tokenizers:
    return load_tokenizers(pairs_of(DE_EN), vocab_size=300, min_frequency=1, cache_dir=str(tmp_path))


def test_encode_splits_adds_eos_and_keeps_texts(tokenizers):
    encoded = encode_splits({"train": DE_EN[:3]}, tokenizers, max_len=None, on_long="truncate")["train"]
    assert isinstance(encoded, EncodedPairs) and len(encoded) == 3
    assert all(s[-1] == tokenizers.src.eos_id for s in encoded.src)
    assert tokenizers.tgt.decode(encoded.tgt) == [en for _, en in DE_EN[:3]]
    assert encoded.references == [en for _, en in DE_EN[:3]] and encoded.sources == [de for de, _ in DE_EN[:3]]


def test_long_sequences_truncated_in_one_warning_or_refused(tokenizers):
    long = [("Ein Hund " * 20, "A dog " * 20), *DE_EN[:2]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoded = encode_splits({"train": long, "test": long[:1]}, tokenizers, max_len=8, on_long="truncate")
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 1
    assert "model.max_len=8" in messages[0] and "train: 1 of 3 sources, 1 targets" in messages[0]
    assert "test: 1 of 1 sources" in messages[0] and "on_long=error" in messages[0]
    assert max(len(s) for s in encoded["train"].src) == 8 and encoded["train"].src[0][-1] == tokenizers.src.eos_id
    assert max(len(t) for t in encoded["train"].tgt) == 7  # BOS + 7 tokens fit 8 positions
    with pytest.raises(DataError) as exc:
        encode_splits({"train": long}, tokenizers, max_len=8, on_long="error")
    message = one_line(exc)
    assert "train source 0" in message and "model.max_len=8" in message and "on_long=truncate" in message


def test_max_source_len_caps_sources_only(tokenizers):
    long = [("Ein Hund " * 20, "A dog " * 5)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoded = encode_splits({"train": long}, tokenizers, max_len=64, max_source_len=6, on_long="truncate")
    (message,) = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert "data.max_source_len=6" in message and "1 of 1 sources, 0 targets" in message
    assert len(encoded["train"].src[0]) == 6 and len(encoded["train"].tgt[0]) > 6
    with pytest.raises(DataError) as exc:
        encode_splits({"train": long}, tokenizers, max_len=64, max_source_len=6, on_long="error")
    assert "data.max_source_len=6" in one_line(exc)
    with pytest.raises(ConfigError) as exc:
        encode_splits({"train": long}, tokenizers, max_len=64, max_source_len=128, on_long="truncate")
    message = one_line(exc)
    assert "data.max_source_len=128 is above model.max_len=64" in message and "raise model.max_len" in message


def test_collate_pads_and_shifts(tokenizers):
    items = [(4, [5, 6, 2], [7, 8, 9]), (9, [5, 2], [7])]
    batch = collate(items, pad_id=0, bos_id=1, eos_id=2)
    assert batch["index"].tolist() == [4, 9]
    assert batch["src"].tolist() == [[5, 6, 2], [5, 2, 0]]
    assert batch["src_mask"].tolist() == [[False, False, False], [False, False, True]]
    assert batch["tgt_in"].tolist() == [[1, 7, 8, 9], [1, 7, 0, 0]]
    assert batch["tgt_out"].tolist() == [[7, 8, 9, 2], [7, 2, 0, 0]]


def test_length_batches_cover_every_pair_once_within_limits():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 40, (500,), generator=g).tolist()
    for kwargs in ({"batch_size": 16}, {"batch_size": 64, "max_tokens": 300}):
        for shuffle in (False, True):
            sampler = LengthBatchSampler(lengths, shuffle=shuffle, **kwargs)
            batches = list(sampler)
            assert len(batches) == len(sampler)
            assert sorted(i for b in batches for i in b) == list(range(500))
            assert all(len(b) <= kwargs["batch_size"] for b in batches)
            if "max_tokens" in kwargs:
                assert all(max(lengths[i] for i in b) * len(b) <= 300 for b in batches)
    ordered = [i for b in LengthBatchSampler(lengths, batch_size=16) for i in b]
    assert [lengths[i] for i in ordered] == sorted(lengths)  # evaluation: sorted by length


def test_length_batches_reshuffle_per_epoch_deterministically():
    lengths = list(range(1, 201))
    sampler = LengthBatchSampler(lengths, batch_size=10, shuffle=True, seed=1)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert list(LengthBatchSampler(lengths, batch_size=10, shuffle=True, seed=1)) == first
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in first]
    assert max(spread) < 20  # batches of similar lengths


def test_length_batches_share_pairs_between_processes(monkeypatch):
    import attnkit.tasks.seq2seq.batches as batches

    lengths = [1 + (i * 7) % 30 for i in range(101)]
    for shuffle in (False, True):
        shares = []
        for rank in range(3):
            monkeypatch.setattr(batches, "_world", lambda rank=rank: (3, rank))
            shares.append(list(LengthBatchSampler(lengths, batch_size=8, max_tokens=100, shuffle=shuffle)))
        seen = [i for share in shares for b in share for i in b]
        assert len(seen) == len(set(seen))
        if shuffle:  # training: the same number of steps in every process
            assert len({len(share) for share in shares}) == 1
        else:  # evaluation: every pair exactly once
            assert sorted(seen) == list(range(101))
    monkeypatch.setattr(batches, "_world", lambda: (2, 1))
    assert list(LengthBatchSampler([3, 4], batch_size=8)) == [[1]]  # fewer batches than processes: still one each
