"""DataWarning: a flaw in the data that a source repaired and counted, issued with `warn` and shown to the user as
one `warning: ...` line by `reported_warnings`.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator


class DataWarning(UserWarning):
    """A flaw in the data that attnkit repaired and counted (empty pairs skipped, long sequences truncated)."""


def warn(message: str) -> None:
    """Issue a DataWarning (the task prints it as one `warning: ...` line)."""
    warnings.warn(message, DataWarning, stacklevel=2)


@contextlib.contextmanager
def reported_warnings() -> Iterator[list[str]]:
    """Print each DataWarning raised inside as one `warning: ...` line on stderr; the messages are collected.

    Other warnings are issued again once the block is left (re-issuing them while still recording would record them
    again, for ever).
    """
    seen: list[str] = []
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataWarning)
            yield seen
    finally:
        for w in caught:
            if issubclass(w.category, DataWarning):
                seen.append(str(w.message))
                print(f"warning: {w.message}", file=sys.stderr, flush=True)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
