"""Runs side by side: one row per run (the overrides that vary, test and validation scores, parameters, time,
throughput, memory, status) and one row per variant with the mean ± std over its seeds; written as summary.csv,
summary.md and summary.png (the main metric against training time, with error bars).

Every multirun writes them into its sweep folder (`SweepSummary`, a Hydra callback); `python -m attnkit
mode=compare input=[<run or sweep folders>]` writes them for any folders. Only the standard library and yaml are
needed to read runs; matplotlib draws the plot.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from attnkit.errors import DataError

ERROR_FILE = "error.txt"  # a failed job of a multirun leaves its one-line error here
NUMBERS = ("params", "train_time_s", "peak_memory_mb")


@dataclass
class Run:
    """One run folder: its command-line overrides, its metrics (None when it has none) and its status."""

    folder: Path
    overrides: dict[str, str]
    metrics: dict[str, Any] | None
    status: str = "ok"
    values: dict[str, float] = field(default_factory=dict)  # the numbers a table shows, by column


def find_runs(folders: Iterable[str | Path]) -> list[Run]:
    """The runs in `folders`: a run folder (it has .hydra/) is one run; a sweep folder gives its job folders."""
    runs: list[Run] = []
    for value in folders:
        folder = Path(value).expanduser()
        if not folder.is_dir():
            raise DataError(
                f"{str(folder)!r} is not a folder; give run or sweep folders, e.g. input=[outputs/multirun/...]"
            )
        if (folder / ".hydra").is_dir():
            runs.append(read_run(folder))
            continue
        jobs = sorted((p for p in folder.iterdir() if (p / ".hydra").is_dir()), key=_job_order)
        if not jobs:
            raise DataError(f"{str(folder)!r} holds no run (no .hydra/ in it or in its subfolders)")
        runs.extend(read_run(job) for job in jobs)
    return runs


def _job_order(path: Path) -> tuple[int, str]:
    return (int(path.name), "") if path.name.isdigit() else (1 << 30, path.name)


def read_run(folder: Path) -> Run:
    overrides_file = folder / ".hydra" / "overrides.yaml"
    listed = yaml.safe_load(overrides_file.read_text()) if overrides_file.is_file() else []
    overrides = dict(o.lstrip("+~").split("=", 1) for o in listed or [] if "=" in o)
    overrides = {k: v for k, v in overrides.items() if not k.startswith("hydra.") and k != "resume"}
    metrics_file = folder / "metrics.json"
    if metrics_file.is_file():
        return Run(folder, overrides, json.loads(metrics_file.read_text()))
    error = folder / ERROR_FILE
    status = f"failed: {error.read_text().strip()}" if error.is_file() else "unfinished"
    return Run(folder, overrides, None, status)


def primary(runs: Sequence[Run]) -> str:
    """The metric the runs are judged by: their `primary_metric`, else test accuracy."""
    for run in runs:
        if run.metrics:
            return run.metrics.get("primary_metric", "test/acc")
    return "test/acc"


def columns(runs: Sequence[Run]) -> list[str]:
    """Metric columns, main metric first: test scores, validation scores, then size, time, throughput, memory."""
    keys: set[str] = set()
    for run in runs:
        keys.update(
            k for k, v in (run.metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        )
    main = primary(runs)
    scores = sorted(k for k in keys if k.startswith(("test/", "val/", "best_val_")) and k != main)
    rates = sorted(k for k in keys if k.startswith("train_") and k.endswith("_per_s"))
    return [main, *sorted(scores, key=lambda k: not k.startswith("test/")), *[k for k in NUMBERS if k in keys], *rates]


def varying(runs: Sequence[Run]) -> list[str]:
    """The overrides whose values differ between the runs (all of them when only one run is given)."""
    keys = sorted({k for run in runs for k in run.overrides})
    differ = [k for k in keys if len({run.overrides.get(k) for run in runs}) > 1]
    return differ or keys


def groups(runs: Sequence[Run], keys: Sequence[str]) -> dict[tuple[str, ...], list[Run]]:
    """Runs by variant: the varying overrides except `seed`."""
    out: dict[tuple[str, ...], list[Run]] = {}
    for run in runs:
        out.setdefault(tuple(run.overrides.get(k, "") for k in keys if k != "seed"), []).append(run)
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _cell(key: str, value: float) -> str:
    if math.isnan(value):
        return "-"
    if key.endswith("/acc") or key.endswith("acc"):
        return f"{value:.2%}"
    if key == "params":
        return f"{value:,.0f}"
    return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"


def _value(run: Run, key: str) -> float:
    value = (run.metrics or {}).get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")


def markdown(runs: Sequence[Run]) -> str:
    """The per-run table and the grouped (mean ± std over seeds) table, in Markdown."""
    keys, metrics = varying(runs), columns(runs)
    lines = [f"# {len(runs)} runs (main metric: {primary(runs)})", "", "## Runs", ""]
    lines.append("| " + " | ".join([*keys, *metrics, "status"]) + " |")
    lines.append("|" + "---|" * len(keys) + "---:|" * len(metrics) + "---|")
    for run in runs:
        cells = [f"`{run.overrides.get(k, '')}`" for k in keys] + [_cell(m, _value(run, m)) for m in metrics]
        lines.append("| " + " | ".join([*cells, run.status]) + " |")
    group_keys = [k for k in keys if k != "seed"]
    lines += ["", "## Variants (mean ± std over seeds)", ""]
    lines.append("| " + " | ".join([*group_keys, "runs", *metrics]) + " |")
    lines.append("|" + "---|" * len(group_keys) + "---:|" * (1 + len(metrics)))
    for key, members in groups(runs, keys).items():
        done = [r for r in members if r.metrics]
        cells = [f"`{v}`" for v in key] + [f"{len(done)}/{len(members)}"]
        for metric in metrics:
            mean, std = mean_std([_value(r, metric) for r in done])
            cells.append(_cell(metric, mean) + (f" ± {_cell(metric, std)}" if len(done) > 1 else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(runs: Sequence[Run]) -> str:
    keys, metrics = varying(runs), columns(runs)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*keys, *metrics, "status", "folder"])
    for run in runs:
        values = ["" if math.isnan(v := _value(run, m)) else v for m in metrics]
        writer.writerow([*(run.overrides.get(k, "") for k in keys), *values, run.status, str(run.folder)])
    return out.getvalue()


def plot(runs: Sequence[Run], path: Path) -> bool:
    """The main metric against training time, one point per variant (mean, with std error bars over seeds)."""
    keys, main = varying(runs), primary(runs)
    points = []
    for key, members in groups(runs, keys).items():
        done = [r for r in members if r.metrics]
        if done:
            (x, dx), (y, dy) = (
                mean_std([_value(r, "train_time_s") for r in done]),
                mean_std([_value(r, main) for r in done]),
            )
            names = [k for k in keys if k != "seed"]
            points.append((" ".join(f"{k}={v}" for k, v in zip(names, key, strict=True)) or "run", x, dx, y, dy))
    if not points:
        return False
    import matplotlib  # lazy: a second of start-up, needed only for the figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, x, dx, y, dy in points:
        ax.errorbar(x, y, xerr=dx, yerr=dy, fmt="o", capsize=3, label=label)
    ax.set_xlabel("training time (s)")
    ax.set_ylabel(main)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(runs: Sequence[Run], folder: Path) -> str:
    """summary.csv, summary.md and summary.png in `folder`; returns the Markdown."""
    folder.mkdir(parents=True, exist_ok=True)
    text = markdown(runs)
    (folder / "summary.md").write_text(text)
    (folder / "summary.csv").write_text(to_csv(runs))
    plot(runs, folder / "summary.png")
    return text
