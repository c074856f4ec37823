"""ListOps (tasks/classify/listops.py): the evaluator, the generator, the `listops` data source and its cache."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest
from checks import one_line

import attnkit
from attnkit.errors import ConfigError, DataError
from attnkit.registry import defaults
from attnkit.tasks.classify.labels import label_shares, majority_baseline
from attnkit.tasks.classify.listops import (
    ListOpsData,
    evaluate,
    generate,
    generate_splits,
    longest_length,
    sample_tree,
)
from attnkit.text.pairs import TextPairs

SMALL = {"min_length": 20, "max_length": 60, "max_depth": 6, "max_args": 5}
TOKEN = re.compile(r"\[(MAX|MIN|MED|SM)|\]|[0-9]")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Generated splits are cached under a temporary $ATTNKIT_CACHE, never in the home folder."""
    monkeypatch.setenv("ATTNKIT_CACHE", str(tmp_path / "cache"))


def reference_value(tokens: list[str]) -> int:
    """An independent recursive evaluator, with the LRA's int(np.median(...)) for MED."""

    def node(i: int) -> tuple[int, int]:
        if tokens[i].isdigit():
            return int(tokens[i]), i + 1
        op, i, args = tokens[i], i + 1, []
        while tokens[i] != "]":
            value, i = node(i)
            args.append(value)
        ops = {"[MAX": max, "[MIN": min, "[MED": lambda a: int(np.median(a)), "[SM": lambda a: int(np.sum(a) % 10)}
        return ops[op](args), i + 1

    value, end = node(0)
    assert end == len(tokens)
    return value


def shape(text: str) -> tuple[int, int]:
    """(deepest nesting of lists, most arguments of a list) of an expression."""
    depth = deepest = most = 0
    counts: list[int] = []
    for token in text.split(" "):
        if token.startswith("["):
            if counts:
                counts[-1] += 1
            depth, counts = depth + 1, [*counts, 0]
            deepest = max(deepest, depth)
        elif token == "]":
            most = max(most, counts.pop())
            depth -= 1
        else:
            counts[-1] += 1
    return deepest, most


# ---------------------------------------------------------------------------------------------- evaluator


@pytest.mark.parametrize(
    "expression, value",
    [
        ("[MAX 2 9 [MIN 4 7 ] 0 ]", 9),
        ("[MIN 4 7 3 ]", 3),
        ("[MAX 0 0 ]", 0),
        ("[MED 3 1 2 ]", 2),
        ("[MED 1 2 ]", 1),  # median 1.5, rounded down
        ("[MED 9 3 4 8 ]", 6),  # (4 + 8) / 2
        ("[MED 7 8 ]", 7),
        ("[SM 1 2 3 ]", 6),
        ("[SM 9 8 7 ]", 4),  # 24 mod 10
        ("[SM 5 5 ]", 0),
        ("[MAX 7 ]", 7),  # one argument
        ("[MED 4 ]", 4),
        ("3", 3),  # a bare digit
        ("[SM [MAX 1 2 ] [MIN 8 9 ] [MED 1 2 3 4 ] ]", 2),  # 2 + 8 + 2 = 12
        ("[MIN [MAX [SM 9 9 ] [MED 0 9 ] ] 9 [SM 1 [MIN 5 6 ] ] ]", 6),  # min(max(8, 4), 9, 6)
        ("[MED [SM 6 6 ] [MAX 1 1 ] 5 [MIN 9 7 ] ]", 3),  # med(2, 1, 5, 7) = (2 + 5) / 2
    ],
)
def test_evaluate_hand_written(expression, value):
    assert evaluate(expression) == value
    assert evaluate(expression.split()) == value
    assert reference_value(expression.split()) == value


@pytest.mark.parametrize(
    "expression, fragment",
    [
        ("", "no tokens"),
        ("[MAX 1 2", "left open"),
        ("[MAX 1 [MIN 2 ]", "left open"),
        ("[MAX 1 2 ] ]", "follows the end"),
        ("]", "closes no open list"),
        ("[MAX ]", "empty list"),
        ("[FOO 1 2 ]", "'[FOO' is not one of"),
        ("[MAX 12 3 ]", "'12' is not one of"),
        ("[max 1 2 ]", "'[max' is not one of"),
        ("1 2", "follows the end"),
        ("[MAX 1 ] 3", "follows the end"),
    ],
)
def test_evaluate_malformed_is_a_one_line_data_error(expression, fragment):
    with pytest.raises(DataError) as exc:
        evaluate(expression)
    assert fragment in one_line(exc) and "[MAX 2 9 [MIN 4 7 ] 0 ]" in str(exc.value)


# ---------------------------------------------------------------------------------------------- generator


