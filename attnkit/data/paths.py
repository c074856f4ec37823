"""User paths, resolved against the launch directory: Hydra >= 1.2 and the CLI do not chdir, so `.` is where the
command ran.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from attnkit.errors import ConfigError, DataError


def resolve(path: str) -> str:
    """An absolute path; a relative one is taken from the launch directory (the CLI does not chdir)."""
    return os.path.abspath(os.path.expanduser(str(path)))


def check_file(path: str) -> None:
    """A data file must exist: else a one-line DataError naming it (relative paths start at the launch directory)."""
    if not os.path.isfile(path):
        raise DataError(f"data file {path!r} does not exist; check the path (relative paths start at the launch dir)")


def resolve_files(files: Any) -> Any:
    """data_files with local relative paths made absolute; URLs and hub paths (`hf://`) are left alone."""
    if files is None:
        return None
    if isinstance(files, str):
        return files if "://" in files else resolve(files)
    if isinstance(files, Mapping):
        return {str(k): resolve_files(v) for k, v in files.items()}
    if isinstance(files, Sequence):
        return [resolve_files(f) for f in files]
    raise ConfigError(f"data.data_files={files!r} must be a path or glob, a list of them, or a mapping split -> path")
