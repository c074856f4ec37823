"""The translation task: built-in number-words data, BLEU/chrF, the config preset, and train / test / predict
in process on a tiny model (the CLI end to end is in tests/test_cli.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from checks import compose, make_task, one_line

import attnkit
from attnkit import registry
from attnkit.errors import ConfigError, DataError
from attnkit.tasks.translation.metrics import TranslationScorer
from attnkit.tasks.translation.number_words import NumberWordsData, draw_numbers
from attnkit.tasks.translation.task import TranslationTask

TINY = (
    "task=translation",
    "data.train_size=600",
    "data.val_size=24",
    "data.test_size=24",
    "data.max_number=9999",
    "data.batch_size=32",
    "model.dim=32",
    "model.depth=1",
    "heads=2",
    "task.warmup_steps=10",
    "task.beam=2",
    "task.tokenizer.vocab_size=200",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
)


# -------------------------------------------------------------------------------------------- number words


def test_number_words_splits_are_deterministic_disjoint_and_sized():
    source = attnkit.build("data", "number_words", train_size=300, val_size=40, test_size=50, max_number=99_999)
    pairs = source.load()
    assert (len(pairs.train), len(pairs.val), len(pairs.test)) == (300, 40, 50)
    assert (pairs.src, pairs.tgt) == ("en", "fr")
    sources = [s for split in (pairs.train, pairs.val, pairs.test) for s, _ in split]
    assert len(set(sources)) == len(sources)  # no number in two splits
    again = NumberWordsData(train_size=300, val_size=40, test_size=50, max_number=99_999).load()
    assert (again.train, again.val, again.test) == (pairs.train, pairs.val, pairs.test)
    other = NumberWordsData(train_size=300, val_size=40, test_size=50, max_number=99_999, seed=1).load()
    assert other.test != pairs.test


def test_number_words_are_real_language_with_reordering():
    from num2words import num2words

    pairs = NumberWordsData(train_size=980, val_size=10, test_size=10, max_number=999).load()
    assert ("ninety-seven", "quatre-vingt-dix-sept") in pairs.train + pairs.val + pairs.test
    number = {num2words(i, lang="en"): i for i in range(1000)}
    for src, tgt in pairs.train[:50]:
        assert tgt == num2words(number[src], lang="fr")
    german = NumberWordsData(tgt="de", train_size=10, val_size=5, test_size=5, max_number=99).load()
    assert all(t == t.lower() and " " not in t for _, t in german.train)  # siebenundneunzig: one word


def test_draw_numbers_spreads_over_lengths():
    numbers = draw_numbers(999_999, 600, seed=0)
    assert len(set(numbers)) == 600 and all(0 <= n <= 999_999 for n in numbers)
    by_digits = [sum(len(str(n)) == d for n in numbers) for d in range(1, 7)]
    assert by_digits[0] == 10 and by_digits[1] == 90  # short numbers: all of them
    assert all(abs(count - 125) <= 1 for count in by_digits[2:])  # the rest shared evenly
    assert draw_numbers(999_999, 600, seed=0) == numbers


def test_number_words_bad_options():
    with pytest.raises(ConfigError) as exc:
        NumberWordsData(src="xx").load()
    message = one_line(exc)
    assert "data.src='xx'" in message and "en, " in message and "fr" in message
    with pytest.raises(ConfigError) as exc:
        NumberWordsData(max_number=99, train_size=100)
    assert "data.max_number" in one_line(exc)


# ----------------------------------------------------------------------------------------------- metrics


def test_scores_are_sacrebleu_corpus_scores():
    import sacrebleu

    hyps = ["the cat sat on the mat", "a dog runs in the park today"]
    refs = ["the cat sat on the mat", "a dog is running in the park"]
    scorer = TranslationScorer()
    scores = scorer(hyps, refs)
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert scorer(refs, refs)["bleu"] == pytest.approx(100.0)
    signatures = scorer.signatures()
    assert "tok:13a" in signatures["bleu"] and "nc:6" in signatures["chrf"] and "version:" in signatures["bleu"]
    assert TranslationScorer.primary == "bleu"


# ------------------------------------------------------------------------------------------ config preset


def test_task_is_registered_with_its_preset():
    assert attnkit.get("task", "translation") is TranslationTask
    cfg = compose("task=translation")
    assert cfg["data"]["name"] == "number_words" and cfg["model"]["name"] == "transformer"
    assert cfg["model"]["heads"] == cfg["heads"] and cfg["model"]["pos_enc"]["name"] == "sinusoidal"
    task = make_task(cfg)
    assert task.decode.beam == cfg["task"]["beam"] and task.tokenizer.vocab_size is None  # chosen from the data
    assert cfg["model"]["dim"] is None and cfg["trainer"]["max_epochs"] is None


def test_per_stack_attention_overrides_reach_the_model():
    cfg = compose(
        "task=translation",
        "attention=eager",
        "model.encoder.attention=local",
        "model.decoder.cross_attention=softmax",
        "model.dim=16",
        "model.depth=1",
        "model.dropout=0.0",
        "heads=2",
    )
    net = registry.build_spec("model", cfg["model"], src_vocab=30, tgt_vocab=30, pad_id=0, share_vocab=True)
    assert type(net.encoder_blocks[0].attn.attention).__name__ == "LocalAttention"
    assert type(net.decoder_blocks[0].self_attn.attention).__name__ == "EagerAttention"
    assert type(net.decoder_blocks[0].cross_attn.attention).__name__ == "SoftmaxAttention"


def test_bad_task_options_are_config_errors():
    with pytest.raises(ConfigError) as exc:
        TranslationTask(tokenizer={"vocab": 10})
    assert "did you mean 'vocab_size'" in one_line(exc)
    with pytest.raises(ConfigError):
        TranslationTask(beam=0)
    with pytest.raises(ConfigError):
        TranslationTask(test_checkpoint="first")
    with pytest.raises(ConfigError):
        attnkit.build("task", "translation", beam="wide")


def test_image_data_or_model_refused(tmp_path):
    cfg = compose("task=translation", "data=digits")
    with pytest.raises(ConfigError) as exc:
        make_task(cfg).train(cfg, run_dir=tmp_path)
    assert "data=digits is not a text-pair source" in one_line(exc)
    cfg = compose(*TINY, "model=vit", f"task.tokenizer.cache_dir={tmp_path}")
    with pytest.raises(ConfigError) as exc:
        make_task(cfg).train(cfg, run_dir=tmp_path)
    assert "model=vit is not an encoder-decoder" in one_line(exc)


# ------------------------------------------------------------------------- train / test / predict, in process


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict, dict]:
    root = tmp_path_factory.mktemp("translation")
    cfg = compose(*TINY, f"task.tokenizer.cache_dir={root / 'cache'}")
    metrics = make_task(cfg).train(cfg, run_dir=root / "run", overrides=[])
    return root / "run", cfg, metrics


def test_train_writes_the_run_directory(trained):
    run_dir, cfg, metrics = trained
    for name in (
        "config.yaml",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
        "metrics.csv",
        "metrics.json",
        "learning_curve.png",
        "samples.md",
        "test_outputs.jsonl",
        "val_outputs.jsonl",
    ):
        assert (run_dir / name).is_file(), name
    saved = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test/bleu", "test/chrf", "val/bleu", "val/chrf", "test/acc", "train_time_s", "epochs", "params"):
        assert key in saved, key
    assert 0.0 <= saved["test/bleu"] <= 100.0 and saved["epochs"] == 1 and saved["primary_metric"] == "test/bleu"
    assert "tok:13a" in saved["signatures"]["bleu"] and saved["decoding"]["beam"] == 2
    assert saved["pairs"] == {"train": 600, "val": 24, "test": 24}
    lines = (run_dir / "test_outputs.jsonl").read_text().splitlines()
    assert len(lines) == 24 and set(json.loads(lines[0])) == {"source", "reference", "hypothesis", "non_words"}
    assert "| source | reference | translation |" in (run_dir / "samples.md").read_text()
    assert "val/bleu" in (run_dir / "metrics.csv").read_text()


def test_checkpoint_carries_tokenizers_and_config(trained):
    run_dir, cfg, _ = trained
    payload = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)  # no code run
    extras = payload["attnkit"]
    assert extras["task"] == "translation" and extras["config"]["model"]["dim"] == 32
    assert payload["hyper_parameters"]["task"] == cfg["task"]  # the recipe, as the config node holds it
    assert json.loads(extras["tokenizers"]["src"])["model"]["type"] == "BPE" and extras["tokenizers"]["tgt"] is None


def test_test_mode_reproduces_the_test_scores(trained, tmp_path):
    run_dir, cfg, metrics = trained
    cfg = {**cfg, "mode": "test", "ckpt_path": str(run_dir / "checkpoints" / "best.ckpt")}
    scores = make_task(cfg).test(cfg, run_dir=tmp_path, overrides=[])
    assert scores["test/bleu"] == pytest.approx(metrics["test/bleu"]) and scores["checkpoint"] == cfg["ckpt_path"]
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "test_outputs.jsonl").is_file()


def test_predict_one_sentence_and_stdin(trained, tmp_path, monkeypatch, capsys):
    run_dir, cfg, _ = trained
    cfg = {**cfg, "mode": "predict", "ckpt_path": str(run_dir / "checkpoints" / "last.ckpt"), "input": "forty-two"}
    result = make_task(cfg).predict(cfg, run_dir=tmp_path / "one", overrides=[])
    assert len(result["predictions"]) == 1 and result["predictions"][0]["source"] == "forty-two"
    assert capsys.readouterr().out.splitlines() == [result["predictions"][0]["output"]]
    assert json.loads((tmp_path / "one" / "prediction.json").read_text())["decoding"]["beam"] == 2

    monkeypatch.setattr("sys.stdin", io.StringIO("seven\n\nthree hundred and twelve\n"))
    cfg = {**cfg, "input": None, "task": {**cfg["task"], "beam": 1}}
    result = make_task(cfg).predict(cfg, run_dir=tmp_path / "stdin", overrides=["task.beam=1"])
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3 and printed[1] == "" and result["decoding"]["beam"] == 1  # one line per input line


def test_predict_truncates_long_input_with_one_warning(trained, tmp_path, capsys):
    run_dir, cfg, _ = trained
    long = " ".join(["seven hundred and seventy-seven thousand"] * 20)
    cfg = {**cfg, "mode": "predict", "ckpt_path": str(run_dir / "checkpoints" / "last.ckpt"), "input": long}
    make_task(cfg).predict(cfg, run_dir=tmp_path, overrides=[])
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "truncated 1 of 1 inputs to model.max_len=64" in warnings[0]
    cfg["data"] = {**cfg["data"], "on_long": "error"}
    with pytest.raises(DataError) as exc:
        make_task(cfg).predict(cfg, run_dir=tmp_path, overrides=["data.on_long=error"])
    assert "model.max_len=64" in one_line(exc)


def test_predict_and_test_refuse_bad_checkpoints_and_input(trained, tmp_path):
    run_dir, cfg, _ = trained
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"data_info": {"num_classes": 10}}}, foreign)
    other_task = tmp_path / "other.ckpt"
    payload = torch.load(ckpt, map_location="cpu", weights_only=True)
    payload["attnkit"] = {**payload["attnkit"], "task": "summarization"}
    torch.save(payload, other_task)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_text("not a checkpoint")
    cases = [
        (foreign, ConfigError, "was not written by an attnkit training run"),
        (other_task, ConfigError, "written by task=summarization, not task=translation"),
        (garbage, DataError, "cannot read checkpoint"),
        (tmp_path / "missing.ckpt", DataError, "does not exist"),
    ]
    for path, error, fragment in cases:
        for mode in ("predict", "test"):
            bad = {**cfg, "mode": mode, "ckpt_path": str(path), "input": "one"}
            with pytest.raises(error) as exc:
                getattr(make_task(bad), mode)(bad, run_dir=tmp_path / "x", overrides=[])
            assert fragment in one_line(exc), (path, mode)
    empty = {**cfg, "mode": "predict", "ckpt_path": str(ckpt), "input": "  "}
    with pytest.raises(ConfigError) as exc:
        make_task(empty).predict(empty, run_dir=tmp_path / "x", overrides=[])
    assert "input is empty" in one_line(exc)


def test_a_small_model_learns_to_translate_unseen_numbers(tmp_path):
    """English -> French words of 0..999: numbers never seen in training are translated (BLEU ~99 after 6 epochs)."""
    cfg = compose(
        "task=translation",
        "data.train_size=900",
        "data.val_size=50",
        "data.test_size=50",
        "data.max_number=999",
        "data.batch_size=32",
        "model.dim=64",
        "model.depth=2",
        "model.dropout=0.1",
        "heads=4",
        "task.lr=3e-3",
        "task.warmup_steps=50",
        "task.beam=1",
        "task.samples=0",
        "task.tokenizer.vocab_size=200",
        f"task.tokenizer.cache_dir={tmp_path / 'cache'}",
        "trainer.max_epochs=6",
        "trainer.enable_progress_bar=false",
    )
    metrics = make_task(cfg).train(cfg, run_dir=tmp_path / "run", overrides=[])
    assert metrics["test/bleu"] > 80 and metrics["test/chrf"] > 90, metrics
