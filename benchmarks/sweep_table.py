"""Tabulate the jobs of a multirun sweep folder: the overrides that vary, test accuracy, time, throughput, memory.

    python -m attnkit -m task=classify attention=softmax,linear,local seed=0     # writes outputs/multirun/<date>/<time>
    python benchmarks/sweep_table.py outputs/multirun/<date>/<time>

Reads each job's `.hydra/overrides.yaml` and `metrics.json`; a job without metrics (failed or still running) is a
row that says so. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml


def jobs(sweep: Path) -> list[tuple[dict[str, str], dict | None]]:
    """(overrides, metrics or None) of every job folder under `sweep`, in job order."""
    out = []
    for folder in sorted((p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)):
        overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or []
        pairs = dict(o.lstrip("+~").split("=", 1) for o in overrides if "=" in o)
        metrics_file = folder / "metrics.json"
        out.append((pairs, json.loads(metrics_file.read_text()) if metrics_file.is_file() else None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path, help="a multirun folder (holds multirun.yaml and 0/, 1/, ...)")
    args = parser.parse_args()
    rows = jobs(args.sweep)
    keys = sorted({k for pairs, _ in rows for k in pairs})
    varying = [k for k in keys if len({pairs.get(k) for pairs, _ in rows}) > 1] or keys
    columns = ("test accuracy", "majority class", "training time (s)", "sequences/s", "peak memory (MB)")
    print(f"| {' | '.join(varying)} | {' | '.join(columns)} |")
    print("|" + "---|" * len(varying) + "---:|---:|---:|---:|---:|")
    for pairs, m in rows:
        cells = [f"`{pairs.get(k, '')}`" for k in varying]
        if m is None:
            print("| " + " | ".join(cells) + " | failed or unfinished | | | | |")
            continue
        majority = m.get("test/majority_acc")
        rate = m.get("train_sequences_per_s", m.get("train_images_per_s", float("nan")))
        cells += [
            f"{m['test/acc']:.2%}",
            "" if majority is None else f"{majority:.2%}",
            f"{m['train_time_s']:.0f}",
            f"{rate:.1f}",
            f"{m.get('peak_memory_mb', float('nan')):,.0f}",
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
