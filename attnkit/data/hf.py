"""Loading a Hugging Face dataset for any task's data source: the builder and the splits, failures in one line.

Image and text sources share this: a hub name or a local builder (`json`, `csv`, `parquet`, ...) chosen from the
files' extension, and `load_dataset` with every failure said in one line. Which loaded split plays val and test
is `attnkit.data.splits.find_split`; `datasets` is imported only when a dataset loads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from attnkit.data.messages import one_line
from attnkit.errors import DataError


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
