"""Reports of text-to-text runs: sample outputs as a table (terminal and Markdown), every output as JSON lines, and
learning curves with the task's metric beside loss and accuracy."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

COLUMNS = ("source", "reference", "hypothesis")


def sample_rows(sources: Sequence[str], references: Sequence[str], outputs: Sequence[str], n: int) -> list[tuple]:
    """`n` (source, reference, hypothesis) rows spread evenly over the split, in data order."""
    total = len(sources)
    if n <= 0 or total == 0:
        return []
    picks = sorted({round(i * (total - 1) / max(1, n - 1)) for i in range(min(n, total))})
    return [(sources[i], references[i], outputs[i]) for i in picks]


def print_samples(title: str, rows: list[tuple], columns: Sequence[str] = COLUMNS) -> None:
    """The rows as a table on the terminal (wrapped to its width)."""
    table = Table(title=title, show_lines=True)
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    Console().print(table)


def write_samples(path: Path, title: str, rows: list[tuple], columns: Sequence[str] = COLUMNS) -> None:
    """The rows as a Markdown table (pipes escaped)."""
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |")
    path.write_text("\n".join(lines) + "\n")


def write_outputs(
    path: Path,
    sources: Sequence[str],
    references: Sequence[str],
    outputs: Sequence[str],
    non_words: Sequence[list[str]] | None = None,
) -> None:
    """Every pair with its output, one JSON object per line: {"source", "reference", "hypothesis"}, and the
    hypothesis's `non_words` when given."""
    with path.open("w", encoding="utf-8") as f:
        for i, row in enumerate(zip(sources, references, outputs, strict=True)):
            record: dict[str, object] = dict(zip(COLUMNS, row, strict=True))
            if non_words is not None:
                record["non_words"] = non_words[i]
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
