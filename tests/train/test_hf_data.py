"""The Hugging Face loading helpers that image and text data sources share (local files only, no network)."""

from __future__ import annotations

import json

import pytest
from checks import one_line

from attnkit import ConfigError, DataError
from attnkit.train import hf_data

BUILDERS = ((".jsonl", "json"), (".csv", "csv"))


def test_one_line_flattens_and_shortens() -> None:
    assert hf_data.one_line(ValueError("a\n  b\tc")) == "a b c"
    assert hf_data.one_line(KeyError()) == "KeyError"
    long = hf_data.one_line(ValueError("x" * 1000))
    assert len(long) == 300 and long.endswith("...")


def test_resolve_files_makes_local_paths_absolute(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    files = {"train": "a.jsonl", "test": ["b.jsonl", "hf://datasets/x/c.jsonl"]}
    assert hf_data.resolve_files(files) == {
        "train": str(tmp_path / "a.jsonl"),
        "test": [str(tmp_path / "b.jsonl"), "hf://datasets/x/c.jsonl"],
    }
    with pytest.raises(ConfigError) as exc:
        hf_data.resolve_files(3)
    assert "data.data_files=3" in one_line(exc)


@pytest.mark.parametrize(
    ("files", "builder"),
    [("x/train.jsonl", "json"), ({"train": ["a.csv.gz"]}, "csv"), (["a.txt"], None), ([], None)],
)
def test_builder_follows_the_first_files_extension(files, builder) -> None:
    assert hf_data.builder_for(files, BUILDERS) == builder


def test_find_split_uses_aliases_or_carves() -> None:
    loaded = {"train": 1, "dev": 2}
    assert hf_data.find_split(loaded, "validation", "val") == "dev"
    assert hf_data.find_split(loaded, "test", "test") is None  # absent usual name: carve from train
    assert hf_data.find_split(loaded, None, "val") is None
    with pytest.raises(DataError) as exc:
        hf_data.find_split(loaded, "heldout", "test")
    message = one_line(exc)
    assert "heldout" in message and "train, dev" in message and "data.test_split" in message


def test_load_splits_reads_local_files(tmp_path, offline) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"a": i}) + "\n" for i in range(3)))
    loaded = hf_data.load_splits("json", data_files={"train": str(path)}, cache_dir=str(tmp_path / "cache"))
    assert list(loaded) == ["train"] and loaded["train"]["a"] == [0, 1, 2]
    with pytest.raises(DataError) as exc:
        hf_data.load_splits("json", data_files={"train": str(path)}, train_split="fit", cache_dir=str(tmp_path))
    assert "no split 'fit'" in one_line(exc) and "data.train_split" in one_line(exc)


@pytest.mark.parametrize("kwargs", [{"data_dir": "/nonexistent/dir"}, {"data_files": "/nonexistent/train.jsonl"}])
def test_load_splits_failures_are_one_line(tmp_path, offline, kwargs) -> None:
    with pytest.raises(DataError) as exc:
        hf_data.load_splits("json", cache_dir=str(tmp_path), **kwargs)
    message = one_line(exc)
    assert "nonexistent" in message and "data." in message
