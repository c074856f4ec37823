"""`data=hf_text`: text pairs from a Hugging Face dataset, from the hub or from local files."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import attnkit
from attnkit.errors import ConfigError, DataError
from attnkit.tasks.seq2seq.data.base import (
    OnEmpty,
    OnLong,
    TextPairData,
    TextPairs,
    carve,
    check_choice,
    check_fractions,
    check_int,
    one_line,
    resolve,
)
from attnkit.tasks.seq2seq.data.records import rows_to_pairs

# data_files extension -> Hugging Face builder, when `dataset` is not given
BUILDERS = ((".jsonl", "json"), (".json", "json"), (".csv", "csv"), (".tsv", "csv"), (".parquet", "parquet"))
SPLIT_ALIASES = {"val": ("validation", "valid", "val", "dev"), "test": ("test",)}


@attnkit.register("data", "hf_text")
class HFTextData(TextPairData):
    """Text pairs from a Hugging Face dataset (`dataset=wmt16 config_name=de-en src=de tgt=en`) or local files.

    `src` and `tgt` name the texts, as keys under `pair_field` (the translation layout
    `{"translation": {"de": ..., "en": ...}}` of wmt16, opus_books, iwslt2017) or as columns. Splits
    `train_split`, `val_split`, `test_split` are used when present; a missing one is carved from train
    (`val_fraction`, `test_fraction`, `split_seed`). `dataset` may also be a builder (`json`, `csv`,
    `parquet`) for `data_files`; with only `data_files` it follows their extension. Hub datasets need a network
    (or their cache with HF_HUB_OFFLINE=1); `cache_dir` overrides the Hugging Face cache.
    """

    def __init__(
        self,
        batch_size: int = 64,
        max_tokens: int | None = None,
        dataset: str | None = None,
        config_name: str | None = None,
        data_dir: str | None = None,
        data_files: str | list[str] | dict[str, str] | None = None,
        src: str = "source",
        tgt: str = "target",
        pair_field: str | None = "translation",
        train_split: str = "train",
        val_split: str | None = "validation",
        test_split: str | None = "test",
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        split_seed: int = 0,
        limit_train: int | None = None,
        on_empty: OnEmpty = "skip",
        on_long: OnLong = "truncate",
        cache_dir: str | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, max_tokens=max_tokens, on_long=on_long)
        check_choice("on_empty", on_empty, ("skip", "error"))
        check_fractions(val_fraction, test_fraction)
        if limit_train is not None:
            check_int("limit_train", limit_train, minimum=1)
        if data_files is not None and not isinstance(data_files, (str, list, tuple, Mapping)):
            raise ConfigError(
                f"data.data_files={data_files!r} must be a path, a list of paths, or a mapping split -> path"
            )
        self.dataset, self.config_name = dataset, config_name
        self.data_dir = None if data_dir is None else resolve(data_dir)
        self.data_files = _resolve_files(data_files)
        self.src, self.tgt, self.pair_field = str(src), str(tgt), pair_field
        self.train_split, self.val_split, self.test_split = train_split, val_split, test_split
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.limit_train, self.on_empty = limit_train, on_empty
        self.cache_dir = None if cache_dir is None else resolve(cache_dir)

    def _builder(self) -> str:
        if self.dataset:
            return self.dataset
        if self.data_files is not None:
            first = _first_file(self.data_files).lower().removesuffix(".gz")
            for ext, builder in BUILDERS:
                if first.endswith(ext):
                    return builder
            raise DataError(
                f"cannot tell the format of data.data_files={first!r}; set data.dataset=json, csv or parquet"
            )
        raise DataError(
            "data source hf_text needs a dataset: set data.dataset=<hub name, e.g. wmt16> "
            "(with data.config_name=de-en) or data.data_files=path/to/train.jsonl"
        )

    def _load(self) -> TextPairs:
        builder = self._builder()
        import datasets

        kwargs: dict[str, Any] = {}
        if self.data_dir is not None:
            if not os.path.isdir(self.data_dir):
                raise DataError(f"data.data_dir={self.data_dir} does not exist; fix data.data_dir=...")
            kwargs["data_dir"] = self.data_dir
        if self.data_files is not None:
            kwargs["data_files"] = self.data_files
            if builder == "csv" and _first_file(self.data_files).lower().endswith(".tsv"):
                kwargs["delimiter"] = "\t"
        if self.cache_dir is not None:
            kwargs["cache_dir"] = self.cache_dir
        try:
            loaded = datasets.load_dataset(builder, self.config_name, **kwargs)
        except Exception as exc:  # hub errors, offline mode, missing files, bad formats: one line
            raise DataError(
                f"cannot load Hugging Face dataset {builder!r}: {one_line(exc)}; check data.dataset, "
                f"data.config_name, data.data_files (hub datasets need a network or a cache)"
            ) from exc
        if not isinstance(loaded, Mapping):
            loaded = {self.train_split: loaded}
        if self.train_split not in loaded:
            raise DataError(
                f"dataset {builder!r} has no split {self.train_split!r}; splits: {', '.join(loaded)}; "
                f"set data.train_split=..."
            )
        chosen = {"train": self.train_split}
        for split, wanted in (("val", self.val_split), ("test", self.test_split)):
            found = _find_split(loaded, wanted, split)
            if found is not None:
                chosen[split] = found
        parts = {}
        for split, name in chosen.items():
            table = loaded[name]
            where = f"dataset {builder!r} split {name!r}"
            parts[split] = rows_to_pairs(
                _rows(table, self.pair_field, (self.src, self.tgt)),
                src=self.src,
                tgt=self.tgt,
                pair_field=self.pair_field,
                where=where,
                on_empty=self.on_empty,
            )
        split = carve(parts, self.val_fraction, self.test_fraction, self.split_seed)
        train = split["train"][: self.limit_train] if self.limit_train else split["train"]
        return TextPairs(train=train, val=split["val"], test=split["test"], src=self.src, tgt=self.tgt)


def _rows(table: Any, pair_field: str | None, keys: tuple[str, str]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(`row N`, row) with only the columns needed (a column read is much faster than row-by-row access)."""
    columns = list(table.column_names)
    if pair_field and pair_field in columns:
        for i, value in enumerate(table[pair_field]):
            yield f"row {i}", {pair_field: value}
        return
    present = [k for k in keys if k in columns]
    if len(present) < len(keys):  # let `pick` name the missing column and list the available ones
        first = table[0] if len(table) else {}
        yield "row 0", dict(first) or {c: None for c in columns}
        return
    for i, values in enumerate(zip(*(table[k] for k in keys), strict=True)):
        yield f"row {i}", dict(zip(keys, values, strict=True))


def _find_split(loaded: Mapping[str, Any], wanted: str | None, split: str) -> str | None:
    """The split to use for `val` or `test`; None to carve it from train (a usual name that is absent)."""
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


def _first_file(files: Any) -> str:
    while not isinstance(files, str):
        values = list(files.values()) if isinstance(files, Mapping) else list(files)
        if not values:
            return ""
        files = values[0]
    return files


def _resolve_files(files: Any) -> Any:
    """data_files with local relative paths made absolute; URLs and hub paths (`hf://`) are left alone."""
    if files is None:
        return None
    if isinstance(files, str):
        return files if "://" in files else resolve(files)
    if isinstance(files, Mapping):
        return {str(k): _resolve_files(v) for k, v in files.items()}
    return [_resolve_files(f) for f in files]
