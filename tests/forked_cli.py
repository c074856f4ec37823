"""Many `python -m attnkit ...` commands for the cost of one start-up.

A runner process imports attnkit's command line and its heavy libraries once, then forks one child per command; the
child takes the command's working directory, environment, argv, stdout and stderr, runs `attnkit.cli.main()` as
`python -m attnkit` does and exits with its status. Each command still runs in its own process (nothing one command
registers or changes is seen by the next), without the few seconds of imports each.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

PRELUDE = r"""
import json, os, sys, traceback

import torch, pytorch_lightning, hydra, attnkit.cli  # noqa: F401  imported once, before forking


def start(job):  # fork a child that runs one command as `python -m attnkit` would; the child's pid
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
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
"""

# a batch: the jobs of a JSON file, `parallel` at a time; each exit status written to its file
RUNNER = (
    PRELUDE
    + r"""
jobs, parallel = json.load(open(sys.argv[1])), int(sys.argv[2])
running = {}
for job in jobs + [None] * parallel:
    while running and (job is None or len(running) >= parallel):
        pid, status = os.wait()
        with open(running.pop(pid)["rc"], "w") as f:
            f.write(str(os.waitstatus_to_exitcode(status)))
    if job is not None:
        running[start(job)] = job
"""
)

# one job per line on stdin, one at a time; each answered with a line `rc=<exit status>`
SERVER = (
    PRELUDE
    + r"""
replies = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # nothing but the replies on the pipe
for line in sys.stdin:
    _, status = os.waitpid(start(json.loads(line)), 0)
    replies.write(f"rc={os.waitstatus_to_exitcode(status)}\n")
    replies.flush()
"""
)


def _job(args: Sequence[str], cwd: Path, env: Mapping[str, str], folder: Path, name: str) -> dict:
    files = {key: str(folder / f"{name}.{key}") for key in ("out", "err", "rc")}
    return {"args": list(args), "cwd": str(cwd), "env": dict(env), **files}


def _finished(job: dict, rc: int) -> subprocess.CompletedProcess[str]:
    out, err = Path(job["out"]).read_text(), Path(job["err"]).read_text()
    return subprocess.CompletedProcess(["python", "-m", "attnkit", *job["args"]], rc, out, err)


class Server:
    """A runner kept for the whole test session: `run` forks one command from it and waits for it (one at a time;
    threads queue). Started with the environment of its first command."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.folder = Path(tempfile.mkdtemp(prefix="attnkit-forked-"))
        self.count = 0

    def run(self, args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self.proc = subprocess.Popen(
                    [sys.executable, "-c", SERVER],
                    cwd=self.folder,
                    env=dict(env),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                atexit.register(self.close)
            self.count += 1
            job = _job(args, cwd, env, self.folder, str(self.count))
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
            reply = self.proc.stdout.readline()
            if not reply.startswith("rc="):
                raise RuntimeError(f"the forking runner stopped (exit {self.proc.wait()})")
            return _finished(job, int(reply[3:]))

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


SERVER_FOR_SESSION = Server()


def run(args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m attnkit <args>` in `cwd` with `env`, forked from the session's runner."""
    return SERVER_FOR_SESSION.run(args, cwd, env)


def run_many(
    commands: Mapping[str, tuple[Sequence[str], Path, Mapping[str, str]]], parallel: int = 2, timeout: float = 900
) -> dict[str, subprocess.CompletedProcess[str]]:
    """{name: (arguments after `python -m attnkit`, working directory, environment)} -> {name: the finished process},
    `parallel` at a time. The runner starts with the environment of the first command."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        jobs = [_job(args, cwd, env, folder, str(i)) for i, (args, cwd, env) in enumerate(commands.values())]
        (folder / "jobs.json").write_text(json.dumps(jobs))
        subprocess.run(
            [sys.executable, "-c", RUNNER, str(folder / "jobs.json"), str(parallel)],
            cwd=folder,
            env=jobs[0]["env"] if jobs else dict(os.environ),
            check=True,
            timeout=timeout,
        )
        done = zip(commands, jobs, strict=True)
        return {name: _finished(job, int(Path(job["rc"]).read_text())) for name, job in done}
