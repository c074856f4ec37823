"""The run helpers every task shares."""

from __future__ import annotations

import errno
import os

import pytest
import torch
import yaml
from checks import one_line

from attnkit import ConfigError, DataError
from attnkit.train import run


def test_user_path_resolves_against_the_launch_directory(tmp_path, monkeypatch) -> None:
    (tmp_path / "a.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert run.user_path("a.txt", "input", "give input=...") == tmp_path / "a.txt"


@pytest.mark.parametrize(("value", "error", "word"), [(None, ConfigError, "required"), ("nope", DataError, "nope")])
def test_user_path_mistakes_are_one_line(value, error, word) -> None:
    with pytest.raises(error) as exc:
        run.user_path(value, "ckpt_path", "give ckpt_path=outputs/.../best.ckpt")
    message = one_line(exc)
    assert word in message and "ckpt_path=outputs" in message


def test_seed_makes_torch_repeatable() -> None:
    run.seed(3)
    a = torch.rand(3)
    run.seed(3)
    assert torch.equal(a, torch.rand(3))


def test_save_config(tmp_path) -> None:
    run.save_config({"task": {"name": "vit"}, "heads": 8}, tmp_path / "run")
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text()) == {"task": {"name": "vit"}, "heads": 8}


@pytest.mark.parametrize(
    ("overrides", "key", "expected"),
    [
        (["data=digits"], "data", True),
        (["+data.src=de"], "data", True),
        (["database=x"], "data", False),
        (["task.beam=3"], "task.beam", True),
        (["task.beam_size=3"], "task.beam", False),
        (None, "data", False),
    ],
)
def test_overridden(overrides, key, expected) -> None:
    assert run.overridden(overrides, key) is expected


def test_run_files_name_what_a_run_left(tmp_path) -> None:
    assert run.run_files(tmp_path / "new") == [] and run.run_files(tmp_path) == []
    (tmp_path / "notes.txt").write_text("mine")
    assert run.run_files(tmp_path) == []  # other files: not a run
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "metrics.json").write_text("{}")
    assert run.run_files(tmp_path) == ["checkpoints", "metrics.json"]


@pytest.mark.parametrize("existed", [True, False], ids=["existing", "new"])
def test_a_failed_block_takes_back_what_it_made_and_nothing_else(tmp_path, existed) -> None:
    folder = tmp_path / "run"
    if existed:
        folder.mkdir()
        (folder / "before.txt").write_text("kept")
    with pytest.raises(RuntimeError), run.undone_on_failure(folder):
        folder.mkdir(exist_ok=True)
        (folder / "config.yaml").write_text("x")
        (folder / "checkpoints").mkdir()
        (folder / "checkpoints" / "a.ckpt").write_text("x")
        raise RuntimeError("refused")
    assert sorted(p.name for p in folder.iterdir()) == ["before.txt"] if existed else not folder.exists()


def test_a_block_that_is_kept_or_succeeds_keeps_its_files(tmp_path) -> None:
    with pytest.raises(RuntimeError), run.undone_on_failure(tmp_path, keep=lambda: True):
        (tmp_path / "checkpoints").mkdir()
        raise RuntimeError("after the first step")
    with run.undone_on_failure(tmp_path):
        (tmp_path / "metrics.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "metrics.json"]


@pytest.mark.parametrize(
    ("code", "fix"),
    [(errno.ENOSPC, "free space"), (errno.EFBIG, "ulimit -f"), (errno.EACCES, "a folder you can write")],
)
def test_a_failed_write_is_one_line_naming_the_file_and_the_fix(tmp_path, code, fix) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_text("x")
    try:
        try:
            raise OSError(code, os.strerror(code), str(tmp_path / "metrics.csv"))
        except OSError:
            raise RuntimeError("teardown failed too")  # noqa: B904  the write error is its context
    except RuntimeError as exc:
        error = run.write_error(exc, tmp_path)
    message = str(error)
    assert isinstance(error, DataError) and "\n" not in message
    assert f"cannot write {tmp_path / 'metrics.csv'}: {os.strerror(code)} ({errno.errorcode[code]})" in message
    assert fix in message and f"resume={tmp_path}" in message
    assert run.write_error(ValueError("not a write"), tmp_path) is None
    assert run.write_error(FileNotFoundError(errno.ENOENT, "missing"), tmp_path) is None


def test_an_input_that_names_a_file_is_read_as_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "texts.txt").write_text("first line\n\nsecond line\r\n")
    (tmp_path / "empty.txt").write_text("\n \n")
    (tmp_path / "folder").mkdir()
    assert run.text_inputs("texts.txt", "fix") == ["first line", "second line"]
    assert run.text_inputs("forty-two", "fix") == ["forty-two"]
    assert run.text_inputs("a sentence that ends in notes.txt", "fix") == ["a sentence that ends in notes.txt"]
    assert run.text_inputs(None, "fix") is None
    assert run.text_inputs("seven" * 100, "fix") == ["seven" * 100]  # too long for a file name: a text
    assert run.text_inputs("and/or", "fix") == ["and/or"]  # no folder `and`: a text
    for value, fragment in (
        ("missing.txt", "looks like a file but"),
        ("folder/missing", "looks like a file but"),
        ("folder", "is a folder"),
        ("empty.txt", "is an empty file"),
        (" ", "input is empty; fix"),
    ):
        with pytest.raises(ConfigError) as exc:
            run.text_inputs(value, "fix")
        assert fragment in one_line(exc), value
