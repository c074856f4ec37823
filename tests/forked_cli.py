"""Many `python -m attnkit ...` commands for the cost of one start-up.

A runner process, one per test session (per pytest-xdist worker), imports attnkit's command line and its heavy
libraries once, then forks one child per command; the child takes the command's working directory, environment
(`$PYTHONPATH` and `$OMP_NUM_THREADS` too), argv, stdin, stdout and stderr, and the signal handlers of a process
started from a terminal, runs `attnkit.cli.main()` as `python -m attnkit` does and exits with its status. Each command
still runs in its own process (nothing one command registers or changes is seen by the next), without the seconds of
imports each.

`run` runs one command, `run_many` several side by side, and `Started` one that a test watches and signals (a run
killed between its checkpoints, Ctrl-C).
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

PRELUDE = r"""
import json, os, signal, sys, traceback

import torch, pytorch_lightning, hydra, attnkit.cli  # noqa: F401  imported once, before forking

# what most commands import or build next, done once here too (each saves a command about a second): the libraries of
# the built-in tasks' data, metrics and plots; Hydra's plugin scan; the parsers of overrides and interpolations, whose
# tables fill on first use
import fsspec, nltk, num2words, pandas, PIL.Image, rich, rouge_score.rouge_scorer  # noqa: E401, F401
import sacrebleu, scipy, sklearn.datasets, tokenizers  # noqa: E401, F401
import matplotlib

matplotlib.use("Agg")  # as attnkit's plots choose it
import matplotlib.pyplot  # noqa: F401
from hydra.core.plugins import Plugins
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

Plugins.instance()
OverridesParser.create().parse_overrides(["a=1", "b.c=[x,y]", "d=interval(0.1,1)", "+e.f=g", "~h", "i={j:k}", "l=m,n"])
assert OmegaConf.create({"a": 1, "b": "${a}", "c": "${oc.env:NO_SUCH_VARIABLE,x}"}).c == "x"


def start(job):  # fork a child that runs one command as `python -m attnkit` would; the child's pid
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.chdir(job["cwd"])
        before = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        os.environ.clear()
        os.environ.update(job["env"])
        os.dup2(os.open(job.get("in") or os.devnull, os.O_RDONLY), 0)
        sys.stdin = open(0, closefd=False)
        for fd, path in ((1, job["out"]), (2, job["err"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        sys.argv = ["attnkit", *job["args"]]
        # python -m puts the working directory first, then $PYTHONPATH
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = [job["cwd"], *paths, *(p for p in sys.path[1:] if p not in before and p not in paths)]
        if os.environ.get("OMP_NUM_THREADS", "").isdigit():
            torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as started from a terminal
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
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

# one batch of jobs per line on stdin: {"jobs": [...], "parallel": n}; each job answered with `pid <i> <pid>` when it
# starts and `rc <i> <exit status>` when it ends, the batch with `done`
SERVER = (
    PRELUDE
    + r"""
replies = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # nothing but the replies on the pipe


def reply(*words):
    replies.write(" ".join(map(str, words)) + "\n")
    replies.flush()


for line in sys.stdin:
    batch = json.loads(line)
    jobs, parallel, running = batch["jobs"], batch["parallel"], {}
    for index, job in [*enumerate(jobs), *[(None, None)] * parallel]:
        while running and (job is None or len(running) >= parallel):
            pid, status = os.wait()
            reply("rc", running.pop(pid), os.waitstatus_to_exitcode(status))
        if job is not None:
            pid = start(job)
            running[pid] = index
            reply("pid", index, pid)
    reply("done")
"""
)

Command = tuple[Sequence[str], Path, Mapping[str, str]]  # (arguments after `python -m attnkit`, cwd, environment)


def _job(args: Sequence[str], cwd: Path, env: Mapping[str, str], folder: Path, name: str, stdin: str | None) -> dict:
    files = {key: str(folder / f"{name}.{key}") for key in ("out", "err")}
    if stdin is not None:
        Path(folder / f"{name}.in").write_text(stdin)
        files["in"] = str(folder / f"{name}.in")
    return {"args": list(args), "cwd": str(cwd), "env": dict(env), **files}


def _finished(job: dict, rc: int) -> subprocess.CompletedProcess[str]:
    out, err = Path(job["out"]).read_text(), Path(job["err"]).read_text()
    return subprocess.CompletedProcess(["python", "-m", "attnkit", *job["args"]], rc, out, err)


class Server:
    """A runner kept for the whole test session (one per pytest-xdist worker), started with the environment of its
    first command: one batch of commands at a time (threads queue), each forked from it."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.replies: queue.Queue[list[str] | None] = queue.Queue()
        self.folder = Path(tempfile.mkdtemp(prefix="attnkit-forked-"))
        self.count = 0

    def submit(self, jobs: list[tuple[Command, str | None]], parallel: int) -> list[dict]:
        """Send a batch (the lock held: the caller reads its replies and releases the lock after `done`)."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVER],
                cwd=self.folder,
                env=dict(jobs[0][0][2]),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()
            atexit.register(self.close)
        batch = []
        for (args, cwd, env), stdin in jobs:
            self.count += 1
            batch.append(_job(args, cwd, env, self.folder, str(self.count), stdin))
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"jobs": batch, "parallel": parallel}) + "\n")
        self.proc.stdin.flush()
        return batch

    def _read(self, stream) -> None:
        for line in stream:
            self.replies.put(line.split())
        self.replies.put(None)

    def reply(self, timeout: float | None = None) -> list[str]:
        try:
            words = self.replies.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no answer from the forking runner in {timeout} s") from None
        if words is None:
            assert self.proc is not None
            raise RuntimeError(f"the forking runner stopped (exit {self.proc.wait()})")
        return words

    def run_many(self, commands: list[Command], parallel: int, timeout: float) -> list[subprocess.CompletedProcess]:
        with self.lock:
            jobs = self.submit([(command, None) for command in commands], parallel)
            codes: dict[int, int] = {}
            while (words := self.reply(timeout))[0] != "done":
                if words[0] == "rc":
                    codes[int(words[1])] = int(words[2])
            return [_finished(job, codes[i]) for i, job in enumerate(jobs)]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


