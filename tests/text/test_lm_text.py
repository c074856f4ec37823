"""data=text, the plain text of a language model: splits, lossless tokenizers, windows and its one-line mistakes."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from checks import compose, make_task, one_line, write_jsonl

import attnkit
from attnkit.errors import ConfigError, DataError
from attnkit.text import LMData, TextData, TextStream
from attnkit.text.lm_source import load_lm_data
from attnkit.text.lm_tokenizer import LMTokenizerOptions, from_state, train_lm_tokenizer
from attnkit.text.windows import IGNORE, CoveringWindows, RandomWindows
from attnkit.text.words import Lexicon

VERSE = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 20
UNICODE = "Grüße, señor — ça va?\n\tTabs,  two spaces, 日本語, emoji 🙂 and\r\nCRLF.\n"


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return str(path)


def scored(dataset) -> list[tuple[int, int]]:
    """(position in the stream, target) of every scored target of a covering dataset."""
    out = []
    for index in range(len(dataset)):
        x, y = dataset[index]
        start = min(index * dataset.context, dataset.scored - dataset.context)
        assert torch.equal(x, dataset.tokens[start : start + dataset.context].long())
        out += [(start + 1 + j, int(t)) for j, t in enumerate(y) if t != IGNORE]
    return out


def test_registered_and_gives_lm_data(tmp_path) -> None:
    assert attnkit.get("data", "text") is TextData
    stream = attnkit.build("data", "text", path=write(tmp_path / "input.txt", VERSE)).load()
    assert isinstance(stream, TextStream) and isinstance(stream, LMData)
    assert stream.unit == "character"
    assert stream.vocab_size == len(set(VERSE[: int(len(VERSE) * 0.9)]))


@pytest.mark.parametrize(("n", "context"), [(9, 8), (17, 8), (20, 8), (100, 7), (64, 1)])
def test_covering_windows_score_every_token_but_the_first_once(n, context) -> None:
    tokens = torch.randint(0, 50, (n,), generator=torch.Generator().manual_seed(n), dtype=torch.int32)
    windows = CoveringWindows(tokens, context)
    assert all(x.shape == (context,) and x.dtype == torch.int64 for x, _ in windows)
    assert scored(windows) == [(i, int(tokens[i])) for i in range(1, n)]


def test_windows_cover_the_file_exactly(tmp_path) -> None:
    """Every character of each split but its first is a target once, in order: the split comes back whole."""
    text = write(tmp_path / "input.txt", VERSE)
    stream = TextData(path=text).load()
    cuts = [0, int(len(VERSE) * 0.9), int(len(VERSE) * 0.95), len(VERSE)]
    for role, (a, b) in zip(("train", "val", "test"), zip(cuts, cuts[1:], strict=False), strict=True):
        windows = stream.dataset(role, 13, seed=0, epoch_offsets=False)
        assert VERSE[a] + stream.decode([t for _, t in scored(windows)]) == VERSE[a:b]


def test_random_windows_differ_per_epoch_and_repeat_per_seed() -> None:
    tokens = torch.arange(1000, dtype=torch.int32)
    first = RandomWindows(tokens, 16, seed=3)
    assert len(first) == 999 // 16
    epoch0 = first.starts.clone()
    first.set_epoch(1)
    assert not torch.equal(first.starts, epoch0)
    again = RandomWindows(tokens, 16, seed=3)
    assert torch.equal(again.starts, epoch0)
    again.set_epoch(1)
    assert torch.equal(again.starts, first.starts)
    assert not torch.equal(RandomWindows(tokens, 16, seed=4).starts, epoch0)
    for x, y in first:  # contiguous, target = input shifted by one, inside the stream
        assert torch.equal(y, x + 1) and int(y[-1]) < 1000


def test_training_dataset_draws_random_offsets(tmp_path) -> None:
    stream = TextData(path=write(tmp_path / "input.txt", VERSE)).load()
    train = stream.dataset("train", 32, seed=0, epoch_offsets=True)
    assert isinstance(train, RandomWindows) and len(train) == (len(stream.tokens["train"]) - 1) // 32
    assert isinstance(stream.dataset("val", 32, seed=0, epoch_offsets=False), CoveringWindows)


@pytest.mark.parametrize("kind", ["chars", "bytes", "bpe"])
def test_tokenizers_round_trip(kind) -> None:
    options = LMTokenizerOptions(kind=kind, vocab_size=300, min_frequency=1)
    tokenizer = train_lm_tokenizer(VERSE + UNICODE, options)
    for text in (UNICODE, VERSE, " Speak,  hear me \n"):
        ids = tokenizer.encode(text)
        assert all(0 <= i < tokenizer.vocab_size for i in ids)
        assert tokenizer.decode(ids) == text
        assert from_state(json.loads(json.dumps(tokenizer.to_state()))).encode(text) == ids
    assert tokenizer.vocab_size == {"chars": len(set(VERSE + UNICODE)), "bytes": 256, "bpe": 300}[kind]


def test_bpe_is_trained_on_the_training_split_alone(tmp_path) -> None:
    train = write(tmp_path / "train.txt", "abc abd abe " * 200)
    val = write(tmp_path / "validation.txt", "zqx zqx zqx " * 50)
    options = {"kind": "bpe", "vocab_size": 300}
    stream = TextData(train=train, validation=val, test=val, tokenizer=options).load()
    vocab = stream.tokenizer.tokenizer.get_vocab()
    assert "ab" in vocab and not any("zq" in token or "qx" in token for token in vocab)
    assert stream.decode(stream.tokens["val"].tolist()) == "zqx zqx zqx " * 50
    per_token = stream.units_per_token("train")
    assert per_token == len("abc abd abe " * 200) / len(stream.tokens["train"]) and per_token > 2
    assert stream.units_per_token("val") == pytest.approx(1.0)  # unseen text: byte by byte


def test_units_per_token_counts_characters_or_bytes(tmp_path) -> None:
    text = write(tmp_path / "input.txt", UNICODE * 30)
    chars = TextData(path=text).load()
    assert chars.unit == "character" and chars.units_per_token("train") == 1.0
    raw = TextData(path=text, tokenizer={"kind": "bytes"}).load()
    assert raw.unit == "byte" and raw.vocab_size == 256 and raw.units_per_token("val") == 1.0
    assert len(raw.tokens["train"]) > len(chars.tokens["train"])  # ü, — and 日 take several bytes


def test_separate_files_a_folder_and_carved_splits(tmp_path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    write(folder / "train.txt", VERSE)
    write(folder / "valid.txt", VERSE[:300])
    stream = TextData(path=str(folder), test_fraction=0.1).load()
    n = len(VERSE)
    assert stream.origins["val"].endswith("valid.txt") and len(stream.tokens["val"]) == 300
    assert (len(stream.tokens["train"]), len(stream.tokens["test"])) == (int(n * 0.9), n - int(n * 0.9))
    with pytest.raises(ConfigError) as exc:
        TextData(path=str(folder), test_fraction=0).load()
    assert "data.test_fraction=0 leaves no test split" in one_line(exc)


def test_jsonl_and_csv_rows_feed_it_by_field(tmp_path) -> None:
    docs = ["first document", "", "second one", "third"]
    write_jsonl(tmp_path / "train.jsonl", [{"body": d, "id": i} for i, d in enumerate(docs)] * 20)
    stream = TextData(path=str(tmp_path / "train.jsonl"), field="body", separator="\n").load()
    whole = "\n".join(d for d in docs if d)
    assert stream.decode(stream.tokens["train"][: len(whole)].tolist()) == whole
    with (tmp_path / "docs.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerows([["text"], *([d] for d in docs * 20)])
    assert TextData(train=str(tmp_path / "docs.csv")).load().vocab_size > 10
    with pytest.raises(DataError) as exc:
        TextData(path=str(tmp_path / "train.jsonl"), field="text").load()
    assert "no field 'text' (data.field); available: body, id" in one_line(exc)


def test_a_hugging_face_dataset_feeds_it(tmp_path, offline) -> None:
    """Local files in a Hugging Face layout (a folder of split files), read with the json builder, offline."""
    folder = tmp_path / "hub"
    folder.mkdir()
    for split, n in (("train", 40), ("validation", 8), ("test", 8)):
        rows = [{"text": f"{split} line {i}: train, validation, test.", "n": i} for i in range(n)]
        write_jsonl(folder / f"{split}.jsonl", rows)
    cache = str(tmp_path / "cache")
    stream = TextData(dataset="json", data_dir=str(folder), cache_dir=cache).load()
    assert stream.origins["val"] == "dataset 'json' split 'validation'"
    test = stream.decode(stream.tokens["test"].tolist())
    assert test.startswith("test line 0: train, validation, test.\n\ntest line 1:")
    carved = TextData(data_files=str(folder / "train.jsonl"), cache_dir=cache).load()
    assert carved.origins["test"].startswith("characters ")
    with pytest.raises(DataError) as exc:
        TextData(dataset="json", data_dir=str(folder), field="body", cache_dir=cache).load()
    assert "no field 'body' (data.field); available: text" in one_line(exc)


# -- the mistakes: one line each -------------------------------------------------------------------------------------


def test_an_empty_file(tmp_path) -> None:
    with pytest.raises(DataError) as exc:
        TextData(path=write(tmp_path / "empty.txt", "")).load()
    assert f"{tmp_path / 'empty.txt'} is empty (no text in it); give the train split text" in one_line(exc)
    with pytest.raises(DataError) as exc:
        TextData(path=write(tmp_path / "blank.txt", " \n\n ")).load()
    assert "is empty" in one_line(exc)


def test_a_file_that_is_not_utf8_names_the_byte_offset(tmp_path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(("café au lait, " * 40).encode("latin-1"))
    with pytest.raises(DataError) as exc:
        TextData(path=str(path)).load()
    message = one_line(exc)
    assert "latin1.txt is not utf-8 text: the byte 0xe9 at offset 3" in message and "data.encoding=" in message
    assert TextData(path=str(path), encoding="latin-1").load().decode([0]) == " "
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(b'{"text": "ok"}\n' * 1000 + '{"text": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(DataError) as exc:  # rows read in chunks: the offset still counts from the file's start
        TextData(path=str(rows)).load()
    assert f"the byte 0xe9 at offset {15 * 1000 + 13}" in one_line(exc)
    with pytest.raises(ConfigError) as exc:
        TextData(path=str(path), encoding="klingon")
    assert "data.encoding='klingon' is not an encoding" in one_line(exc)


def test_a_text_shorter_than_one_window(tmp_path) -> None:
    stream = TextData(path=write(tmp_path / "short.txt", "a short text, " * 10)).load()
    with pytest.raises(DataError) as exc:
        stream.dataset("val", 64, seed=0, epoch_offsets=False)
    message = one_line(exc)
    assert "the val split (characters 126 to 133 of" in message
    assert "holds 7 tokens (characters), fewer than one window of task.context=64 needs (65)" in message
    assert "lower task.context to at most 6, or raise data.val_fraction" in message
    with pytest.raises(DataError) as exc:
        stream.dataset("train", 200, seed=0, epoch_offsets=True)
    assert "holds 126 tokens" in one_line(exc) and "lower data.val_fraction / data.test_fraction" in one_line(exc)
    tiny = TextData(path=write(tmp_path / "tiny.txt", "abcabcabca")).load()  # 5 % of 10 characters: none
    with pytest.raises(DataError) as exc:
        tiny.dataset("val", 4, seed=0, epoch_offsets=False)
    assert (
        "holds 0 tokens (characters), fewer than one window of task.context=4 needs (5); raise data.val_fraction"
        in (one_line(exc))
    )


def test_validation_characters_the_vocabulary_lacks(tmp_path) -> None:
    train = write(tmp_path / "train.txt", "plain ascii text. " * 20)
    val = write(tmp_path / "val.txt", "naïve café, ¿qué? " * 3)
    with pytest.raises(DataError) as exc:
        TextData(train=train, validation=val).load()
    message = one_line(exc)
    assert "val.txt) has 9 character(s) that the training split lacks" in message
    assert "'é' ×6" in message and "'ï' ×3" in message and "'¿' ×3" in message
    assert "data.tokenizer.kind=bytes" in message
    stream = TextData(train=train, validation=val, tokenizer={"kind": "bytes"}).load()
    assert stream.decode(stream.tokens["val"].tolist()) == "naïve café, ¿qué? " * 3
    with pytest.raises(ConfigError) as exc:
        TextData(train=train, validation=train).load().encode("cat é")
    assert "the prompt has 1 character(s) the vocabulary lacks: 'é' ×1" in one_line(exc)


def test_a_missing_path(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for kwargs in ({"path": "missing.txt"}, {"train": "missing.txt"}, {"path": "missing.jsonl"}):
        with pytest.raises(DataError) as exc:
            TextData(**kwargs).load()
        assert f"data file {str(tmp_path / kwargs.popitem()[1])!r} does not exist" in one_line(exc)
    with pytest.raises(DataError) as exc:
        TextData().load()
    assert "data source text needs a text: set data.path=" in one_line(exc)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"tokenizer": {"kind": "letters"}}, "data.tokenizer.kind='letters' is not a tokenizer kind"),
        ({"tokenizer": {"kinds": "chars"}}, "data.tokenizer has no option 'kinds' (did you mean 'kind'?)"),
        ({"tokenizer": {"kind": "bpe", "vocab_size": 100}}, "data.tokenizer.vocab_size=100 must be an int >= 257"),
        ({"path": "a.txt", "dataset": "wikitext"}, "not both"),
        ({"format": "xml"}, "data.format='xml' is not an option"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "leaves no training text"),
        ({"field": ""}, "data.field must name"),
    ],
)
def test_bad_options_are_one_line_config_errors(kwargs, fragment) -> None:
    with pytest.raises(ConfigError) as exc:
        TextData(**kwargs)
    assert fragment in one_line(exc)


def test_the_lm_task_loads_text_and_refuses_other_sources_in_one_line(tmp_path) -> None:
    source, data = load_lm_data({"name": "text", "path": write(tmp_path / "input.txt", VERSE)})
    assert isinstance(source, TextData) and data is source.load()
    for name, hint in (("text_files", "data=text data.path="), ("hf_text", "data=text data.dataset=")):
        with pytest.raises(ConfigError) as exc:
            load_lm_data({"name": name})
        assert f"data={name} gives text pairs, not the one text task=lm models; read it with {hint}" in one_line(exc)
    with pytest.raises(ConfigError) as exc:
        load_lm_data({"name": "digits"})
    assert "data=digits does not give a language model's data" in one_line(exc)


def test_task_lm_trains_on_text_and_generates_from_its_checkpoint(tmp_path) -> None:
    """A tiny character model on a plain-text file: bits per character reported, generation decodes characters."""
    import attnkit.tasks.lm  # noqa: F401  (registers task=lm also where the installed entry points predate it)

    path = write(tmp_path / "verse.txt", VERSE)
    cfg = compose(
        "task=lm",
        "data=text",
        f"data.path={path}",
        "data.batch_size=8",
        "model.dim=16",
        "heads=2",
        "task.context=16",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
    )
    run_dir = tmp_path / "run"
    metrics = make_task(cfg).train(cfg, run_dir=run_dir, overrides=[])
    stream = TextData(path=path).load()
    bits = metrics["test/loss"] / 0.693147 / stream.units_per_token("test")
    assert metrics["test/bits_per_character"] == pytest.approx(bits, rel=1e-3)
    text = attnkit.load(run_dir).generate("Speak", max_new_tokens=8, temperature=0, words="free")
    assert len(text) == 8 and set(text) <= set(VERSE)
    real = attnkit.load(run_dir).generate("Speak", max_new_tokens=10, temperature=1.0, words="real")
    assert len(real) <= 10 and Lexicon.of([VERSE]).non_words(real, "Speak") == []
    with pytest.raises(ConfigError) as exc:
        attnkit.load(run_dir).generate("Speak, señor", max_new_tokens=2)
    assert "the prompt has 1 character(s) the vocabulary lacks: 'ñ' ×1" in one_line(exc)


def test_the_shakespeare_recipe_trains_by_steps_on_any_text(tmp_path) -> None:
    """experiment=shakespeare_char is a number of steps, not of epochs, validated every val_check_interval steps: on
    another text (shrunk here) it trains exactly its steps, past the end of an epoch, in bfloat16 autocast."""
    import attnkit.tasks.lm  # noqa: F401

    path = write(tmp_path / "verse.txt", VERSE)
    cfg = compose(
        "experiment=shakespeare_char",
        f"data.path={path}",
        "data.batch_size=4",
        "model.dim=16",
        "model.depth=1",
        "heads=2",
        "task.context=16",
        "task.warmup_steps=2",
        "trainer.max_steps=30",
        "trainer.val_check_interval=10",
        "trainer.enable_progress_bar=false",
    )
    assert cfg["trainer"]["precision"] == "bf16-mixed" and cfg["data"]["tokenizer"]["kind"] == "chars"
    run_dir = tmp_path / "run"
    metrics = make_task(cfg).train(cfg, run_dir=run_dir, overrides=[])
    assert metrics["steps"] == 30 and metrics["epochs"] > 1  # an epoch of this text is 22 steps
    header, *rows = (line.split(",") for line in (run_dir / "metrics.csv").read_text().splitlines())
    step, loss = header.index("step"), header.index("val/loss")
    assert [row[step] for row in rows if row[loss]] == ["9", "19", "29", "30"]  # and the final evaluation
    assert metrics["test/bits_per_character"] > 0


def test_a_test_takes_data_keys_on_top_of_the_checkpoints_data(tmp_path) -> None:
    """mode=test with data.test_fraction=... reads the checkpoint's text (its path, tokenizer) split anew; data=<an
    other source> would read that source instead."""
    import attnkit.tasks.lm  # noqa: F401

    path = write(tmp_path / "verse.txt", VERSE)
    base = ("task=lm", "data=text", "data.batch_size=8", "model.dim=16", "heads=2", "task.context=16")
    cfg = compose(*base, f"data.path={path}", "trainer.max_epochs=1", "trainer.enable_progress_bar=false")
    trained = make_task(cfg).train(cfg, run_dir=tmp_path / "run", overrides=[])
    overrides = ["data=text", "data.test_fraction=0.2"]
    test = compose("task=lm", *overrides)
    assert test["data"]["path"] is None  # the command line gives the key alone: the rest is the checkpoint's
    ckpt = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    make_task(test).test({**test, "mode": "test", "ckpt_path": ckpt}, run_dir=tmp_path / "t", overrides=overrides)
    tested = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert tested["windows"]["test"] > 2 * trained["windows"]["test"]
    recorded = (tmp_path / "t" / "config.yaml").read_text()
    assert "test_fraction: 0.2" in recorded and str(path) in recorded
