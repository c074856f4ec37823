"""`data=text_files`: text pairs from local JSON lines, CSV or TSV files, one file per split."""

from __future__ import annotations

import os
from typing import Literal

import attnkit
from attnkit.data.checks import check_choice, check_fractions, check_int
from attnkit.data.paths import resolve
from attnkit.data.splits import SPLIT_ALIASES
from attnkit.errors import ConfigError, DataError
from attnkit.ranges import PositiveInt, Rate, Seed
from attnkit.text.pairs import OnEmpty, OnLong, TextPairData, TextPairs, carve
from attnkit.text.plain import check_encoding
from attnkit.text.records import EXTENSIONS, detect_format, read_rows, rows_to_pairs

# split -> file stems looked for in `path` (the first found wins)
SPLIT_STEMS = {"train": ("train",), **SPLIT_ALIASES}


@attnkit.register("data", "text_files")
class TextFilesData(TextPairData):
    """Text pairs from local files: JSON lines, CSV or TSV (with a header), one file per split.

    Give `train` (and optionally `validation`, `test`) as file paths, or `path`, a folder holding
    `train.jsonl` / `validation.jsonl` / `test.jsonl` (or .csv, .tsv; `valid`, `val`, `dev` also name the
    validation split). `src` and `tgt` name the two texts: fields of a row, or keys under `pair_field` in the
    Hugging Face translation layout `{"translation": {"de": ..., "en": ...}}`; files are decoded as `encoding`. A
    missing validation or test file is carved from train (`val_fraction`, `test_fraction`, seeded by `split_seed`);
    `limit_train` keeps the first pairs of train. Empty pairs are skipped and counted, or refused (`on_empty=error`).
    """

    def __init__(
        self,
        batch_size: PositiveInt = 64,
        max_tokens: PositiveInt | None = None,
        path: str | None = None,
        train: str | None = None,
        validation: str | None = None,
        test: str | None = None,
        format: Literal["auto", "jsonl", "csv", "tsv"] = "auto",
        encoding: str = "utf-8",
        src: str = "source",
        tgt: str = "target",
        pair_field: str | None = "translation",
        val_fraction: Rate = 0.05,
        test_fraction: Rate = 0.05,
        split_seed: Seed = 0,
        limit_train: PositiveInt | None = None,
        on_empty: OnEmpty = "skip",
        on_long: OnLong = "truncate",
        max_source_len: PositiveInt | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, max_tokens=max_tokens, on_long=on_long, max_source_len=max_source_len)
        check_choice("format", format, ("auto", "jsonl", "csv", "tsv"))
        check_encoding(encoding)
        check_choice("on_empty", on_empty, ("skip", "error"))
        check_fractions(val_fraction, test_fraction, items="pairs")
        if limit_train is not None:
            check_int("limit_train", limit_train, minimum=1)
        if not src or not tgt:
            raise ConfigError("data.src and data.tgt must name the source and target fields (or languages)")
        self.path = None if path is None else resolve(path)
        self.files = {
            split: None if value is None else resolve(value)
            for split, value in (("train", train), ("val", validation), ("test", test))
        }
        self.format, self.encoding = format, encoding
        self.src, self.tgt, self.pair_field = str(src), str(tgt), pair_field
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.limit_train, self.on_empty = limit_train, on_empty

    def split_files(self) -> dict[str, str]:
        """split -> file: the files given, else those found in `path`."""
        given = {split: file for split, file in self.files.items() if file is not None}
        if self.path is None:
            if "train" not in given:
                raise DataError(
                    "data source text_files needs files: set data.train=path/to/train.jsonl "
                    "(and data.validation=..., data.test=...) or data.path=<folder with train.jsonl>"
                )
            return given
        if not os.path.isdir(self.path):
            raise DataError(f"data.path={self.path!r} is not a folder; give the folder that holds train.jsonl")
        found = dict(given)
        for split, stems in SPLIT_STEMS.items():
            if split in found:
                continue
            for stem in stems:
                matches = [f"{stem}{ext}" for ext in EXTENSIONS if os.path.isfile(os.path.join(self.path, stem + ext))]
                if matches:
                    found[split] = os.path.join(self.path, matches[0])
                    break
        if "train" not in found:
            raise DataError(
                f"no train file in {self.path}; expected train.jsonl, train.csv or train.tsv (or set data.train=...)"
            )
        return found

    def _load(self) -> TextPairs:
        files = self.split_files()
        parts = {}
        for split, file in files.items():
            rows = read_rows(file, detect_format(file, self.format), self.encoding)
            parts[split] = rows_to_pairs(
                rows, src=self.src, tgt=self.tgt, pair_field=self.pair_field, where=file, on_empty=self.on_empty
            )
        if not parts["train"]:
            raise DataError(f"{files['train']} holds no pairs; give a training file with {self.src} and {self.tgt}")
        split = carve(parts, self.val_fraction, self.test_fraction, self.split_seed)
        train = split["train"][: self.limit_train] if self.limit_train else split["train"]
        return TextPairs(train=train, val=split["val"], test=split["test"], src=self.src, tgt=self.tgt)
