"""task=lm: MQAR data against its reference, a tiny run's reports, test and generate from its checkpoint (CLI and
Python), and its one-line refusals."""

from __future__ import annotations

import io
import json

import pytest
import torch
from checks import compose, make_task, one_line

import attnkit
from attnkit import ConfigError
from attnkit.tasks.lm.mqar import IGNORE, MQARData, answers, generate

TINY = (
    "task=lm",
    "model.dim=16",
    "heads=2",
    "task.context=24",
    "data.num_kv_pairs=3",
    "data.vocab_size=16",
    "data.train_size=64",
    "data.val_size=16",
    "data.test_size=16",
    "data.batch_size=16",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
)


# -- MQAR --------------------------------------------------------------------------------------------------------------


def test_every_target_is_the_reference_answer() -> None:
    inputs, targets = generate(
        200, 40, vocab_size=32, num_kv_pairs=6, power_a=0.01, generator=torch.Generator().manual_seed(0)
    )
    for x, y in zip(inputs.tolist(), targets.tolist(), strict=True):
        expected = answers(x, 6)
        assert {i: t for i, t in enumerate(y) if t != IGNORE} == expected
        assert len(expected) == 6 and len(set(x[0:12:2])) == 6  # every key once, distinct keys
        assert all(x[i + 1] == v for i, v in expected.items() if i + 1 < len(x))


def test_query_gaps_follow_a_power_law() -> None:
    """Small power_a puts most queries right after the pairs; power_a=1 spreads them evenly."""

    def mean_first_query(power_a: float) -> float:
        inputs, targets = generate(
            400, 64, vocab_size=32, num_kv_pairs=2, power_a=power_a, generator=torch.Generator().manual_seed(1)
        )
        return targets.ne(IGNORE).float().argmax(dim=1).float().mean().item()

    assert mean_first_query(0.01) + 8 < mean_first_query(1.0)


def test_splits_are_deterministic_and_disjoint() -> None:
    def rows(seed: int) -> dict[str, set[tuple[int, ...]]]:
        data = MQARData(vocab_size=16, num_kv_pairs=2, train_size=300, val_size=50, test_size=50, seed=seed).load()
        return {
            r: {tuple(x.tolist()) for x, _ in data.dataset(r, 8, seed=0, epoch_offsets=False)}
            for r in ("train", "val", "test")
        }

    first, again, other = rows(0), rows(0), rows(1)
    assert first == again and first != other
    assert [len(first[r]) for r in ("train", "val", "test")] == [300, 50, 50]
    assert (
        not (first["train"] & first["val"])
        and not (first["train"] & first["test"])
        and not first["val"] & first["test"]
    )


def test_training_mixes_the_given_numbers_of_pairs_and_scoring_keeps_its_own() -> None:
    data = MQARData(vocab_size=32, num_kv_pairs=4, train_pairs=[1, 2, 4], train_size=30, val_size=9, test_size=9)
    made = data.load()
    answered = {r: [int(y.ne(IGNORE).sum()) for _, y in made.dataset(r, 16, seed=0, epoch_offsets=False)] for r in
                ("train", "val", "test")}  # fmt: skip
    assert sorted(answered["train"]) == [1] * 10 + [2] * 10 + [4] * 10
    assert answered["val"] == answered["test"] == [4] * 9
    plain = MQARData(vocab_size=32, num_kv_pairs=4, train_size=30, val_size=9, test_size=9).load()
    mixed_test, plain_test = (d.dataset("test", 16, seed=0, epoch_offsets=False).tensors[0] for d in (made, plain))
    assert torch.equal(mixed_test, plain_test)  # test is made first, from the same seed


