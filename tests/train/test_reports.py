"""Run reports: metrics JSON, per-epoch curves from Lightning's CSV, the learning-curve PNG."""

from __future__ import annotations

import json

from attnkit.train.reports import epoch_curves, finite_scores, plot_learning_curves, read_metrics_csv, write_json

CSV = """epoch,step,train/loss_step,train/loss_epoch,train/acc,val/loss,val/acc,test/acc
0,9,2.0,,,,,
0,19,,,,1.5,0.5,
0,19,,2.1,0.3,,,
1,29,1.0,,,,,
1,39,,,,0.9,0.8,
1,39,,1.2,0.6,,,
1,39,,,,,,0.75
"""


def test_epoch_curves_keep_per_epoch_metrics_only(tmp_path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text(CSV)
    curves = epoch_curves(read_metrics_csv(path))
    assert sorted(curves) == ["train/acc", "train/loss", "val/acc", "val/loss"]
    assert curves["val/acc"] == [(0.0, 0.5), (1.0, 0.8)]
    assert curves["train/loss"] == [(0.0, 2.1), (1.0, 1.2)]


def test_learning_curve_png_is_written_and_skipped_without_data(tmp_path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text(CSV)
    png = tmp_path / "curve.png"
    assert plot_learning_curves(read_metrics_csv(path), png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plot_learning_curves(read_metrics_csv(tmp_path / "missing.csv"), tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_write_json_replaces_atomically(tmp_path) -> None:
    path = tmp_path / "metrics.json"
    write_json(path, {"test/acc": 0.5})
    write_json(path, {"test/acc": 0.99, "params": 10})
    assert json.loads(path.read_text()) == {"params": 10, "test/acc": 0.99}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left behind


def test_scores_that_are_not_finite_are_null_in_metrics_json_and_said(tmp_path) -> None:
    metrics = {"test/acc": float("nan"), "val/loss": float("inf"), "ema": {"last_decay": float("nan")}, "steps": 3}
    said = finite_scores(metrics)
    assert metrics == {"test/acc": None, "val/loss": None, "ema": {"last_decay": None}, "steps": 3}
    assert len(said) == 3 and "test/acc is nan, not a score, and is written as null" in said[0]
    assert "ema.last_decay" in said[2]
    write_json(tmp_path / "metrics.json", metrics)
    assert "NaN" not in (tmp_path / "metrics.json").read_text()
    assert json.loads((tmp_path / "metrics.json").read_text())["test/acc"] is None
    assert finite_scores({"test/acc": 0.5, "tested": "last"}) == []
