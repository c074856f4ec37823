"""The CSV logger a run writes metrics.csv with: rows kept on resume, and never half a file."""

from __future__ import annotations

import csv

import pytest

from attnkit.train.callbacks import ResumableCSVLogger, WholeRowsWriter


def rows(path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_a_resumed_run_keeps_the_rows_up_to_its_checkpoint_and_a_new_one_starts_afresh(tmp_path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train/loss\n" + "".join(f"0,{s},{1 / (s + 1)}\n" for s in range(10)))
    assert isinstance(ResumableCSVLogger(tmp_path, resumed_step=4).experiment, WholeRowsWriter)
    assert [r["step"] for r in rows(path)] == ["0", "1", "2", "3", "4"]
    assert ResumableCSVLogger(tmp_path).experiment.metrics == []  # not resumed: old metrics go, as in Lightning
    assert not path.exists()


def test_a_wider_header_replaces_the_file_whole_and_a_failed_write_leaves_the_old_one(tmp_path, monkeypatch) -> None:
    writer = WholeRowsWriter(str(tmp_path), [])
    writer.log_metrics({"train/loss": 1.0}, step=0)
    writer.save()
    writer.log_metrics({"train/loss": 0.5}, step=1)
    writer.save()  # the same columns: appended
    path = tmp_path / "metrics.csv"
    assert [r["train/loss"] for r in rows(path)] == ["1.0", "0.5"]
    before = path.read_text()

    def killed(self, rows):
        raise OSError("killed while writing")

    monkeypatch.setattr(csv.DictWriter, "writerows", killed)
    writer.log_metrics({"val/acc": 0.9}, step=1)  # a new column: the file is rewritten
    with pytest.raises(OSError):
        writer.save()
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]  # all rows, no litter
    monkeypatch.undo()
    writer.save()
    assert [(r["step"], r["val/acc"]) for r in rows(path)] == [("0", ""), ("1", ""), ("1", "0.9")]
