"""Loading a Hugging Face dataset for any data source: builder choice and one-line failures (local files, offline)."""

from __future__ import annotations

import json

import pytest
from checks import one_line

from attnkit import DataError
from attnkit.data.hf import builder_for, first_file, load_splits

BUILDERS = ((".jsonl", "json"), (".csv", "csv"))


@pytest.mark.parametrize(
    ("files", "first"),
    [("a.jsonl", "a.jsonl"), (["b.csv", "c.csv"], "b.csv"), ({"train": ["d.csv"], "test": "e.csv"}, "d.csv"), ([], "")],
)
def test_first_file_of_any_data_files_shape(files, first) -> None:
    assert first_file(files) == first


@pytest.mark.parametrize(
    ("files", "builder"),
    [("x/train.jsonl", "json"), ({"train": ["a.csv.gz"]}, "csv"), (["a.txt"], None), ([], None)],
)
def test_builder_follows_the_first_files_extension(files, builder) -> None:
    assert builder_for(files, BUILDERS) == builder


def test_load_splits_reads_local_files(tmp_path, offline) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"a": i}) + "\n" for i in range(3)))
    loaded = load_splits("json", data_files={"train": str(path)}, cache_dir=str(tmp_path / "cache"))
    assert list(loaded) == ["train"] and loaded["train"]["a"] == [0, 1, 2]
    with pytest.raises(DataError) as exc:
        load_splits("json", data_files={"train": str(path)}, train_split="fit", cache_dir=str(tmp_path))
    assert "no split 'fit'" in one_line(exc) and "data.train_split" in one_line(exc)


@pytest.mark.parametrize("kwargs", [{"data_dir": "/nonexistent/dir"}, {"data_files": "/nonexistent/train.jsonl"}])
def test_load_splits_failures_are_one_line(tmp_path, offline, kwargs) -> None:
    with pytest.raises(DataError) as exc:
        load_splits("json", cache_dir=str(tmp_path), **kwargs)
    message = one_line(exc)
    assert "nonexistent" in message and "data." in message
