"""`data=text`: plain text for a language model (task=lm), from text files, JSON lines / CSV rows or a Hugging Face
dataset, split three ways and tokenized losslessly (`TextStream`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Literal

import attnkit
from attnkit.data.checks import check_choice, check_fractions, check_int
from attnkit.data.hf import HFDataset
from attnkit.data.paths import check_file, resolve
from attnkit.errors import ConfigError, DataError
from attnkit.ranges import Fraction, PositiveInt
from attnkit.text.hf_text import BUILDERS, load_text_dataset, table_rows
from attnkit.text.lm_tokenizer import LMTokenizerOptions, train_lm_tokenizer
from attnkit.text.plain import check_encoding, read_text
from attnkit.text.records import EXTENSIONS, pick, read_rows
from attnkit.text.stream import TextStream
from attnkit.text.text_files import SPLIT_STEMS

FORMATS = ("auto", "text", "jsonl", "csv", "tsv")
CHARS = LMTokenizerOptions()  # the default tokenizer: one token per character


@attnkit.register("data", "text")
class TextData:
    """Plain text for a language model: `load()` gives a `TextStream` (attnkit.text.lm.LMData).

    Where the text is: `path`, one file (split by character position: train the first 1 - `val_fraction` -
    `test_fraction`, as nanoGPT does with 90 %, then validation, then test) or a folder holding `train.txt` (and
    `validation.txt`, `test.txt`; or .jsonl, .csv, .tsv); or `train`, `validation`, `test` as files (a split without
    one is cut from the end of train by its fraction); or a Hugging Face dataset (`dataset`, `config_name`,
    `data_dir`, `data_files`, the split names, `cache_dir`, as data=hf_text has them). Files are decoded as `encoding`
    (.txt and any other extension: plain text; `format` forces one). Rows of JSON lines, CSV, TSV and datasets give
    their `field`; documents are joined with `separator`. `tokenizer` says what a token is (chars, bytes, bpe:
    attnkit.text.lm_tokenizer), made from the training split alone. `batch_size` is the task's training batch.
    """

    def __init__(
        self,
        batch_size: PositiveInt = 32,
        path: str | None = None,
        train: str | None = None,
        validation: str | None = None,
        test: str | None = None,
        format: Literal["auto", "text", "jsonl", "csv", "tsv"] = "auto",
        field: str = "text",
        separator: str = "\n\n",
        encoding: str = "utf-8",
        val_fraction: Fraction = 0.05,
        test_fraction: Fraction = 0.05,
        tokenizer: LMTokenizerOptions = CHARS,
        dataset: str | None = None,
        config_name: str | None = None,
        data_dir: str | None = None,
        data_files: str | list[str] | dict[str, str] | None = None,
        train_split: str = "train",
        val_split: str | None = "validation",
        test_split: str | None = "test",
        cache_dir: str | None = None,
    ) -> None:
        check_int("batch_size", batch_size, minimum=1)
        check_choice("format", format, FORMATS)
        check_fractions(val_fraction, test_fraction, items="text")
        check_encoding(encoding)
        if not field:
            raise ConfigError("data.field must name the text field of a row (e.g. data.field=text)")
        local, hub = (path, train, validation, test), (dataset, data_dir, data_files)
        if any(v is not None for v in local) and any(v is not None for v in hub):
            raise ConfigError(
                "data=text reads local files (data.path, data.train, ...) or a Hugging Face dataset (data.dataset, "
                "data.data_dir, data.data_files), not both; leave one of them unset"
            )
        self.batch_size, self.format, self.field, self.separator = batch_size, format, str(field), str(separator)
        self.encoding, self.val_fraction, self.test_fraction = encoding, val_fraction, test_fraction
        self.tokenizer = LMTokenizerOptions.of(tokenizer)
        self.path = None if path is None else resolve(path)
        given = {"train": train, "val": validation, "test": test}
        self.files = {role: None if file is None else resolve(file) for role, file in given.items()}
        self.hub = None
        if any(v is not None for v in hub):
            self.hub = HFDataset(
                "text",
                BUILDERS,
                dataset=dataset,
                config_name=config_name,
                data_dir=data_dir,
                data_files=data_files,
                train_split=train_split,
                val_split=val_split,
                test_split=test_split,
                cache_dir=cache_dir,
            )
        self._stream: TextStream | None = None

    def load(self) -> TextStream:
        """The tokenized splits, made on the first call and kept."""
        if self._stream is None:
            texts, origins = self._hub_texts() if self.hub is not None else self._file_texts()
            for role, text in texts.items():
                if not text.strip():
                    raise DataError(f"{origins[role]} is empty (no text in it); give the {role} split text")
            texts, origins = self._carve(texts, origins)
            self._stream = TextStream(texts, train_lm_tokenizer(texts["train"], self.tokenizer), origins)
        return self._stream

    def split_files(self) -> dict[str, str]:
        """role -> file: those given, else `path` (a file: train alone; a folder: the split files found in it)."""
        given = {role: file for role, file in self.files.items() if file is not None}
        if self.path is None:
            if "train" not in given:
                raise DataError(
                    "data source text needs a text: set data.path=path/to/input.txt (or data.train=..., or a Hugging "
                    "Face dataset: data.dataset=... data.field=...)"
                )
            return given
        if not os.path.isdir(self.path):
            check_file(self.path)
            return {"train": self.path, **given}
        found = dict(given)
        for role, stems in SPLIT_STEMS.items():
            names = [s + ext for s in stems for ext in (".txt", *EXTENSIONS)]
            match = next((n for n in names if os.path.isfile(os.path.join(self.path, n))), None)
            if role not in found and match is not None:
                found[role] = os.path.join(self.path, match)
        if "train" not in found:
            raise DataError(f"no train file in {self.path}; expected train.txt (or .jsonl, .csv, .tsv)")
        return found

    def _file_texts(self) -> tuple[dict[str, str], dict[str, str]]:
        files = self.split_files()
        return {role: self._read(file) for role, file in files.items()}, dict(files)

    def _read(self, file: str) -> str:
        fmt = self.format
        if fmt == "auto":
            fmt = EXTENSIONS.get(os.path.splitext(file)[1].lower(), "text")
        if fmt == "text":
            return read_text(file, self.encoding)
        rows = read_rows(file, fmt, self.encoding)
        return self._join(pick(row, self.field, "field", None, f"{file} {at}") for at, row in rows)

    def _hub_texts(self) -> tuple[dict[str, str], dict[str, str]]:
        example = "data.dataset=<hub name, e.g. wikitext> (with data.config_name=...) or data.data_files=train.jsonl"
        builder, loaded, chosen = load_text_dataset(self.hub, example)
        texts, origins = {}, {}
        for role, name in chosen.items():
            origins[role] = f"dataset {builder!r} split {name!r}"
            rows = table_rows(loaded[name], None, (self.field,))
            texts[role] = self._join(pick(row, self.field, "field", None, f"{origins[role]} {at}") for at, row in rows)
        return texts, origins

    def _join(self, documents: Iterable[Any]) -> str:
        """The documents joined by `separator` (blank rows and empty fields are left out)."""
        return self.separator.join(str(d) for d in documents if d is not None and str(d))

    def _carve(self, texts: dict[str, str], origins: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """Cut the splits without a text of their own off the end of train, by character position."""
        missing = {role: getattr(self, f"{role}_fraction") for role in ("val", "test") if role not in texts}
        for role, fraction in missing.items():
            if fraction == 0:
                given = "validation" if role == "val" else "test"
                raise ConfigError(
                    f"data.{role}_fraction=0 leaves no {role} split; give data.{role}_fraction > 0 or a file "
                    f"(data.{given}=...)"
                )
        if not missing:
            return texts, origins
        train, where = texts["train"], origins["train"]
        n = len(train)
        val, test = missing.get("val", 0.0), missing.get("test", 0.0)
        cuts = {"train": 0, "val": int(n * round(1 - val - test, 12)), "test": int(n * round(1 - test, 12)), "end": n}
        out, named = dict(texts), dict(origins)
        out["train"] = train[: cuts["val"]]
        named["train"] = f"the first {cuts['val']:,} characters of {where}"
        for role, stop in (("val", "test"), ("test", "end")):
            if role in missing:
                out[role] = train[cuts[role] : cuts[stop]]
                named[role] = f"characters {cuts[role]:,} to {cuts[stop]:,} of {where}"
        return out, named

    def __repr__(self) -> str:
        return f"TextData(path={self.path!r}, tokenizer={self.tokenizer.kind})"
