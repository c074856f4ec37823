"""Plain text files, read whole in a chosen encoding; a file that is not text in it is one line naming the byte."""

from __future__ import annotations

import codecs
from pathlib import Path

from attnkit.data.paths import check_file
from attnkit.errors import ConfigError, DataError


def check_encoding(encoding: str) -> None:
    """`data.encoding` must be a codec Python knows (`utf-8`, `latin-1`, `cp1252`, ...)."""
    try:
        codecs.lookup(str(encoding))
    except LookupError:
        raise ConfigError(
            f"data.encoding={encoding!r} is not an encoding Python knows; give one such as utf-8, latin-1, cp1252"
        ) from None


def read_text(path: str, encoding: str = "utf-8") -> str:
    """The whole text of a file; a missing file or one that is not `encoding` text is a one-line DataError."""
    check_file(path)
    data = Path(path).read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise undecodable(path, encoding, data) from exc


def undecodable(path: str, encoding: str, data: bytes | None = None) -> DataError:
    """The one line for a file (its bytes `data`, else read again) that is not `encoding` text: the first byte that
    cannot be decoded, by its offset in the whole file (a reader's error counts from its chunk), and what to set."""
    data = Path(path).read_bytes() if data is None else data
    where = "it cannot be decoded"
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        where = (
            f"the byte 0x{data[exc.start : exc.start + 1].hex()} at offset {exc.start} cannot be decoded ({exc.reason})"
        )
    return DataError(
        f"{path} is not {encoding} text: {where}; set data.encoding=<the file's encoding> (e.g. latin-1, cp1252) "
        f"or convert the file to {encoding}"
    )
