"""User paths are read from the launch directory; URLs and hub paths are left alone."""

from __future__ import annotations

import os

import pytest
from checks import one_line

from attnkit import ConfigError
from attnkit.data.paths import resolve, resolve_files


def test_resolve_is_absolute_from_the_launch_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve("a/b.jsonl") == str(tmp_path / "a" / "b.jsonl")
    assert resolve("~/x") == str(tmp_path / "home" / "x")
    assert resolve(tmp_path / "c" / ".." / "d") == str(tmp_path / "d")
    assert os.path.isabs(resolve("."))


def test_resolve_files_makes_local_paths_absolute(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    files = {"train": "a.jsonl", "test": ["b.jsonl", "hf://datasets/x/c.jsonl"]}
    assert resolve_files(files) == {
        "train": str(tmp_path / "a.jsonl"),
        "test": [str(tmp_path / "b.jsonl"), "hf://datasets/x/c.jsonl"],
    }
    assert resolve_files(None) is None
    assert resolve_files("https://host/train.csv") == "https://host/train.csv"
    with pytest.raises(ConfigError) as exc:
        resolve_files(3)
    assert "data.data_files=3" in one_line(exc)
