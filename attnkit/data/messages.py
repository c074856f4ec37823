"""Errors stay one line: another library's exception message, flattened and shortened to quote inside ours."""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, at most 300 characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