@pytest.mark.parametrize(
    ("options", "context", "fragment"),
    [
        ({"train_pairs": []}, 64, "data.train_pairs=[] must be a list of pair counts"),
        ({"train_pairs": [2, 0]}, 64, "data.train_pairs=[2, 0] must be a list of pair counts"),
        ({"train_pairs": [2, 40]}, 200, "data.train_pairs=40 needs as many distinct keys"),
        ({"train_pairs": [2, 8]}, 16, "a context of 16 tokens cannot hold 8 pairs"),
        ({"num_kv_pairs": 40}, 200, "needs as many distinct keys"),
        ({"num_kv_pairs": 4}, 12, "a context of 12 tokens cannot hold 4 pairs"),
        ({"power_a": 0}, 64, "data.power_a=0 must be in (0, 1]"),
        ({"vocab_size": 8, "num_kv_pairs": 2, "train_size": 500}, 8, "cannot make 1268 distinct sequences"),
    ],
)
def test_bad_mqar_options(options, context, fragment) -> None:
    with pytest.raises(ConfigError) as exc:
        MQARData(**options).load().dataset("train", context, seed=0, epoch_offsets=True)
    assert fragment in one_line(exc)


# -- the task ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("lm") / "run"
    cfg = compose(*TINY)
    return run_dir, cfg, make_task(cfg).train(cfg, run_dir=run_dir, overrides=[])


def test_a_run_reports_what_a_language_model_is_judged_by(trained) -> None:
    run_dir, _, metrics = trained
    for key in ("val/loss", "test/loss", "test/ppl", "test/bits_per_token", "test/acc", "test/generated_answer_acc"):
        assert key in metrics, key
    assert metrics["test/ppl"] == pytest.approx(torch.tensor(metrics["test/loss"]).exp().item(), rel=1e-3)
    assert metrics["test/bits_per_token"] == pytest.approx(metrics["test/loss"] / 0.693147, rel=1e-3)
    assert metrics["generated_answers_checked"] == 16 * 3
    assert metrics["train_tokens_per_s"] > 0 and metrics["peak_memory_mb"] > 0
    for name in ("learning_curve.png", "attention_map.png", "metrics.json", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name


def test_test_and_generate_from_the_checkpoint(trained, tmp_path, monkeypatch) -> None:
    run_dir, cfg, metrics = trained
    ckpt = str(run_dir / "checkpoints" / "last.ckpt")
    tested = make_task(cfg).test({**cfg, "mode": "test", "ckpt_path": ckpt}, run_dir=tmp_path / "test", overrides=[])
    assert tested["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-5)

    prompt = "1 9 2 10 3 11 1"
    task = make_task({**cfg, "task": {**cfg["task"], "max_new_tokens": 5, "temperature": 0}})
    out = task.generate({**cfg, "ckpt_path": ckpt, "input": prompt}, run_dir=tmp_path / "gen")
    saved = json.loads((tmp_path / "gen" / "generation.json").read_text())
    assert saved["generations"] == out["generations"] and saved["settings"]["temperature"] == 0
    assert len(out["generations"][0]["text"].split()) == 5
    assert attnkit.load(run_dir).generate(prompt, max_new_tokens=5, temperature=0) == out["generations"][0]["text"]

    monkeypatch.setattr("sys.stdin", io.StringIO("1 9\n2 10 3\n"))
    lines = task.generate({**cfg, "ckpt_path": ckpt, "input": "-"}, run_dir=None)
    assert [g["prompt"] for g in lines["generations"]] == ["1 9", "2 10 3"]

    long = " ".join(["1"] * 22)
    with pytest.raises(ConfigError) as exc:
        task.generate({**cfg, "ckpt_path": ckpt, "input": long}, run_dir=None)
    assert "set task.truncate=left" in one_line(exc)
    cut = make_task({**cfg, "task": {**cfg["task"], "max_new_tokens": 5, "truncate": "left"}})
    assert (
        len(cut.generate({**cfg, "ckpt_path": ckpt, "input": long}, run_dir=None)["generations"][0]["text"].split())
        == 5
    )
    with pytest.raises(ConfigError) as exc:
        task.generate({**cfg, "ckpt_path": ckpt, "input": "1 99"}, run_dir=None)
    assert "an MQAR prompt is token ids 0..15" in one_line(exc)


def test_generate_is_refused_for_other_tasks(tmp_path) -> None:
    cfg = compose("task=classify")
    with pytest.raises(ConfigError) as exc:
        make_task(cfg).generate(cfg, run_dir=tmp_path)
    assert "task=classify has no generate mode" in one_line(exc)
