"""The run helpers every task shares."""

from __future__ import annotations

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
