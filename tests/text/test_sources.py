"""Text sources every text task reads: registration, cleaning, carved splits, text_files and hf_text."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from checks import DE_EN, hf_rows, one_line, write_jsonl

import attnkit
from attnkit.data.warning import DataWarning
from attnkit.errors import ConfigError, DataError
from attnkit.text import HFTextData, TextFilesData, carve, clean_pairs


@pytest.fixture
def corpus(tmp_path):
    """train / validation / test in the Hugging Face translation layout."""
    write_jsonl(tmp_path / "train.jsonl", hf_rows(DE_EN[:6]))
    write_jsonl(tmp_path / "validation.jsonl", hf_rows(DE_EN[6:8]))
    write_jsonl(tmp_path / "test.jsonl", hf_rows(DE_EN[8:]))
    return tmp_path


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


def test_text_files_not_utf8_names_the_byte_and_reads_with_data_encoding(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [json.dumps({"source": f"café {i}", "target": f"thé {i}"}, ensure_ascii=False) for i in range(20)]
    path.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    with pytest.raises(DataError) as exc:
        TextFilesData(train=str(path)).load()
    assert "train.jsonl is not utf-8 text: the byte 0xe9 at offset 15" in one_line(exc)
    assert "data.encoding=" in one_line(exc)
    pairs = TextFilesData(train=str(path), encoding="latin-1", val_fraction=0.1, test_fraction=0.1).load()
    assert ("café 0", "thé 0") in pairs.train + pairs.val + pairs.test
