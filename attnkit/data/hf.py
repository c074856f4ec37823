"""Loading a Hugging Face dataset for any task's data source: where it is, its builder and its splits, failures in
one line.

Image and text sources (`data=hf`, `data=hf_text`) share `HFDataset`: the options that say where the data is (a hub
name or a local builder such as `json`, `csv`, `parquet`, chosen from the files' extension; `data_dir`,
`data_files`, `cache_dir`) and which split plays train, val and test; `load_dataset` with every failure said in one
line. Which loaded split plays val and test is `attnkit.data.splits.find_split`; `datasets` is imported only when a
dataset loads.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from attnkit.data.messages import one_line
from attnkit.data.paths import resolve, resolve_files
from attnkit.data.splits import find_split
from attnkit.errors import ConfigError, DataError


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
    if is_hub_name(builder) and not hub_reachable():
        go_offline()  # the cache may hold it; else one line at once, not a minute of retries
    import datasets  # lazy: seconds of start-up, needed only when a Hugging Face dataset loads

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
        if is_hub_name(builder) and offline():
            raise DataError(
                f"data.dataset={builder!r} is not in the local Hugging Face cache and the hub is not reachable "
                f"({hub_address()[0]}, or HF_HUB_OFFLINE=1); connect to the network once to download it, or give "
                f"local files: data.data_dir=... or data.data_files=..."
            ) from exc
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


# `datasets`' own builders, which read local files (no hub)
LOCAL_BUILDERS = ("json", "csv", "parquet", "text", "arrow", "imagefolder", "audiofolder", "pandas", "webdataset")


def is_hub_name(builder: str) -> bool:
    """Whether `builder` is a dataset on the hub (not a packaged builder, not a local folder or script)."""
    return builder not in LOCAL_BUILDERS and not os.path.exists(builder)


def hub_address() -> tuple[str, int]:
    """(host, port) of the hub: `HF_ENDPOINT`, by default huggingface.co:443."""
    url = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)


def offline() -> bool:
    """Whether Hugging Face's offline mode is on (`HF_HUB_OFFLINE` or `HF_DATASETS_OFFLINE`)."""
    return any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE") for v in OFFLINE_VARIABLES)


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def hub_reachable(timeout: float = 3.0) -> bool:
    """A TCP connection to the hub within `timeout` seconds (none when offline mode is already on)."""
    if offline():
        return False
    try:
        socket.create_connection(hub_address(), timeout=timeout).close()
        return True
    except OSError:
        return False


def go_offline() -> None:
    """Hugging Face's offline mode, for this process: the cache is read, the hub never tried (its retries take a
    minute to fail)."""
    for variable in OFFLINE_VARIABLES:
        os.environ[variable] = "1"
    for module, name in (("huggingface_hub.constants", "HF_HUB_OFFLINE"), ("datasets.config", "HF_HUB_OFFLINE")):
        if module in sys.modules:  # imported already: they read the variables when imported
            setattr(sys.modules[module], name, True)


@dataclass
class HFDataset:
    """Where a Hugging Face source reads (`dataset`: a hub name or a builder; `config_name`, `data_dir`,
    `data_files`, `cache_dir`; local paths from the launch directory) and which of its splits play train, val and
    test (a val or test split that is absent is carved from train by the source). `source` names the data source in
    messages (`hf_text`); `builders` maps file extensions to builders, for `data_files` without `dataset`."""

    source: str
    builders: Sequence[tuple[str, str]]
    dataset: str | None = None
    config_name: str | None = None
    data_dir: str | None = None
    data_files: Any = None
    train_split: str = "train"
    val_split: str | None = "validation"
    test_split: str | None = "test"
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.data_files is not None and not isinstance(self.data_files, (str, Sequence, Mapping)):
            raise ConfigError(
                f"data.data_files={self.data_files!r} must be a path or glob, a list of them, or a mapping split -> "
                f"path"
            )
        self.data_dir = None if self.data_dir is None else resolve(self.data_dir)
        self.data_files = resolve_files(self.data_files)
        self.cache_dir = None if self.cache_dir is None else resolve(self.cache_dir)

    def builder(
        self,
        example: str,
        *,
        formats: str = "json, csv or parquet",
        dir_builder: str | None = None,
        guess: Callable[[str], str | None] = lambda first: None,
    ) -> str:
        """`dataset`; else `dir_builder` for a `data_dir` alone; else the builder of `data_files` by extension (or
        `guess(first file)`). Refused in one line when none tells: naming the `formats` to choose from, or with
        `example` (the settings that would name a dataset) when nothing is given."""
        if self.dataset:
            return self.dataset
        if dir_builder is not None and self.data_dir is not None and self.data_files is None:
            return dir_builder
        if self.data_files is not None:
            first = first_file(self.data_files)
            builder = builder_for(self.data_files, self.builders) or guess(first)
            if builder is None:
                raise DataError(f"cannot tell the format of data.data_files={first!r}; set data.dataset={formats}")
            return builder
        raise DataError(f"data source {self.source} needs a dataset: set {example}")

    def load(self, builder: str, **kwargs: Any) -> tuple[Mapping[str, Any], dict[str, str]]:
        """The loaded dataset (split name -> table) and which of its splits play `train` and, when it has them,
        `val` and `test` (role -> split name)."""
        loaded = load_splits(
            builder,
            config_name=self.config_name,
            data_dir=self.data_dir,
            data_files=self.data_files,
            cache_dir=self.cache_dir,
            train_split=self.train_split,
            **kwargs,
        )
        chosen = {"train": self.train_split}
        for split, wanted in (("val", self.val_split), ("test", self.test_split)):
            found = find_split(loaded, wanted, split)
            if found is not None:
                chosen[split] = found
        return loaded, chosen
