"""Denoising pretraining (`task.objective=denoise`, tasks/seq2seq/denoise.py): BART's noise on token ids, the
per-epoch noise of the dataset, the options, and a pretraining run then a fine-tuning run from it (init_from) through
the command line, on small text files written here."""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

import forked_cli
import pytest
import torch
from checks import compose, make_task, one_line

from attnkit.errors import ConfigError
from attnkit.tasks.seq2seq.denoise import (
    DenoiseOptions,
    DenoisingPairs,
    infill,
    mask_spans,
    noise,
    noise_rng,
    permute_sentences,
    poisson,
    sample_spans,
    sentence_end_ids,
    split_sentences,
)
from attnkit.tasks.summarization.task import SummarizationTask
from attnkit.train import init_from
from attnkit.train.task import Given

MASK = 4
DOT, BANG = 7, 8

# ---------------------------------------------------------------------------------------------- the noise


def test_span_lengths_are_poisson_and_masks_cover_the_ratio_on_average():
    rng = random.Random(0)
    assert sum(poisson(rng, 3.0) for _ in range(20_000)) / 20_000 == pytest.approx(3.0, abs=0.05)
    ids = list(range(100, 300))
    masked = []
    for _ in range(400):
        out = infill(ids, rng, mask_id=MASK, ratio=0.3, span_mean=3.0)
        masked.append(len(set(ids) - set(out)) / len(ids))
    assert sum(masked) / len(masked) == pytest.approx(0.3, abs=0.005)
    assert infill(ids, rng, mask_id=MASK, ratio=0.0, span_mean=3.0) == ids


def test_each_span_becomes_one_mask():
    assert mask_spans([1, 2, 3, 4, 5, 6, 7, 8], [(1, 2), (5, 0)], MASK) == [1, MASK, 4, 5, MASK, 6, 7, 8]
    ids = list(range(100, 160))
    for seed in range(200):
        spans = sample_spans(len(ids), random.Random(seed), 0.3, 3.0)
        covered = sum(length for _, length in spans)
        assert covered in (18, 19)  # 0.3 * 60, rounded at random
        real = [(s, n) for s, n in spans if n > 0]
        for (s1, n1), (s2, _) in zip(real, real[1:], strict=False):
            assert s1 + n1 < s2  # spans neither overlap nor touch: one mask each
        for start, length in spans:
            assert start >= 0 and start + length <= len(ids)
            if length == 0:  # an insertion never falls inside a span
                assert not any(s < start < s + n for s, n in real)
        out = mask_spans(ids, spans, MASK)
        assert out.count(MASK) == len(spans)
        kept = [t for t in out if t != MASK]
        assert kept == [t for i, t in enumerate(ids) if not any(s <= i < s + n for s, n in real)]
        assert len(kept) == len(ids) - covered


def test_sentence_permutation_keeps_every_token_and_sentence():
    ids = [10, 11, DOT, 12, 13, 14, BANG, 15, DOT, DOT, 16, 17]
    sentences = split_sentences(ids, {DOT, BANG})
    assert sentences == [[10, 11, DOT], [12, 13, 14, BANG], [15, DOT, DOT], [16, 17]]
    orders = set()
    for seed in range(30):
        out = permute_sentences(ids, random.Random(seed), {DOT, BANG})
        assert Counter(out) == Counter(ids)
        ended = permute_sentences([*ids, BANG], random.Random(seed), {DOT, BANG})  # every sentence ended
        assert sorted(map(tuple, split_sentences(ended, {DOT, BANG}))) == sorted(
            map(tuple, [*sentences[:-1], [16, 17, BANG]])
        )
        orders.add(tuple(out))
    assert len(orders) > 10
    assert permute_sentences([1, 2, 3], random.Random(0), {DOT}) == [1, 2, 3]  # one sentence: nothing to move


