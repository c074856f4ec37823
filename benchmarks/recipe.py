"""Run a training recipe end to end, as a user would, and report its test score and wall-clock time per seed.

    python benchmarks/recipe.py --seeds 0 1 2 -- task=vit heads=8
    python benchmarks/recipe.py --seeds 0 -- experiment=fashion_mnist
    python benchmarks/recipe.py --seeds 0 -- task=summarization

The score is the task's primary metric (test accuracy, BLEU, ROUGE-L), with the lead baseline's beside it when the
task reports one.

Each run is `python -m attnkit <overrides> seed=<s>` in its own run directory under outputs/benchmarks/; the
wall time includes start-up, data loading, training, testing and the reports. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path


def run(overrides: list[str], seed: int, run_dir: Path, check: bool = True, cwd: Path | None = None) -> dict | str:
    """`python -m attnkit <overrides> seed=<seed>` in `run_dir`: its metrics.json plus `wall_s`.

    A failed run exits the script (`check`) or returns the CLI's last error line. `cwd`: run from that directory (the
    root of another checkout runs that checkout's attnkit); `run_dir` is made absolute first.
    """
    run_dir = run_dir.resolve()
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "attnkit",
        *overrides,
        f"seed={seed}",
        f"hydra.run.dir={run_dir}",
        "trainer.enable_progress_bar=false",
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - start
    if proc.returncode != 0 and not check:
        return (proc.stderr.strip().splitlines() or ["no output"])[-1]
    if proc.returncode != 0:
        sys.exit(f"run failed ({' '.join(cmd)}):\n{proc.stderr[-2000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    key = primary(metrics)
    print(f"{' '.join(overrides)} seed {seed}: {key} {metrics[key]:.4f}, wall {wall:.1f} s", file=sys.stderr)
    return {**metrics, "wall_s": wall}


def primary(metrics: dict) -> str:
    """The metric a run is judged by: the task's `primary_metric`, else test accuracy."""
    return metrics.get("primary_metric", "test/acc")


def shown(key: str, value: float) -> str:
    return f"{value:.2%}" if key.endswith("/acc") else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", default="outputs/benchmarks")
    parser.add_argument("overrides", nargs="*", help="attnkit overrides, after --")
    args = parser.parse_args()
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    runs = [run(args.overrides, seed, Path(args.out) / stamp / f"seed{seed}") for seed in args.seeds]
    key = primary(runs[0])
    lead = key.replace("test/", "test/lead_", 1)
    has_lead = lead in runs[0]
    print(f"\n`python -m attnkit {' '.join(args.overrides)}` on {os.cpu_count()} CPU cores\n")
    extra = f" {lead} |" if has_lead else ""
    print(f"| seed | {key} |{extra} wall time (s) | training time (s) | epochs | parameters |")
    print("|---:|---:|" + ("---:|" if has_lead else "") + "---:|---:|---:|---:|")
    for seed, m in zip(args.seeds, runs, strict=True):
        cells = [str(seed), shown(key, m[key]), *([shown(lead, m[lead])] if has_lead else [])]
        cells += [f"{m['wall_s']:.1f}", f"{m['train_time_s']:.1f}", str(m["epochs"]), f"{m['params']:,}"]
        print("| " + " | ".join(cells) + " |")
    if len(runs) > 1:
        scores = [m[key] for m in runs]
        mean = f"{shown(key, statistics.mean(scores))} ± {shown(key, statistics.stdev(scores))}"
        wall = statistics.mean(m["wall_s"] for m in runs)
        print(f"| mean | {mean} |" + (" |" if has_lead else "") + f" {wall:.1f} | | | |")


if __name__ == "__main__":
    main()
