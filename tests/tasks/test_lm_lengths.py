"""task=lm length extrapolation: a checkpoint tested at 1x and 2x its training context (task.eval_lengths)."""

from __future__ import annotations

import json

import pytest
from checks import compose, make_task, one_line

from attnkit import ConfigError
from tests.tasks.test_lm import TINY


@pytest.mark.parametrize(
    "pos_enc", [["pos_enc=rope"], ["pos_enc=alibi"], ["pos_enc=none"], ["pos_enc=learned", "pos_enc.interpolate=true"]]
)
def test_a_checkpoint_is_scored_at_twice_its_context(pos_enc, tmp_path) -> None:
    cfg = compose(*TINY, *pos_enc)
    make_task(cfg).train(cfg, run_dir=tmp_path / "run", overrides=[])
    ckpt = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    overrides = ["task.eval_lengths=[1,2]"]
    test = compose(*TINY, *pos_enc, *overrides)
    tested = make_task(test).test(
        {**test, "mode": "test", "ckpt_path": ckpt}, run_dir=tmp_path / "t", overrides=overrides
    )
    saved = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert set(saved["lengths"]) == {"24", "48"}
    for n in (24, 48):
        assert tested[f"test/loss@{n}"] > 0 and tested[f"test/bits_per_token@{n}"] > 0
    assert tested["test/loss@24"] == pytest.approx(tested["test/loss"], rel=1e-4)


def test_a_learned_table_is_refused_beyond_its_size(tmp_path) -> None:
    cfg = compose(*TINY, "pos_enc=learned")
    make_task(cfg).train(cfg, run_dir=tmp_path / "run", overrides=[])
    ckpt = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    overrides = ["task.eval_lengths=[1,2]"]
    test = compose(*TINY, "pos_enc=learned", *overrides)
    with pytest.raises(ConfigError) as exc:
        make_task(test).test({**test, "mode": "test", "ckpt_path": ckpt}, run_dir=tmp_path / "t", overrides=overrides)
    assert "holds 24 positions" in one_line(exc)
    assert not (tmp_path / "t").exists()
