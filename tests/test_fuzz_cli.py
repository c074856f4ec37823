"""Command-line fuzzing: keys drawn from the composed config of every task, given values of wrong types, signs,
zeros, huge numbers and strings; each case runs `python -m attnkit` (forked: tests/forked_cli.py) in an empty working
directory and must exit 0 with finite metrics, or exit 2 with exactly one `error:` line, no traceback and nothing left
behind.

The suite runs a fixed, derandomized set of cases; for many more (with counts of what trained and what was refused):

    ATTNKIT_FUZZ_EXAMPLES=400 python -m pytest tests/test_fuzz_cli.py -q -n 0 --hypothesis-show-statistics
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from checks import compose
from forked_cli import Started
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("ATTNKIT_FUZZ_EXAMPLES", "12"))
CASE_SECONDS = 240  # a case that trains: a few seconds; a valid but huge value may take longer (counted, not failed)

# Tiny runs of every task (most cases are refused before any of this matters; the ones that train stay cheap)
COMMON = (
    "model.depth=1",
    "heads=2",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "trainer.enable_progress_bar=false",
)
TINY = {
    "vit": ("model.dim=16", "task.attention_maps=0"),
    "classify": (
        "model.dim=16",
        "data.train_size=64",
        "data.val_size=16",
        "data.test_size=16",
        "data.min_length=8",
        "data.max_length=16",
        "data.max_depth=2",
    ),
    "translation": (
        "model.dim=16",
        "data.train_size=120",
        "data.val_size=8",
        "data.test_size=8",
        "data.max_number=99",
        "task.beam=1",
        "task.samples=0",
        "task.tokenizer.vocab_size=100",
    ),
    "summarization": (
        "model.dim=16",
        "data.train_size=120",
        "data.val_size=8",
        "data.test_size=8",
        "data.max_source_len=32",
        "task.beam=1",
        "task.samples=0",
        "task.tokenizer.vocab_size=200",
    ),
}
# Keys not drawn: what picks a mode, a file or the hardware (their mistakes have rows of docs/mistakes.md), Hydra's
SKIP = ("hydra", "mode", "plugins", "resume", "ckpt_path", "init_from", "input", "compile", "logger")
SKIP_TRAINER = ("trainer.accelerator", "trainer.strategy", "trainer.devices", "trainer.num_nodes")
VALUES = st.sampled_from(
    ["abc", "''", "true", "false", "null", "0", "-1", "-0.5", "0.0", "1e30", "-1e30", "1000000000000", "nan", "inf"]
    + ["[1,2]", "{a:1}", "1.5", "3", "x/y.txt"]
)


def leaves(node, prefix: str = ""):
    """Dotted keys of the plain leaves of a resolved config (lists count as leaves)."""
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from leaves(value, path + ".")
        else:
            yield path


def task_keys(task: str) -> list[str]:
    cfg = compose(f"task={task}")
    keys = [k for k in leaves(cfg) if k.split(".")[0] not in SKIP and not k.startswith(SKIP_TRAINER)]
    return sorted(k for k in keys if k.rsplit(".", 1)[-1] != "name")


KEYS = {task: task_keys(task) for task in TINY}


@st.composite
def case(draw) -> tuple[str, list[str]]:
    """(task, command line): one or two keys of the task's config given drawn values, on top of a tiny run."""
    task = draw(st.sampled_from(sorted(TINY)))
    chosen = draw(st.lists(st.sampled_from(KEYS[task]), min_size=1, max_size=2, unique=True))
    fuzzed = [f"{key}={draw(VALUES)}" for key in chosen]
    base = [a for a in (*COMMON, *TINY[task]) if a.lstrip("+").split("=", 1)[0] not in chosen]
    return task, [f"task={task}", *base, *fuzzed]


def finite_metrics(cwd: Path) -> list[str]:
    """The scores of every metrics.json the run wrote that are not finite numbers."""
    bad = []
    for path in cwd.rglob("metrics.json"):
        for key, value in json.loads(path.read_text()).items():
            if isinstance(value, float) and not math.isfinite(value):
                bad.append(f"{path.name}: {key}={value}")
    return bad


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="ATTNKIT_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(drawn=case())
def test_a_command_line_trains_or_is_refused_in_one_line(drawn, tmp_path_factory) -> None:
    task, args = drawn
    cwd = tmp_path_factory.mktemp("case")
    cache = cwd.with_name(cwd.name + "-cache")
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "ATTNKIT_CACHE": str(cache)}
    env.pop("HYDRA_FULL_ERROR", None)
    with Started(args, cwd, env) as proc:
        try:
            done = proc.wait(timeout=CASE_SECONDS)
        except TimeoutError:
            event("ran past the time limit (a valid but huge value)")
            return
    out, err = done.stdout, done.stderr
    shown = f"python -m attnkit {' '.join(args)}\nexit {done.returncode}\n{out[-1500:]}\n{err[-2500:]}"
    assert "Traceback" not in out + err, shown
    if done.returncode == 0:
        event(f"trained ({task})")
        assert not finite_metrics(cwd), (finite_metrics(cwd), shown)
        return
    event(f"refused ({task})")
    lines = [line for line in err.splitlines() if line.strip()]
    assert done.returncode == 2, shown
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    assert not any(cwd.iterdir()), (sorted(str(p) for p in cwd.rglob("*")), shown)


@pytest.mark.parametrize("task", sorted(TINY))
def test_every_task_offers_keys_to_draw(task) -> None:
    assert len(KEYS[task]) > 20 and "task.lr" in KEYS[task] and "trainer.max_epochs" in KEYS[task]
