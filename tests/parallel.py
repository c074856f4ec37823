"""The suite on a pytest-xdist worker per core (a plugin of tests/conftest.py; pyproject.toml: `-n auto --dist
loadgroup`).

- `-n auto`: a worker per core (at most four) for the whole suite; none (one process, which starts at once) when
  files, tests or `-k`/`-m`/`--lf` choose a part of it. `-n 2` or `-n 0` chooses either way.
- `--dist loadgroup`: the tests that share a module-scoped fixture of this suite (a trained checkpoint, a batch of
  commands run side by side) run on one worker, so that the fixture is built once; the other tests go one at a time
  to whichever worker is free. Each worker writes its groups to a file that the scheduler reads, because xdist's own
  loadgroup (a suffix on the node id) does nothing under pytest 9.2 (pytest-dev/pytest-xdist#1386). An explicit
  `@pytest.mark.xdist_group(name)` still groups.

Measured on the 2-core machine, quiet (load 0.65) when it started, torch.compile's inductor cache warm: `python -m
pytest -q` took 4 min 54 s (1,795 passed, 20 skipped; 9 min 14 s of CPU), against 11 min 10 s in one process before.
A cold inductor cache (a fresh machine) adds about 110 s of CPU: tests/train/test_compile.py alone takes 156 s instead
of 45 s.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

SHARED_SCOPES = ("module", "class", "package")
MAX_WORKERS = 4  # each holds ~1.5 GB (a pytest process and a forking runner, tests/forked_cli.py); more buy little
GROUPS_DIR = "attnkit_groups_dir"  # workerinput key: where each worker writes {node id: group}
FOLDER = pytest.StashKey[str]()  # the same folder, on the controller


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    whole = config.args_source != pytest.Config.ArgsSource.ARGS or all(os.path.isdir(arg) for arg in config.args)
    chosen = any(getattr(config.option, name, None) for name in ("keyword", "markexpr", "lf", "stepwise"))
    return min(cores(), MAX_WORKERS) if whole and not chosen and cores() > 1 else 0


def grouping(config: pytest.Config) -> bool:
    return config.getoption("dist", "no") == "loadgroup" and bool(config.getoption("numprocesses", None))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """On the controller, for each worker: the folder of the groups' files."""
    config = node.config
    if FOLDER not in config.stash:
        folder = config.stash[FOLDER] = tempfile.mkdtemp(prefix="attnkit-groups-")
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    node.workerinput[GROUPS_DIR] = config.stash[FOLDER]


def groups(items: list[pytest.Item]) -> dict[str, str]:
    """{node id: group} for the tests joined by module-scoped fixtures of this suite (or an xdist_group mark); one
    group per connected set, named after a fixture of it."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    keys: dict[str, list[str]] = {}
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.items() if info is not None else ()
        shared = [f"{d[-1].baseid}::{name}" for name, d in defs if d and d[-1].scope in SHARED_SCOPES and d[-1].baseid]
        marks = item.iter_markers("xdist_group")
        shared += [f"xdist_group {m.args[0] if m.args else m.kwargs.get('name')}" for m in marks]
        keys[item.nodeid] = shared
        for key in shared[1:]:
            parent[root(key)] = root(shared[0])
    return {nodeid: f"group {root(shared[0])}" for nodeid, shared in keys.items() if shared}


@pytest.hookimpl(tryfirst=True)  # before xdist tells the controller that collection is done
def pytest_collection_finish(session: pytest.Session) -> None:
    """On a worker: its groups, for the scheduler."""
    folder = getattr(session.config, "workerinput", {}).get(GROUPS_DIR)
    if folder:
        path = Path(folder) / f"{session.config.workerinput['workerid']}.json"
        path.write_text(json.dumps(groups(session.items)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if not grouping(config):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FixtureGroupScheduling(LoadScopeScheduling):
        """Load scheduling one test at a time, except a group of tests, which goes to one worker as one unit."""

        def __init__(self, config: pytest.Config, log) -> None:
            super().__init__(config, log)
            self.groups: dict[str, str] = {}

        def schedule(self) -> None:
            if self.collection is None:  # the first call, once every worker has collected
                for path in sorted(Path(config.stash[FOLDER]).glob("*.json")):
                    self.groups.update(json.loads(path.read_text()))
            super().schedule()

        def _split_scope(self, nodeid: str) -> str:
            return self.groups.get(nodeid, nodeid)

    return FixtureGroupScheduling(config, log)
