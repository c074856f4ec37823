"""What every task's train / test / predict does with the run: user paths, the seed, the saved config, overrides."""

from __future__ import annotations

import errno
import os
import random
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from attnkit.errors import ConfigError, DataError


def user_path(value: Any, what: str, fix: str) -> Path:
    """A path the user gave, relative to the launch directory (the CLI does not chdir); it must exist."""
    if value in (None, ""):
        raise ConfigError(f"{what} is required; {fix}")
    path = Path(str(value)).expanduser().resolve()
    if not path.exists():
        raise DataError(f"{what} {str(path)!r} does not exist; {fix}")
    return path


def seed(value: int) -> None:
    """Seed Python's and torch's generators."""
    random.seed(value)
    torch.manual_seed(value)


def save_config(cfg: dict[str, Any], run_dir: Path) -> None:
    """The resolved config as `<run_dir>/config.yaml`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(cfg), run_dir / "config.yaml")


def overridden(overrides: list[str] | None, key: str) -> bool:
    """Whether the command line set `key` or something under it (`data`, `data.src`, `task.beam`)."""
    for text in overrides or []:
        name = text.lstrip("+~").split("=", 1)[0]
        if name == key or name.startswith(key + "."):
            return True
    return False


def value(cfg: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted key of a config (`data.batch_size`); None where a part is missing."""
    node: Any = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def with_values(cfg: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `cfg` with `values` (dotted key -> value) set; the nodes on their paths are copied, not changed."""
    out = dict(cfg)
    for key, new in values.items():
        node, *path, last = [out, *key.split(".")]
        for part in path:
            node[part] = dict(node.get(part) or {})
            node = node[part]
        node[last] = new
    return out


# What attnkit and Hydra write into a run folder: a folder holding any of them holds a run
RUN_FILES = (
    "checkpoints",
    "metrics.csv",
    "metrics.json",
    "config.yaml",
    "prediction.json",
    "info.json",
    "summary.md",
    "multirun.yaml",
    ".hydra",
)


def run_files(folder: Path) -> list[str]:
    """The files of a run that `folder` holds (none: it is empty, holds other files only, or does not exist)."""
    return [name for name in RUN_FILES if (folder / name).exists()] if folder.is_dir() else []


@contextmanager
def undone_on_failure(run_dir: Path, keep: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """Run the block; if it raises while `keep()` is false, remove what it added to `run_dir` (the folder too when
    the block made it), so that a run refused before its first training step leaves nothing behind. Files that
    were there before are left alone."""
    before = set(os.listdir(run_dir)) if run_dir.is_dir() else None
    try:
        yield
    except BaseException:
        if not keep() and run_dir.is_dir():
            for name in set(os.listdir(run_dir)) - (before or set()):
                path = run_dir / name
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
            if before is None and not any(run_dir.iterdir()):
                run_dir.rmdir()
        raise


# errno of the writes that fail for want of room or permission
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS}


def write_error(exc: BaseException, run_dir: Path | None) -> DataError | None:
    """A failed write (full disk, file-size limit, no permission, read-only disk) as one line naming the file and
    the OS's reason, with the fix; None for any other exception."""
    while exc is not None and not (isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS):
        exc = exc.__cause__ or exc.__context__  # a write error that another one (Lightning's teardown) followed
    if exc is None:
        return None
    where = exc.filename or run_dir or "the run folder"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "give hydra.run.dir=<a folder you can write>, or make it writable"
    else:
        fix = "free space on that disk (or raise the file-size limit, ulimit -f) or give hydra.run.dir=<another disk>"
    kept = ""
    if run_dir is not None and (run_dir / "checkpoints" / "last.ckpt").is_file():
        kept = f"; the checkpoints written before are whole: continue with resume={run_dir}"
    code = errno.errorcode.get(exc.errno, exc.errno)
    return DataError(f"cannot write {where}: {exc.strerror or exc} ({code}); {fix}{kept}")


# suffixes of the text files a predict input may name
TEXT_SUFFIXES = (".txt", ".text", ".tsv", ".csv", ".jsonl", ".json", ".md", ".src", ".tgt")


def stdin_lines(what: str, empty: str, *, keep_blank: bool = False) -> list[str]:
    """The lines of standard input, blank ones left out unless `keep_blank`; a hint naming `what` goes to stderr
    when it is a terminal, and `empty` is the one line that refuses an input with no text."""
    if sys.stdin.isatty():
        print(f"reading {what} from stdin, one per line; end with Ctrl-D", file=sys.stderr, flush=True)
    lines = [line.rstrip("\n") for line in sys.stdin]
    if not any(line.strip() for line in lines):
        raise ConfigError(empty)
    return lines if keep_blank else [line for line in lines if line.strip()]


def text_inputs(value: Any, fix: str) -> list[str] | None:
    """The texts `input=` gives mode=predict: the lines of the file it names (one input per line, blank lines
    skipped) when it names an existing file, else the text itself; None when unset (the caller reads stdin). A value
    that names a folder, or looks like a file name but names none, is refused rather than taken as the text."""
    if value is None:
        return None
    text = str(value)
    if not text.strip():
        raise ConfigError(f"input is empty; {fix}")
    path = Path(text).expanduser()
    try:
        is_dir, is_file = path.is_dir(), path.is_file()
        in_a_folder = "/" in text and path.parent.is_dir()  # data/missing, not and/or
    except (OSError, ValueError):  # too long for a file name, or a NUL in it: a text
        is_dir = is_file = in_a_folder = False
    if is_dir:
        raise ConfigError(f"input={text} is a folder; give a text file (one input per line) or the text itself")
    if is_file:
        try:
            lines = [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").splitlines()]
        except UnicodeDecodeError as exc:
            raise ConfigError(f"input {str(path.resolve())!r} is not UTF-8 text; convert it to UTF-8") from exc
        lines = [line for line in lines if line.strip()]
        if not lines:
            raise ConfigError(f"input {str(path.resolve())!r} is an empty file; give one input per line")
        return lines
    if not any(c.isspace() for c in text) and (in_a_folder or text.lower().endswith(TEXT_SUFFIXES)):
        raise ConfigError(
            f"input={text} looks like a file but {os.path.abspath(path)!r} does not exist; give an existing file (one "
            f"input per line), or the text itself"
        )
    return [text]