def test_noise_is_a_function_of_seed_epoch_and_index():
    options = DenoiseOptions()
    docs = [[10 + (i * 7 + j) % 50 for j in range(40)] + [DOT] for i in range(6)]
    data = DenoisingPairs(
        docs, docs, ["x"] * 6, mask_id=MASK, eos_id=2, terminals={DOT}, options=options, seed=3, max_source_tokens=41
    )
    first = [data[i] for i in range(6)]
    assert first == [data[i] for i in range(6)]  # the same epoch: the same noise
    assert all(item[1][-1] == 2 and item[2] == docs[i] for i, item in enumerate(first))  # source ends in EOS
    again = DenoisingPairs(
        docs, docs, ["x"] * 6, mask_id=MASK, eos_id=2, terminals={DOT}, options=options, seed=3, max_source_tokens=41
    )
    assert [again[i] for i in range(6)] == first  # another process, another run: the same noise (resume is exact)
    data.set_epoch(1)
    assert [data[i][1] for i in range(6)] != [item[1] for item in first]  # fresh noise every epoch
    assert data.noised(0, epoch=0) == first[0][1][:-1]
    rng = noise_rng(3, 0, 0)
    assert noise(docs[0], rng, mask_id=MASK, terminals={DOT}, options=options) == first[0][1][:-1]
    assert noise_rng(3, 0, 1).random() != noise_rng(3, 0, 0).random() != noise_rng(4, 0, 0).random()


def test_lightning_reaches_the_batch_samplers_epoch():
    """Lightning calls set_epoch on `dataloader.batch_sampler.sampler`, not on the batch sampler: without the link
    every epoch had the same batches (and the same noise)."""
    from lightning_fabric.utilities.data import _set_sampler_epoch
    from torch.utils.data import DataLoader

    from attnkit.text import LengthBatchSampler

    seen = []
    sampler = LengthBatchSampler([3] * 20, batch_size=4, shuffle=True, on_epoch=seen.append)
    _set_sampler_epoch(DataLoader(list(range(20)), batch_sampler=sampler), 5)
    assert sampler.epoch == 5 and seen == [5]


def test_sentence_ends_of_a_trained_tokenizer(tmp_path):
    from attnkit.text.pairs import TextPairs
    from attnkit.text.tokenizer import SPECIAL_TOKENS, load_tokenizers

    rows = [("The cat sat. Did it? Yes sir! e.g. fine", "cat")] * 3
    pairs = TextPairs(train=rows, val=rows, test=rows, src="a", tgt="b")
    for kind in ("bpe", "words", "chars"):
        tok = load_tokenizers(pairs, kind=kind, vocab_size=80, min_frequency=1, cache_dir=str(tmp_path)).src
        assert SPECIAL_TOKENS[-1] == "<mask>" and tok.mask_id == 4 and (tok.pad_id, tok.unk_id) == (0, 3)
        ends = sentence_end_ids(tok.tokenizer)
        ids = tok.encode(["The cat sat. Did it? Yes sir! ok"])[0]
        assert len(split_sentences(ids, ends)) == 4, kind
        assert tok.mask_id not in ends and tok.decode([[tok.mask_id, *ids]]) == tok.decode([ids])


# ---------------------------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"objective": "denoize"}, "task.objective='denoize' is not an objective (did you mean 'denoise'?)"),
        ({"objective": "denoise", "denoise": {"mask_ratio": 1.5}}, "task.denoise.mask_ratio=1.5 must be"),
        ({"objective": "denoise", "denoise": {"span_mean": 0}}, "task.denoise.span_mean=0 must be"),
        ({"objective": "denoise", "denoise": {"permute": True}}, "task.denoise has no option 'permute'"),
        ({"objective": "denoise", "denoise": {"texts": "a.txt"}}, "task.denoise.texts='a.txt' must be a list"),
        ({"denoise": {"texts": ["a.txt"]}}, "task.denoise.texts is set but task.objective=supervised"),
    ],
)
def test_bad_options_are_one_line(options, fragment):
    with pytest.raises(ConfigError) as exc:
        SummarizationTask(**options)
    assert fragment in one_line(exc)


def test_objective_sets_the_monitored_metric():
    assert (SummarizationTask().monitor, SummarizationTask().monitor_mode) == ("val/rougeL", "max")
    task = SummarizationTask(objective="denoise", denoise={"mask_ratio": 0.2})
    assert (task.monitor, task.monitor_mode, task.denoise.mask_ratio) == ("val/loss", "min", 0.2)
    assert task.recipe()["denoise"] == {"mask_ratio": 0.2, "span_mean": 3.0, "permute_sentences": True, "texts": []}


