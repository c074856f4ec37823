"""Run reports: metrics as JSON, a learning-curve PNG from Lightning's metrics.csv, a summary table."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON atomically (a temporary file renamed into place): an interrupted run never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=float) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def finite_scores(metrics: dict[str, Any]) -> list[str]:
    """Replace, in place, every number of `metrics` that is not finite (NaN, inf; nested ones too) by None, which
    metrics.json writes as null: a NaN score is not a score, and compares false with every other one. Returns a line
    per value replaced, which says why."""
    said: list[str] = []

    def clean(node: Any, key: str) -> Any:
        if isinstance(node, Mapping):
            return {k: clean(v, f"{key}.{k}" if key else str(k)) for k, v in node.items()}
        if isinstance(node, float) and not math.isfinite(node):
            said.append(
                f"metrics.json: {key} is {node}, not a score, and is written as null (the run gave no finite value "
                f"for it: a diverged loss, or nothing validated)"
            )
            return None
        return node

    metrics.update(clean(metrics, ""))
    return said


def read_metrics_csv(path: Path) -> list[dict[str, float]]:
    """Rows of Lightning's CSVLogger file, numbers parsed, empty cells dropped."""
    if not path.is_file():
        return []
    rows = []
    with path.open() as f:
        for row in csv.DictReader(f):
            rows.append({k: float(v) for k, v in row.items() if v not in ("", None)})
    return rows


def epoch_curves(rows: list[dict[str, float]]) -> dict[str, list[tuple[float, float]]]:
    """Per-epoch (epoch, value) series for every metric logged once per epoch."""
    curves: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        if "epoch" not in row:
            continue
        for key, value in row.items():
            if key in ("epoch", "step") or key.endswith("_step") or key.startswith("test/"):
                continue
            curves.setdefault(key.removesuffix("_epoch"), []).append((row["epoch"], value))
    return curves


def plot_learning_curves(
    rows: list[dict[str, float]], path: Path, metric: str = "acc", title: str = "learning curves"
) -> bool:
    """Loss, accuracy and the task's `metric` (e.g. bleu; omitted when it is acc or loss) against epoch, train and
    validation, as a PNG; False when nothing was logged."""
    curves = epoch_curves(rows)
    if not curves:
        return False
    import matplotlib  # lazy: a second of start-up, needed only for the figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ("loss", "acc") if metric in ("loss", "acc") else ("loss", "acc", metric)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    for ax, panel in zip(axes, panels, strict=True):
        for key in sorted(k for k in curves if k.endswith("/" + panel)):
            xs, ys = zip(*curves[key], strict=True)
            ax.plot([x + 1 for x in xs], ys, label=key, marker="." if len(xs) < 30 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(panel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def print_summary(title: str, rows: Mapping[str, Any]) -> None:
    """A two-column table on the terminal."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in rows.items():
        table.add_row(key, _fmt(value))
    Console().print(table)


def print_table(title: str, rows: list[Mapping[str, Any]], columns: Mapping[str, str]) -> None:
    """Rows as a table on the terminal: `columns` maps each row key to its heading."""
    table = Table(title=title)
    for i, heading in enumerate(columns.values()):
        table.add_column(heading, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(_fmt(row.get(key)) for key in columns))
    Console().print(table)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
