"""tests/parallel.py: under two xdist workers, the tests that share a module-scoped fixture run on one worker, which
builds the fixture once (a small suite of its own, in a subprocess; xdist's own loadgroup silently stopped grouping
under pytest 9.2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SUITE = """
import json, os

import pytest


def record(kind):
    with open({log!r}, "a") as f:
        f.write(json.dumps([kind, os.environ["PYTEST_XDIST_WORKER"]]) + "\\n")


@pytest.fixture(scope="module")
def built():
    record("fixture")


@pytest.mark.parametrize("i", range(8))
def test_shared(built, i):
    record("shared")


@pytest.mark.parametrize("i", range(8))
def test_alone(i):
    record("alone")
"""


def test_a_shared_fixture_is_built_once_on_one_worker(pytester: pytest.Pytester, monkeypatch) -> None:
    log = pytester.path / "log.jsonl"
    pytester.makepyfile(test_suite=SUITE.format(log=str(log)))
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # where `-p parallel` is found
    quick = ["-p", "no:hypothesispytest", "-p", "no:hydra_pytest", "-p", "no:cacheprovider"]  # starts in 1 s, not 3
    result = pytester.runpytest_subprocess("-p", "parallel", "-n", "2", "--dist", "loadgroup", *quick)
    result.assert_outcomes(passed=16)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    workers = {kind: [w for k, w in rows if k == kind] for kind in ("fixture", "shared", "alone")}
    assert len(workers["fixture"]) == 1 and set(workers["shared"]) == set(workers["fixture"]), rows
    assert len(workers["shared"]) == len(workers["alone"]) == 8, rows