# ----------------------------------------------------------------------- pretrain, then fine-tune, from the CLI

WORDS = [
    *("ship", "harbour", "storm", "crew", "captain", "cargo", "sail", "wind"),
    *("anchor", "night", "port", "coast", "light", "tide", "wave", "north"),
]
TINY = (
    "task=summarization",
    "data=text_files",
    "data.path=.",
    "data.src=document",
    "data.tgt=summary",
    "data.pair_field=null",
    "data.val_fraction=0.1",
    "data.test_fraction=0.1",
    "data.batch_size=16",
    "data.max_source_len=40",
    "model.dim=16",
    "model.depth=1",
    "model.max_len=48",
    "heads=2",
    "task.warmup_steps=5",
    "task.beam=1",
    "task.tokenizer.vocab_size=120",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
)

LEFT_TO_RULE = tuple(arg for arg in TINY if not arg.startswith(("model.dim=", "model.depth=", "task.tokenizer.")))


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 6))).capitalize() + rng.choice(".!?")


def write_corpus(folder: Path) -> None:
    rng = random.Random(0)
    rows = []
    for _ in range(60):
        document = " ".join(sentence(rng) for _ in range(rng.randint(2, 4)))
        rows.append({"document": document, "summary": " ".join(document.split()[:3])})
    (folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    lines = [" ".join(sentence(rng) for _ in range(3)) for _ in range(20)]
    (folder / "extra.txt").write_text("\n".join(lines[:10]) + "\n\n   \n" + "\n".join(lines[10:]) + "\n")


def cli(args: list[str], cwd: Path) -> dict:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    env.update({"ATTNKIT_CACHE": str(cwd / "cache"), "OMP_NUM_THREADS": "1"})
    env.pop("HYDRA_FULL_ERROR", None)
    return (args, cwd, env)


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("denoise")
    write_corpus(root)
    args = [*TINY, "task.objective=denoise", "task.denoise.texts=[extra.txt]", "hydra.run.dir=pre"]
    proc = ok(forked_cli.run(*cli(args, root)))
    assert "denoise: 68 train, 6 val, 6 test documents (20 from task.denoise.texts)" in proc.stdout
    return root


def test_denoising_run_reports_loss_and_its_documents(pretrained):
    metrics = json.loads((pretrained / "pre" / "metrics.json").read_text())
    assert metrics["objective"] == "denoise" and metrics["primary_metric"] == "test/loss"
    assert metrics["denoise"]["documents"] == {"train": 48 + 20, "val": 6, "test": 6}  # 60 pairs: 48/6/6, + 20 lines
    assert metrics["denoise"]["extra_documents"] == 20 and metrics["denoise"]["mask_ratio"] == 0.3
    assert metrics["tokenizer"]["extra_texts"] == 20
    assert "best_val_loss" in metrics and not any("rouge" in key for key in metrics)  # nothing generated
    assert metrics["val/loss"] == pytest.approx(metrics["best_val_loss"])
    samples = (pretrained / "pre" / "samples.md").read_text()
    assert "| noised | document |" in samples and "<mask>" in samples


def test_fine_tuning_reuses_the_pretrained_tokenizers_and_weights(pretrained):
    root = pretrained
    commands = {
        "fine": cli([*TINY, "init_from=pre", "hydra.run.dir=fine"], root),
        "sized": cli([*LEFT_TO_RULE, "init_from=pre", "hydra.run.dir=sized"], root),
        "test": cli(["mode=test", "ckpt_path=pre/checkpoints/best.ckpt", "hydra.run.dir=pre_test"], root),
        "tokenizer_set": cli([*TINY, "init_from=pre", "task.tokenizer.vocab_size=90", "hydra.run.dir=bad1"], root),
        "missing_text": cli(
            [*TINY, "task.objective=denoise", "task.denoise.texts=[nope.txt]", "hydra.run.dir=b2"], root
        ),
        "bad_ratio": cli([*TINY, "task.objective=denoise", "task.denoise.mask_ratio=2", "hydra.run.dir=bad3"], root),
    }
    done = forked_cli.run_many(commands, parallel=2)
    proc = ok(done["fine"])
    assert "init_from: starts from a denoising (self-supervised) run (68 documents (20 from task.denoise.texts)" in (
        proc.stdout
    )
    pre, fine = (torch.load(root / run / "checkpoints" / "last.ckpt", weights_only=True) for run in ("pre", "fine"))
    assert fine["attnkit"]["tokenizers"] == pre["attnkit"]["tokenizers"]  # the same vocabulary, token for token
    report = json.loads((root / "fine" / "init_from.json").read_text())
    assert len(report["copied"]) > 0 and not report["reinitialised"] and not report["dropped"]
    metrics = json.loads((root / "fine" / "metrics.json").read_text())
    assert metrics["objective"] == "supervised" and "test/rougeL" in metrics and "test/lead_rougeL" in metrics
    assert metrics["tokenizer"]["origin"] == "init_from" and metrics["pretrained"]["objective"] == "denoise"
    assert metrics["pretrained"]["epochs"] == 2 and metrics["pretrained"]["denoise"]["documents"]["train"] == 68
    assert metrics["init_from"]["copied"] == len(report["copied"])

    # width and depth left null: the checkpoint's (16, 1), not the size rule's (128, 2 for 48 pairs), so all fits
    proc = ok(done["sized"])
    assert "init_from: model.dim=16, model.depth=1 as in" in proc.stdout
    report = json.loads((root / "sized" / "init_from.json").read_text())
    assert report["copied"] == json.loads((root / "fine" / "init_from.json").read_text())["copied"]

    tested = json.loads((root / "pre_test" / "metrics.json").read_text())
    trained = json.loads((root / "pre" / "metrics.json").read_text())
    assert tested["test/loss"] == pytest.approx(trained["test/loss"])  # the test noise is fixed: scores reproduce

    line = one_error_line(done["tokenizer_set"])
    assert "task.tokenizer.vocab_size=90 differs from the 120 of init_from=pre" in line
    assert (
        "task.denoise.texts:" in one_error_line(done["missing_text"])
        and "does not exist" in done["missing_text"].stderr
    )
    assert "task.denoise.mask_ratio=2 must be a number in [0, 1)" in one_error_line(done["bad_ratio"])
    for name in ("bad1", "b2", "bad3"):
        assert not (root / name).exists()


def test_a_run_reads_its_init_from_checkpoint_once(pretrained, monkeypatch):
    """The checkpoint gives the sizes (the resolve step), the tokenizers (setup) and the weights: one read for all."""
    reads: list[str] = []
    load = torch.load
    monkeypatch.setattr(torch, "load", lambda f, *args, **kwargs: (reads.append(str(f)), load(f, *args, **kwargs))[1])
    monkeypatch.chdir(pretrained)
    monkeypatch.setenv("ATTNKIT_CACHE", str(pretrained / "cache"))
    cfg = compose(*LEFT_TO_RULE, "init_from=pre")
    task = make_task(cfg)
    start = init_from.read(cfg, task=task.name, run_dir=pretrained / "once")
    resolved, tuned, setup = task.prepare(cfg, Given(start=start))
    assert init_from.apply(start, setup.net, task=tuned.name, run_dir=pretrained / "once")["copied"] > 0
    assert reads == [str(pretrained / "pre" / "checkpoints" / "last.ckpt")]
    assert (resolved["model"]["dim"], resolved["model"]["depth"]) == (16, 1)  # inherited, not the size rule's
    assert setup.tokenizers.to_state() == start.checkpoint["attnkit"]["tokenizers"]
    assert resolved["task"]["tokenizer"]["vocab_size"] == tuned.tokenizer.vocab_size == 120
    assert task.tokenizer.vocab_size is None  # the task it started from is unchanged: a new one was built


def test_a_tokenizer_without_mask_is_refused_for_denoising(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    write_corpus(tmp_path)
    vocab = {t: i for i, t in enumerate(["<pad>", "<bos>", "<eos>", "<unk>", *WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(tmp_path / "tok.json"))
    args = [*TINY, "task.objective=denoise", "task.tokenizer.path=tok.json", "hydra.run.dir=run"]
    line = one_error_line(forked_cli.run(*cli(args, tmp_path)))
    assert "has no <mask> token, which task.objective=denoise needs" in line
