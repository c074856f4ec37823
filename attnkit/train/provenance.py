"""Where a run came from, written to `<run_dir>/provenance.json`: the command line, the versions of attnkit and of
the libraries it trains with, the git commit when attnkit runs from a checkout, a digest of attnkit's own code, each
plugin's file and its hash, components that a plugin replaced, and digests of the data read.

`mode=test` compares the checkpoint's run with the code now and warns, in one line, when they differ.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import attnkit
from attnkit import plugins, registry
from attnkit.train.reports import write_json

PACKAGES = ("torch", "pytorch-lightning", "hydra-core", "omegaconf", "datasets", "tokenizers")
MAX_HASHED_FILES = 10_000  # a folder with more files is recorded by its file list, sizes and times


def record(run_dir: Path, data_cfg: dict[str, Any], data_digest: str | None) -> dict[str, Any]:
    """The provenance of a run started now, written to `run_dir/provenance.json` and returned."""
    info = {
        "command": shlex.join([Path(sys.executable).name, "-m", "attnkit", *sys.argv[1:]]),
        "cwd": os.getcwd(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {"attnkit": attnkit.__version__, "python": platform.python_version(), **versions()},
        "platform": platform.platform(),
        "git": git_state(Path(attnkit.__file__).resolve().parent.parent),
        "code_sha256": code_digest(),
        "plugins": [{"file": key, "sha256": file_digest(Path(key))} for key in sorted(plugins._loaded)],
        "replaced": [{"component": f"{k}/{n}", "was": a, "now": b} for (k, n), (a, b) in registry.replaced.items()],
        "data": {"name": data_cfg.get("name"), "content_sha256": data_digest, "files": data_files(data_cfg)},
    }
    write_json(run_dir / "provenance.json", info)
    return info


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_state(folder: Path) -> dict[str, Any] | None:
    """{"commit", "dirty"} when `folder` is inside a git checkout (attnkit run from its source), else None."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def code_digest() -> str:
    """sha256 over attnkit's Python files and configs (the package as imported, built-in tasks included)."""
    root = Path(attnkit.__file__).resolve().parent
    files = sorted(p for p in root.rglob("*") if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def file_digest(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_files(data_cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Size and sha256 of each local file the data config names (`path`, `train`, `data_files`, ...; a folder
    stands for the files in it)."""
    paths: list[Path] = []
    for value in _paths(data_cfg):
        path = Path(str(value)).expanduser()
        if path.is_file():
            paths.append(path)
        elif path.is_dir():
            paths.extend(sorted(p for p in path.rglob("*") if p.is_file()))
    if len(paths) > MAX_HASHED_FILES:
        digest = hashlib.sha256()
        for p in paths:
            st = p.stat()
            digest.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return [{"files": len(paths), "list_sha256": digest.hexdigest()}]
    return [{"path": str(p.resolve()), "bytes": p.stat().st_size, "sha256": file_digest(p)} for p in paths]


def _paths(node: Any) -> Iterable[Any]:
    keys = ("path", "train", "validation", "test", "data_files", "data_dir")
    if isinstance(node, dict):
        for key, value in node.items():
            if key in keys and value not in (None, ""):
                yield from (
                    value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
                )


def content_digest(data: Any) -> str | None:
    """sha256 over the loaded splits (`train`, `val`, `test`: lists of texts or labelled pairs, or tensor datasets);
    None when a split is of another kind (read lazily from files: their digests are in `data_files`)."""
    digest = hashlib.sha256()
    for split in ("train", "val", "test"):
        part = getattr(data, split, None)
        if isinstance(part, list):
            for item in part:
                digest.update(repr(item).encode())
        elif hasattr(part, "tensors"):
            for tensor in part.tensors:
                digest.update(tensor.contiguous().cpu().numpy().tobytes())
        else:
            return None
    return digest.hexdigest()


def compare(run_dir: Path) -> list[str]:
    """What differs between the run that wrote `run_dir` and now: attnkit's code, its plugins' files."""
    saved_file = run_dir / "provenance.json"
    if not saved_file.is_file():
        return []
    saved = json.loads(saved_file.read_text())
    changes = []
    if saved.get("code_sha256") and saved["code_sha256"] != code_digest():
        commit = (saved.get("git") or {}).get("commit")
        at = f"attnkit {saved['versions'].get('attnkit')}" + (f", commit {commit[:10]}" if commit else "")
        changes.append(f"attnkit's code differs from the one that trained it ({at})")
    for plugin in saved.get("plugins", []):
        now = file_digest(Path(plugin["file"]))
        if now != plugin["sha256"]:
            changes.append(f"plugin {plugin['file']} {'is gone' if now is None else 'changed'} since the run")
    return changes
