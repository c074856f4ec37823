"""Rows of text pairs in files (JSON lines, CSV, TSV) and the field mapping that picks source and target.

A row holds the two texts either as fields (`{"de": ..., "en": ...}`, CSV/TSV columns) or under a pair field in
the Hugging Face translation layout (`{"translation": {"de": ..., "en": ...}}`); `src` and `tgt` name the keys
in both cases.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from attnkit.data.messages import one_line
from attnkit.data.paths import check_file
from attnkit.errors import DataError
from attnkit.text.pairs import OnEmpty, Pair, clean_pairs
from attnkit.text.plain import undecodable

FORMATS = ("jsonl", "csv", "tsv")
EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv"}


def detect_format(path: str, fmt: str = "auto") -> str:
    """`jsonl`, `csv` or `tsv`: as given, or from the file's extension when `fmt="auto"`."""
    if fmt != "auto":
        return fmt
    ext = os.path.splitext(path)[1].lower()
    if ext not in EXTENSIONS:
        raise DataError(
            f"cannot tell the format of {path!r} from its extension; use .jsonl, .csv or .tsv, or set "
            f"data.format=jsonl|csv|tsv"
        )
    return EXTENSIONS[ext]


def read_rows(path: str, fmt: str, encoding: str = "utf-8") -> Iterator[tuple[str, Any]]:
    """(`line N`, row) for every record of a file; blank lines of JSON lines come out as empty rows."""
    check_file(path)
    try:
        with open(path, encoding=encoding, newline="") as f:
            if fmt == "jsonl":
                yield from _json_rows(f, path)
            else:
                reader = csv.DictReader(f, delimiter="," if fmt == "csv" else "\t")
                if not reader.fieldnames:
                    raise DataError(f"{path} has no header row; its first line must name the columns")
                for row in reader:
                    yield f"line {reader.line_num}", row
    except UnicodeDecodeError as exc:
        raise undecodable(path, encoding) from exc
    except csv.Error as exc:
        raise DataError(f"{path} is not valid {fmt.upper()} ({one_line(exc)}); check the file") from exc


def _json_rows(lines: Iterable[str], path: str) -> Iterator[tuple[str, Any]]:
    first = True
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if first and text.startswith("["):
            raise DataError(f"{path} is a JSON array; write one JSON object per line (JSON lines)")
        first = first and not text
        if not text:
            yield f"line {number}", {}
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {number} is not JSON ({exc.msg}); write one object per line") from exc
        if not isinstance(row, Mapping):
            raise DataError(f"{path} line {number} is a JSON {type(row).__name__}, not an object")
        yield f"line {number}", row


def pick(row: Mapping[str, Any], key: str, role: str, pair_field: str | None, where: str) -> Any:
    """The `src` or `tgt` text of a row: `row[pair_field][key]` in the translation layout, else `row[key]`.

    A missing key is a DataError naming the keys the row has (the available languages or fields).
    """
    holder = row.get(pair_field) if pair_field else None
    fields = holder if isinstance(holder, Mapping) else row
    if key in fields:
        return fields[key]
    if not row:  # a blank line: an empty pair
        return None
    kind = "language" if fields is holder else "field"
    available = ", ".join(map(str, fields)) or "(none)"
    raise DataError(f"{where}: no {kind} {key!r} (data.{role}); available: {available}; set data.{role}=<one of them>")


def rows_to_pairs(
    rows: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    src: str,
    tgt: str,
    pair_field: str | None,
    where: str,
    on_empty: OnEmpty,
) -> list[Pair]:
    """Source and target texts of every row, cleaned (empty pairs skipped and counted, or refused)."""

    def texts() -> Iterator[tuple[str, Any, Any]]:
        for location, row in rows:
            at = f"{where} {location}"
            yield location, pick(row, src, "src", pair_field, at), pick(row, tgt, "tgt", pair_field, at)

    return clean_pairs(texts(), where, on_empty)
