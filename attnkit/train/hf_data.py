"""Loading a Hugging Face dataset for any task's data source: the builder, the splits, one-line errors.

Image and text sources share this: a hub name or a local builder (`json`, `csv`, `parquet`, ...) chosen from the
files' extension, `load_dataset` with every failure said in one line, and the choice of the train, validation and
test splits (a usual name that is absent means "carve it from train").
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from attnkit.errors import ConfigError, DataError

SPLIT_ALIASES = {"val": ("validation", "valid", "val", "dev"), "test": ("test",)}


def resolve(path: str) -> str:
    """An absolute path; a relative one is taken from the launch directory (the CLI does not chdir)."""
    return os.path.abspath(os.path.expanduser(str(path)))


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, at most 300 characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


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


def first_file(files: Any) -> str:
    """The first path of a data_files value (a string, a list, or a mapping split -> string or list)."""
    while not isinstance(files, str):
        values = list(files.values()) if isinstance(files, Mapping) else list(files)
        if not values:
            return ""
        files = values[0]
    return files


def builder_for(files: Any, builders: Sequence[tuple[str, str]]) -> str | None:
    """The builder that reads `files`, from the first file's extension (`.gz` ignored); None if none matches."""
    name = first_file(files).lower().removesuffix(".gz")
    return next((builder for ext, builder in builders if name.endswith(ext)), None)


def load_splits(
    builder: str,
    *,
    config_name: str | None = None,
    data_dir: str | None = None,
    data_files: Any = None,
    cache_dir: str | None = None,
    train_split: str = "train",
    **kwargs: Any,
) -> Mapping[str, Any]:
    """`datasets.load_dataset(builder, config_name, ...)` as split name -> table; it must have `train_split`.

    Hub errors, offline mode, missing files and bad formats become one DataError line.
    """
    import datasets

    if data_dir is not None:
        if not os.path.isdir(data_dir):
            raise DataError(f"data.data_dir={data_dir} does not exist; fix data.data_dir=...")
        kwargs["data_dir"] = data_dir
    if data_files is not None:
        kwargs["data_files"] = data_files
    if cache_dir is not None:
        kwargs["cache_dir"] = cache_dir
    try:
        loaded = datasets.load_dataset(builder, config_name, **kwargs)
    except Exception as exc:
        raise DataError(
            f"cannot load Hugging Face dataset {builder!r}: {one_line(exc)}; check data.dataset, data.config_name, "
            f"data.data_dir, data.data_files (hub datasets need a network or a cache)"
        ) from exc
    if not isinstance(loaded, Mapping):
        loaded = {train_split: loaded}
    if train_split not in loaded:
        raise DataError(
            f"dataset {builder!r} has no split {train_split!r}; splits: {', '.join(loaded)}; set data.train_split=..."
        )
    return loaded


def find_split(loaded: Mapping[str, Any], wanted: str | None, split: str) -> str | None:
    """The split to use for `val` or `test`; None to carve it from train (unset, or a usual name that is absent)."""
    if wanted is None:
        return None
    if wanted in loaded:
        return wanted
    aliases = SPLIT_ALIASES[split]
    if wanted in aliases:
        return next((a for a in aliases if a in loaded), None)
    key = "val_split" if split == "val" else "test_split"
    raise DataError(
        f"the dataset has no split {wanted!r}; splits: {', '.join(loaded)}; set data.{key}=<one of them>, "
        f"or null to carve it from train"
    )
