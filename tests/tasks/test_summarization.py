"""The summarization task: ROUGE and the lead baseline, the config presets, long sources, and train / test /
predict in process on a tiny model (the CLI end to end is in tests/test_cli.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from checks import compose, make_task, one_line

import attnkit
from attnkit import registry
from attnkit.errors import ConfigError, DataError
from attnkit.tasks.summarization.metrics import RougeScorer, lead, lead_length
from attnkit.tasks.summarization.task import SummarizationTask

TINY = (
    "task=summarization",
    "data.train_size=300",
    "data.val_size=16",
    "data.test_size=16",
    "data.batch_size=32",
    "data.max_source_len=48",
    "model.dim=32",
    "model.depth=1",
    "heads=2",
    "task.warmup_steps=10",
    "task.beam=2",
    "task.tokenizer.vocab_size=300",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
)


# ----------------------------------------------------------------------------------------------- metrics


def test_rouge_is_the_mean_f1_of_rouge_score_with_stemming():
    from rouge_score import rouge_scorer

    hyps = ["the cats were running home", "budget meeting moved", ""]
    refs = ["cat runs home", "Meeting about the budget", "weekly report"]
    scores = RougeScorer()(hyps, refs)
    reference = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    for key in ("rouge1", "rouge2", "rougeL"):
        expected = 100 * sum(reference.score(r, h)[key].fmeasure for h, r in zip(hyps, refs, strict=True)) / 3
        assert scores[key] == pytest.approx(expected)
    assert scores["rouge1"] > 0 and RougeScorer()(refs, refs) == pytest.approx(dict.fromkeys(scores, 100.0))
    # stemming: "running" matches "runs"; unstemmed it would not
    assert RougeScorer()(["running"], ["runs"])["rouge1"] == pytest.approx(100.0)
    assert "stemmer:porter" in RougeScorer().signatures()["rouge"] and RougeScorer.primary == "rougeL"


def test_lead_baseline_takes_the_median_summary_length():
    assert lead_length(["a b", "a b c d", "a b c"]) == 3
    assert lead_length(["one", "one two"]) in (1, 2) and lead_length([]) == 1
    assert lead("Dear all,\n the  meeting is moved to Friday.", 4) == "Dear all, the meeting"


# ------------------------------------------------------------------------------------------ config presets


def test_task_is_registered_with_its_preset():
    assert attnkit.get("task", "summarization") is SummarizationTask
    cfg = compose("task=summarization")
    assert cfg["data"]["name"] == "match_reports" and cfg["model"]["name"] == "transformer"
    task = make_task(cfg)
    assert task.decode.min_len == cfg["task"]["min_len"] and task.decode.no_repeat_ngram == 3
    assert cfg["data"]["max_source_len"] <= cfg["model"]["max_len"]


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"min_len": 40, "max_len": 30}, "task.min_len=40 is above task.max_len=30"),
        ({"min_len": 40, "max_len": None, "max_len_a": 0.0, "max_len_b": 32}, "task.max_len_b=32"),
        ({"min_len": -1}, "task.min_len=-1"),
        ({"max_len": 0}, "task.max_len=0"),
    ],
)
def test_bad_length_constraints_are_one_line(options, fragment):
    with pytest.raises(ConfigError) as exc:
        SummarizationTask(**options)
    assert fragment in one_line(exc)


def test_experiments_compose(tmp_path):
    long = compose("experiment=summarization_long")
    assert long["data"]["max_source_len"] == 4096 and long["model"]["max_len"] >= 4096
    assert long["model"]["encoder"]["attention"]["name"] == "local"
    aeslc = compose("experiment=aeslc")
    assert (aeslc["data"]["src"], aeslc["data"]["tgt"]) == ("email_body", "subject_line")
    make_task(aeslc)


# ----------------------------------------------------------------------------------------------- data


def test_document_fields_empty_and_missing(tmp_path):
    good = {"document": "The meeting moved to Friday.", "summary": "Meeting moved"}
    for split in ("train", "validation", "test"):
        rows = [good, {"document": "", "summary": "x"}, {"document": "y", "summary": " "}]
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    source = attnkit.build("data", "text_files", path=str(tmp_path), src="document", tgt="summary", pair_field=None)
    with pytest.warns(UserWarning, match="skipped 2 pair"):
        pairs = source.load()
    assert pairs.train == [("The meeting moved to Friday.", "Meeting moved")]
    source = attnkit.build("data", "text_files", path=str(tmp_path), src="body", tgt="summary", pair_field=None)
    with pytest.raises(DataError) as exc:
        source.load()
    assert "no field 'body' (data.src)" in one_line(exc) and "document, summary" in one_line(exc)


# ------------------------------------------------------------------------- train / test / predict, in process


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict, dict]:
    root = tmp_path_factory.mktemp("summarization")
    cfg = compose(*TINY, f"task.tokenizer.cache_dir={root / 'cache'}")
    metrics = make_task(cfg).train(cfg, run_dir=root / "run", overrides=[])
    return root / "run", cfg, metrics


def test_train_reports_rouge_beside_the_lead_baseline(trained):
    run_dir, cfg, metrics = trained
    saved = json.loads((run_dir / "metrics.json").read_text())
    for stage in ("val", "test"):
        for key in ("rouge1", "rouge2", "rougeL", "lead_rouge1", "lead_rouge2", "lead_rougeL"):
            assert 0.0 <= saved[f"{stage}/{key}"] <= 100.0, (stage, key)
    assert saved["primary_metric"] == "test/rougeL" and "stemmer:porter" in saved["signatures"]["rouge"]
    assert saved["lead_words"] >= 4 and saved["decoding"]["min_len"] == 2 and saved["decoding"]["max_len"] == 32
    samples = (run_dir / "samples.md").read_text()
    assert "| document | reference | summary |" in samples and " …" in samples  # documents cut in the table
    assert len((run_dir / "test_outputs.jsonl").read_text().splitlines()) == 16
    below = saved["test/rougeL"] < saved["test/lead_rougeL"]
    assert below == any("below the lead baseline" in line for line in saved["warnings"])


@pytest.mark.parametrize(
    ("metrics", "pairs", "copy", "expected"),
    [
        (
            {"test/rougeL": 6.3, "test/lead_rougeL": 20.2},
            2000,
            False,
            ["6.30 is below", "20.20", "copy=true", "smaller"],
        ),
        ({"test/rougeL": 6.3, "test/lead_rougeL": 20.2}, 50_000, True, ["denoise", "more epochs"]),
        ({"test/rougeL": 25.0, "test/lead_rougeL": 20.2}, 2000, False, None),
        ({"test/lead_rougeL": 20.2}, 2000, False, None),
    ],
)
def test_a_model_below_the_lead_baseline_gets_one_line_of_advice(metrics, pairs, copy, expected):
    from attnkit.tasks.summarization.task import below_lead

    line = below_lead(metrics, pairs, copy=copy)
    if expected is None:
        assert line is None
    else:
        assert "\n" not in line and all(fragment in line for fragment in expected), line
        assert ("copy=true" in line) != copy


def test_long_documents_are_truncated_and_counted_once(trained):
    _, _, metrics = trained
    (warning,) = [w for w in metrics["warnings"] if "truncated" in w]
    assert "data.max_source_len=48" in warning and "train: " in warning and "test: " in warning


def test_test_mode_reproduces_scores_and_the_baseline(trained, tmp_path):
    run_dir, cfg, metrics = trained
    cfg = {**cfg, "mode": "test", "ckpt_path": str(run_dir / "checkpoints" / "best.ckpt")}
    scores = make_task(cfg).test(cfg, run_dir=tmp_path, overrides=[])
    assert scores["test/rougeL"] == pytest.approx(metrics["test/rougeL"])
    assert scores["test/lead_rougeL"] == pytest.approx(metrics["test/lead_rougeL"])


def test_predict_summarizes_a_file_or_stdin(trained, tmp_path, monkeypatch, capsys):
    run_dir, cfg, _ = trained
    document = tmp_path / "report.txt"
    document.write_text("Ashford Rovers welcomed Brampton Town to Ashford Park.\nIt finished 2-1.\n")
    cfg = {**cfg, "mode": "predict", "ckpt_path": str(run_dir / "checkpoints" / "last.ckpt"), "input": str(document)}
    result = make_task(cfg).predict(cfg, run_dir=tmp_path / "file", overrides=[])
    (prediction,) = result["predictions"]
    assert prediction["source"].startswith("Ashford Rovers") and "\n" in prediction["source"]  # one document
    assert capsys.readouterr().out.splitlines() == [prediction["output"]]

    monkeypatch.setattr("sys.stdin", io.StringIO("Line one of an email.\nLine two.\n"))
    result = make_task(cfg).predict({**cfg, "input": None}, run_dir=tmp_path / "stdin", overrides=[])
    assert len(result["predictions"]) == 1 and len(capsys.readouterr().out.splitlines()) == 1


def test_predict_refuses_missing_empty_or_folder_input(trained, tmp_path, monkeypatch):
    run_dir, cfg, _ = trained
    (tmp_path / "empty.txt").write_text("  \n")
    cases = [
        (str(tmp_path / "missing.txt"), DataError, "does not exist"),
        (str(tmp_path / "empty.txt"), ConfigError, "is empty"),
        (str(tmp_path), ConfigError, "is not a file"),
    ]
    for value, error, fragment in cases:
        bad = {**cfg, "mode": "predict", "ckpt_path": str(run_dir / "checkpoints" / "last.ckpt"), "input": value}
        with pytest.raises(error) as exc:
            make_task(bad).predict(bad, run_dir=tmp_path / "x", overrides=[])
        assert fragment in one_line(exc) and "input" in one_line(exc)
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    with pytest.raises(ConfigError) as exc:
        make_task(cfg).predict({**bad, "input": None}, run_dir=tmp_path / "x", overrides=[])
    assert "stdin is empty" in one_line(exc)


def test_long_sources_train_with_a_linear_time_encoder(tmp_path):
    """Documents of thousands of tokens (data.max_source_len=4096) through a local-attention encoder."""
    cfg = compose(
        "experiment=summarization_long",
        "data.train_size=6",
        "data.val_size=2",
        "data.test_size=2",
        "data.batch_size=2",
        "model.dim=16",
        "model.depth=1",
        "heads=2",
        "model.encoder.attention.window=32",
        "task.beam=1",
        "task.tokenizer.vocab_size=400",
        f"task.tokenizer.cache_dir={tmp_path / 'cache'}",
        "trainer.fast_dev_run=true",
        "trainer.enable_progress_bar=false",
    )
    words = [len(doc.split()) for doc, _ in registry.build_spec("data", cfg["data"]).load().train]
    assert min(words) > 1000, words  # thousands of tokens: 16x the attention cost of a 256-token model
    metrics = make_task(cfg).train(cfg, run_dir=tmp_path / "run", overrides=[])
    assert "test/rougeL" in metrics and not any("truncated" in w for w in metrics["warnings"])


def test_summaries_are_real_words_and_the_rate_is_reported(trained, tmp_path):
    """task.words=real by default: no generated word outside the training text and the document; the rate is in
    metrics.json beside the lead's, each output lists its non-words; task.words=free applies at test time."""
    run_dir, cfg, metrics = trained
    assert metrics["decoding"]["words"] == "real" and metrics["known_words"] > 100
    assert metrics["test/non_word_rate"] == 0.0 and metrics["test/lead_non_word_rate"] == 0.0
    rows = [json.loads(line) for line in (run_dir / "test_outputs.jsonl").read_text().splitlines()]
    assert rows and all(row["non_words"] == [] for row in rows)
    cfg = {**cfg, "mode": "test", "ckpt_path": str(run_dir / "checkpoints" / "best.ckpt")}
    cfg["task"] = {**cfg["task"], "words": "free"}
    free = make_task(cfg).test(cfg, run_dir=tmp_path, overrides=["task.words=free"])
    assert free["decoding"]["words"] == "free" and 0.0 <= free["test/non_word_rate"] <= 1.0


def test_predict_from_a_checkpoint_without_its_words_needs_words_free(trained, tmp_path):
    import torch

    run_dir, cfg, _ = trained
    payload = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    del payload["attnkit"]["words"]  # as a checkpoint trained before task.words existed
    old = tmp_path / "old.ckpt"
    torch.save(payload, old)
    document = tmp_path / "report.txt"
    document.write_text("Ashford Rovers welcomed Brampton Town to Ashford Park. It finished 2-1.\n")
    cfg = {**cfg, "mode": "predict", "ckpt_path": str(old), "input": str(document)}
    with pytest.raises(ConfigError) as exc:
        make_task(cfg).predict(cfg, run_dir=tmp_path / "real", overrides=[])
    assert "keeps no list of the training text's words" in one_line(exc) and "task.words=free" in one_line(exc)
    cfg["task"] = {**cfg["task"], "words": "free"}
    result = make_task(cfg).predict(cfg, run_dir=tmp_path / "free", overrides=["task.words=free"])
    assert result["decoding"]["words"] == "free" and len(result["predictions"]) == 1