SERVER_FOR_SESSION = Server()


class Started:
    """A command forked from the session's runner and still running, used like a `subprocess.Popen`: `pid`, `poll`,
    `send_signal`, `wait`. Other commands of this worker wait until it ends; leaving the `with` block kills it."""

    def __init__(self, args: Sequence[str], cwd: Path, env: Mapping[str, str], stdin: str | None = None) -> None:
        self.server = SERVER_FOR_SESSION
        self.server.lock.acquire()
        try:
            (self.job,) = self.server.submit([((args, cwd, env), stdin)], parallel=1)
            self.pid = int(self.server.reply(timeout=60)[2])
        except BaseException:
            self.server.lock.release()
            raise
        self.returncode: int | None = None
        self.result: subprocess.CompletedProcess[str] | None = None

    def _take(self, timeout: float | None) -> None:
        words = self.server.reply(timeout)
        assert words[0] == "rc", words
        self.returncode = int(words[2])
        assert self.server.reply(timeout=60) == ["done"]
        self.result = _finished(self.job, self.returncode)
        self.server.lock.release()

    def poll(self) -> int | None:
        if self.returncode is None and not self.server.replies.empty():
            self._take(timeout=60)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def wait(self, timeout: float | None = 900) -> subprocess.CompletedProcess[str]:
        if self.returncode is None:
            self._take(timeout)
        assert self.result is not None
        return self.result

    def __enter__(self) -> Started:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.wait()


def run(
    args: Sequence[str], cwd: Path, env: Mapping[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m attnkit <args>` in `cwd` with `env` (and `stdin`, else none), forked from the session's runner."""
    with Started(args, cwd, env, stdin) as proc:
        return proc.wait()


def run_many(
    commands: Mapping[str, Command], parallel: int = 2, timeout: float = 900
) -> dict[str, subprocess.CompletedProcess[str]]:
    """{name: (arguments after `python -m attnkit`, working directory, environment)} -> {name: the finished process},
    `parallel` at a time, forked from the session's runner."""
    done = SERVER_FOR_SESSION.run_many(list(commands.values()), parallel, timeout) if commands else []
    return dict(zip(commands, done, strict=True))
