"""The classify task: labelled texts from files, ListOps, test and predict from a checkpoint, its user mistakes."""

from __future__ import annotations

import io
import json
import random

import pytest
from checks import compose, make_task, one_line

from attnkit import ConfigError, DataError

SMALL_MODEL = ("model.dim=32", "model.depth=1", "heads=2", "model.max_len=64", "trainer.enable_progress_bar=false")


def write_reviews(folder, n: int = 400, seed: int = 0) -> None:
    """Labelled texts: a review is positive when it holds more "good" than "bad" words among neutral ones."""
    rng = random.Random(seed)
    neutral = ["the", "film", "plot", "actor", "scene", "music", "story", "camera", "light", "end"]
    for split, size in (("train", n), ("validation", n // 5), ("test", n // 5)):
        with open(folder / f"{split}.jsonl", "w") as f:
            for _ in range(size):
                good, bad = rng.sample([(2, 0), (0, 2), (3, 1), (1, 3)], 1)[0]
                words = ["good"] * good + ["bad"] * bad + rng.choices(neutral, k=rng.randint(4, 12))
                rng.shuffle(words)
                label = "positive" if good > bad else "negative"
                f.write(json.dumps({"review": " ".join(words), "sentiment": label}) + "\n")


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reviews")
    write_reviews(folder)
    return folder


def review_config(folder, *extra: str) -> dict:
    return compose(
        "task=classify",
        "data=text_files",
        f"data.path={folder}",
        "data.src=review",
        "data.tgt=sentiment",
        *SMALL_MODEL,
        *extra,
    )


@pytest.fixture(scope="module")
def trained(reviews, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("classify") / "run"
    cfg = review_config(reviews, "trainer.max_epochs=6", "task.lr=3e-3", "task.warmup_steps=10")
    return run_dir, cfg, make_task(cfg).train(cfg, run_dir=run_dir, overrides=[])


def test_a_small_model_learns_labelled_texts(trained) -> None:
    run_dir, _, metrics = trained
    assert metrics["test/acc"] > 0.9, metrics
    assert metrics["classes"] == 2 and 0.3 < metrics["test/majority_acc"] < 0.7
    assert metrics["train_tokens_per_s"] > 0 and metrics["train_sequences_per_s"] > 0 and metrics["peak_memory_mb"] > 0
    for name in ("metrics.json", "config.yaml", "learning_curve.png", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name


def test_test_mode_reproduces_the_scores(trained, tmp_path) -> None:
    run_dir, cfg, metrics = trained
    cfg = {**cfg, "mode": "test", "ckpt_path": str(run_dir / "checkpoints" / "best.ckpt")}
    scores = make_task(cfg).test(cfg, run_dir=tmp_path, overrides=[])
    assert scores["test/acc"] == pytest.approx(metrics["test/acc"])


def test_predict_one_text_and_stdin(trained, tmp_path, monkeypatch, capsys) -> None:
    run_dir, cfg, _ = trained
    cfg = {**cfg, "mode": "predict", "ckpt_path": str(run_dir / "checkpoints" / "best.ckpt")}
    one = make_task(cfg).predict({**cfg, "input": "good good film story"}, run_dir=tmp_path / "one", overrides=[])
    assert one["predictions"][0]["label"] == "positive"
    monkeypatch.setattr("sys.stdin", io.StringIO("bad bad plot\ngood good light\n"))
    capsys.readouterr()
    piped = make_task(cfg).predict({**cfg, "input": None}, run_dir=tmp_path / "two", overrides=[])
    assert [p["label"] for p in piped["predictions"]] == ["negative", "positive"]
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["negative", "positive"]
    with pytest.raises(ConfigError) as exc:
        make_task(cfg).predict({**cfg, "input": " "}, run_dir=tmp_path / "x", overrides=[])
    assert "input is empty" in one_line(exc)
    (tmp_path / "texts.txt").write_text("bad bad plot\n\ngood good light\n")
    read = make_task(cfg).predict({**cfg, "input": str(tmp_path / "texts.txt")}, run_dir=tmp_path / "f", overrides=[])
    assert [(p["input"], p["label"]) for p in read["predictions"]] == [
        ("bad bad plot", "negative"),
        ("good good light", "positive"),
    ]  # the file's lines, not its name


def test_listops_trains_and_reports_the_majority_baseline(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ATTNKIT_CACHE", str(tmp_path / "cache"))
    cfg = compose(
        "task=classify",
        "data.train_size=64",
        "data.val_size=16",
        "data.test_size=16",
        "data.max_length=540",
        *SMALL_MODEL,
        "model.max_len=600",
        "trainer.max_epochs=1",
    )
    metrics = make_task(cfg).train(cfg, run_dir=tmp_path / "run", overrides=[])
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["classes"] == 10
    assert metrics["tokens_per_sequence"]["min"] >= 500 and metrics["tokens_per_sequence"]["max"] <= 540


def test_throughput_counts_every_epoch_when_the_best_checkpoint_is_an_earlier_one(tmp_path, monkeypatch) -> None:
    """With a learning rate too small to change anything, the best validation score stays at epoch 0: testing that
    checkpoint must not also take its counts (one epoch's sequences) for the run's throughput."""
    monkeypatch.setenv("ATTNKIT_CACHE", str(tmp_path / "cache"))
    overrides = ("data.train_size=64", "data.val_size=16", "data.test_size=16", "data.max_length=540")
    cfg = compose("task=classify", *overrides, *SMALL_MODEL, "model.max_len=600", "task.lr=1e-12")
    cfg["trainer"]["max_epochs"] = 2
    metrics = make_task(cfg).train(cfg, run_dir=tmp_path / "run", overrides=[])
    assert metrics["tested"] == "best" and metrics["best_checkpoint"].endswith("best.ckpt")
    sequences = metrics["train_sequences_per_s"] * metrics["train_time_s"]
    assert sequences == pytest.approx(2 * 64, rel=0.02)


def test_mistakes_are_one_line(reviews, tmp_path) -> None:
    one_class = tmp_path / "one"
    one_class.mkdir()
    (one_class / "train.jsonl").write_text(
        "".join(json.dumps({"review": f"w{i}", "sentiment": "x"}) + "\n" for i in range(20))
    )
    unseen = tmp_path / "unseen"
    unseen.mkdir()
    for split in ("train", "validation"):
        (unseen / f"{split}.jsonl").write_text((reviews / f"{split}.jsonl").read_text())
    (unseen / "test.jsonl").write_text(json.dumps({"review": "good", "sentiment": "neutral"}) + "\n")
    cases = [
        (review_config(one_class), ConfigError, "the training split has a single label ('x')"),
        (review_config(unseen), DataError, "labels the training split lacks: neutral"),
        (review_config(reviews, "model.max_len=8", "data.on_long=error"), DataError, "more than model.max_len=8"),
        (compose("task=classify", "data=digits"), ConfigError, "data=digits is not a labelled-text source"),
        (review_config(reviews, "task.tokenizer.kind=letters"), ConfigError, "task.tokenizer.kind='letters'"),
    ]
    for cfg, error, fragment in cases:
        with pytest.raises(error) as exc:
            make_task(cfg).train(cfg, run_dir=tmp_path / "run", overrides=[])
        assert fragment in one_line(exc), one_line(exc)
        assert not (tmp_path / "run").exists()


def test_long_texts_are_cut_with_one_warning(reviews, tmp_path, capsys) -> None:
    cfg = review_config(reviews, "model.max_len=8", "trainer.fast_dev_run=true")
    metrics = make_task(cfg).train(cfg, run_dir=tmp_path / "run", overrides=[])
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "truncated texts longer than model.max_len=8 tokens" in warnings[0]
    assert metrics["tokens_per_sequence"]["max"] == 8 and metrics["warnings"] == [warnings[0][len("warning: ") :]]
