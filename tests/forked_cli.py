"""Many `python -m attnkit ...` commands for the cost of one start-up.

A runner process imports attnkit's command line and its heavy libraries once, then forks one child per command; the
child takes the command's working directory, environment, argv, stdout and stderr, runs `attnkit.cli.main()` as
`python -m attnkit` does and exits with its status. Each command still runs in its own process (nothing one command
registers or changes is seen by the next), without the few seconds of imports each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

RUNNER = r"""
import json, os, sys, traceback

jobs, parallel = json.load(open(sys.argv[1])), int(sys.argv[2])
import torch, pytorch_lightning, hydra, attnkit.cli  # noqa: F401  imported once, before forking

running = {}


def reap():
    pid, status = os.wait()
    with open(running.pop(pid)["rc"], "w") as f:
        f.write(str(os.waitstatus_to_exitcode(status)))


for job in jobs:
    while len(running) >= parallel:
        reap()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(job["cwd"])
            os.environ.clear()
            os.environ.update(job["env"])
            for fd, path in ((1, job["out"]), (2, job["err"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            sys.argv = ["attnkit", *job["args"]]
            sys.path[0] = job["cwd"]  # python -m puts the working directory first
            attnkit.cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
            if not isinstance(exc.code, (int, type(None))):
                print(exc.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    running[pid] = job
while running:
    reap()
"""


def run_many(
    commands: Mapping[str, tuple[Sequence[str], Path, Mapping[str, str]]], parallel: int = 2, timeout: float = 900
) -> dict[str, subprocess.CompletedProcess[str]]:
    """{name: (arguments after `python -m attnkit`, working directory, environment)} -> {name: the finished process}.

    The runner starts with the environment of the first command (libraries that read it at import see it)."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        jobs = []
        for i, (args, cwd, env) in enumerate(commands.values()):
            files = {key: str(folder / f"{i}.{key}") for key in ("out", "err", "rc")}
            jobs.append({"args": list(args), "cwd": str(cwd), "env": dict(env), **files})
        (folder / "jobs.json").write_text(json.dumps(jobs))
        first_env = jobs[0]["env"] if jobs else dict(os.environ)
        subprocess.run(
            [sys.executable, "-c", RUNNER, str(folder / "jobs.json"), str(parallel)],
            cwd=folder,
            env=first_env,
            check=True,
            timeout=timeout,
        )
        results = {}
        for name, job in zip(commands, jobs, strict=True):
            rc = Path(job["rc"]).read_text()
            out, err = Path(job["out"]).read_text(), Path(job["err"]).read_text()
            results[name] = subprocess.CompletedProcess(["python", "-m", "attnkit", *job["args"]], int(rc), out, err)
        return results