def test_generated_expressions_are_well_formed_within_limits_and_valued_right():
    rows = generate(300, seed=3, **SMALL)
    assert len({text for text, _ in rows}) == 300
    for text, value in rows:
        tokens = text.split(" ")
        assert all(TOKEN.fullmatch(t) for t in tokens), text
        assert SMALL["min_length"] <= len(tokens) <= SMALL["max_length"]
        deepest, most = shape(text)
        assert deepest <= SMALL["max_depth"] - 1 and most <= SMALL["max_args"]
        assert value == evaluate(text) == reference_value(tokens)


def test_default_lengths_and_every_label():
    rows = generate(40, seed=0)
    assert all(500 <= len(text.split()) <= 1000 for text, _ in rows)
    assert all(evaluate(text) == value for text, value in rows)
    assert {value for _, value in generate(300, seed=1, **SMALL)} == set(range(10))


def test_trees_follow_the_lra_shape():
    """The root's arguments are lists a quarter of the time; lists take 2..max_args arguments uniformly."""
    import random

    rng = random.Random(0)
    kinds: list[str] = []  # the root's arguments: list or digit
    arg_counts: list[int] = []
    for _ in range(3000):
        tree = sample_tree(rng, max_depth=3, max_args=4, max_length=10_000)
        assert tree is not None
        counts: list[int] = []
        for token in tree[0]:
            if len(counts) == 1 and token != "]":
                kinds.append("list" if token.startswith("[") else "digit")
            if token.startswith("["):
                if counts:
                    counts[-1] += 1
                counts.append(0)
            elif token == "]":
                arg_counts.append(counts.pop())
            else:
                counts[-1] += 1
    assert abs(kinds.count("list") / len(kinds) - 0.25) < 0.02
    for n in (2, 3, 4):
        assert abs(arg_counts.count(n) / len(arg_counts) - 1 / 3) < 0.03


def test_too_long_trees_are_abandoned():
    import random

    rng = random.Random(0)
    outcomes = [sample_tree(rng, max_depth=10, max_args=10, max_length=50) for _ in range(500)]
    assert any(o is None for o in outcomes)
    assert all(len(o[0]) <= 50 for o in outcomes if o is not None)


def test_generation_is_deterministic_per_seed():
    assert generate(50, seed=7, **SMALL) == generate(50, seed=7, **SMALL)
    assert generate(50, seed=7, **SMALL) != generate(50, seed=8, **SMALL)
    assert generate(80, seed=7, **SMALL)[:50] == generate(50, seed=7, **SMALL)


def test_splits_have_their_own_seeds_and_share_no_expression():
    sizes = {"val": 100, "test": 100, "train": 400}
    splits = generate_splits(sizes, seed=0, **SMALL)
    assert {k: len(v) for k, v in splits.items()} == sizes
    texts = {name: {t for t, _ in rows} for name, rows in splits.items()}
    assert not texts["val"] & texts["test"] and not texts["train"] & (texts["val"] | texts["test"])
    assert splits == generate_splits(sizes, seed=0, **SMALL)
    assert splits["val"] != splits["test"][:100]
    bigger = generate_splits({**sizes, "train": 500}, seed=0, **SMALL)
    assert bigger["val"] == splits["val"] and bigger["test"] == splits["test"]
    assert bigger["train"][:400] == splits["train"]
    other = generate_splits(sizes, seed=1, **SMALL)
    assert not {t for t, _ in other["train"]} & texts["train"]


def test_longest_length():
    assert longest_length(2, 2) == 4  # [OP d d ]
    assert longest_length(3, 2) == 10  # [OP [OP d d ] [OP d d ] ]
    assert longest_length(3, 10) == 122
    assert longest_length(10, 10) > 10**9 and longest_length(10**6, 10) == 2**63


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"min_length": 800, "max_length": 600}, "data.min_length=800 > data.max_length=600"),
        ({"max_args": 1}, "data.max_args=1 must be an int >= 2"),
        ({"max_depth": 1}, "data.max_depth=1 must be an int >= 2"),
        ({"min_length": 3}, "data.min_length=3 must be an int >= 4"),
        ({"max_length": 2.5}, "data.max_length=2.5 must be an int"),
        ({"max_depth": 3, "max_args": 10}, "data.min_length=500 is out of reach"),
    ],
)
def test_bad_generator_options_are_one_line_config_errors(options, fragment):
    with pytest.raises(ConfigError) as exc:
        generate(5, **{"min_length": 500, "max_length": 1000, "max_depth": 10, "max_args": 10, **options})
    assert fragment in one_line(exc)


def test_unreachable_or_exhausted_length_range_gives_up():
    # max_args=2, max_depth=3 makes expressions of 4, 7 or 10 tokens only: 5..6 is never met
    with pytest.raises(DataError) as exc:
        generate(10, min_length=5, max_length=6, max_depth=3, max_args=2)
    assert "only 0 of 10000" in one_line(exc) and "data.min_length..data.max_length" in str(exc.value)
    # 4 operators x 100 digit pairs: 400 distinct expressions of 4 tokens, not 1000
    with pytest.raises(DataError, match="only 400 of"):
        generate(1000, min_length=4, max_length=4, max_depth=2, max_args=2)


# ---------------------------------------------------------------------------------------------- data source


def test_listops_is_registered_with_its_options():
    assert attnkit.get("data", "listops") is ListOpsData
    node = defaults("data", "listops")
    assert node["min_length"] == 500 and node["max_length"] >= 500
    assert {"train_size", "val_size", "test_size", "max_depth", "max_args", "seed", "batch_size"} <= set(node)


def test_listops_data_is_text_pairs_of_expressions_and_values(tmp_path):
    source = attnkit.build("data", "listops", train_size=60, val_size=20, test_size=30, seed=1, **SMALL)
    pairs = source.load()
    assert isinstance(pairs, TextPairs) and (pairs.src, pairs.tgt) == ("expression", "value")
    assert (len(pairs.train), len(pairs.val), len(pairs.test)) == (60, 20, 30)
    for text, label in pairs.train + pairs.val + pairs.test:
        assert label in [str(d) for d in range(10)] and evaluate(text) == int(label)
    assert source.info["origin"] == "generated" and source.info["cache"].startswith(str(tmp_path / "cache"))
    baseline = majority_baseline(pairs)
    assert source.majority_share == baseline.share
    assert baseline.share == sum(label == baseline.label for _, label in pairs.test) / 30


def test_listops_cache_is_reused_and_keyed_by_options(tmp_path):
    first = ListOpsData(train_size=40, val_size=10, test_size=10, **SMALL)
    pairs = first.load()
    again = ListOpsData(train_size=40, val_size=10, test_size=10, **SMALL)
    assert again.load() == pairs and again.info["origin"] == "cache"
    assert again.cache_file() == first.cache_file()
    other_seed = ListOpsData(train_size=40, val_size=10, test_size=10, seed=1, **SMALL)
    other_size = ListOpsData(train_size=41, val_size=10, test_size=10, **SMALL)
    assert len({first.cache_file(), other_seed.cache_file(), other_size.cache_file()}) == 3
    assert other_seed.load().train != pairs.train and other_size.load().train[:40] == pairs.train
    own = ListOpsData(train_size=40, val_size=10, test_size=10, cache_dir=str(tmp_path / "own"), **SMALL)
    own.load()
    assert own.cache_file().parent == tmp_path / "own" and own.cache_file().is_file()


def test_damaged_cache_is_generated_again():
    source = ListOpsData(train_size=30, val_size=5, test_size=5, **SMALL)
    pairs = source.load()
    with gzip.open(source.cache_file(), "wt") as f:
        f.write('{"train": [')
    again = ListOpsData(train_size=30, val_size=5, test_size=5, **SMALL)
    assert again.load() == pairs and again.info["origin"] == "generated"


def test_unwritable_cache_is_a_one_line_data_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    source = ListOpsData(train_size=5, val_size=5, test_size=5, cache_dir=str(blocker / "sub"), **SMALL)
    with pytest.raises(DataError) as exc:
        source.load()
    assert "data.cache_dir=<writable dir>" in one_line(exc)


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"train_size": 0}, "data.train_size=0 must be an int >= 1"),
        ({"val_size": 0}, "data.val_size=0 must be an int >= 1"),
        ({"test_size": -1}, "data.test_size=-1 must be an int >= 1"),
        ({"min_length": 700, "max_length": 600}, "data.min_length=700 > data.max_length=600"),
        ({"max_args": 1}, "data.max_args=1 must be an int >= 2"),
        ({"max_depth": 3}, "data.min_length=500 is out of reach"),
        ({"seed": -1}, "data.seed=-1 must be an int in [0, 4294967295]"),
        ({"batch_size": 0}, "data.batch_size=0 must be an int >= 1"),
    ],
)
def test_bad_listops_options_are_one_line_config_errors(options, fragment):
    with pytest.raises(ConfigError) as exc:
        attnkit.build("data", "listops", **options)
    assert fragment in one_line(exc)


# ---------------------------------------------------------------------------------------------- labels


def test_label_shares_and_majority_baseline():
    pairs = TextPairs(
        train=[("a", "1"), ("b", "2"), ("c", "2"), ("d", "0")],
        val=[("e", "1")],
        test=[("f", "2"), ("g", "1"), ("h", "1"), ("i", "0")],
        src="text",
        tgt="label",
    )
    assert label_shares(pairs.train) == {"2": 0.5, "0": 0.25, "1": 0.25}
    baseline = majority_baseline(pairs)
    assert (baseline.label, baseline.share) == ("2", 0.25)
    assert majority_baseline(pairs, "val").share == 0.0
