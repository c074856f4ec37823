"""Run a training recipe end to end, as a user would, and report accuracy and wall-clock time per seed.

    python benchmarks/recipe.py --seeds 0 1 2 -- task=vit heads=8
    python benchmarks/recipe.py --seeds 0 -- experiment=fashion_mnist

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


def run(overrides: list[str], seed: int, run_dir: Path, check: bool = True) -> dict | str:
    """`python -m attnkit <overrides> seed=<seed>` in `run_dir`: its metrics.json plus `wall_s`.

    A failed run exits the script (`check`) or returns the CLI's last error line.
    """
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
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0 and not check:
        return (proc.stderr.strip().splitlines() or ["no output"])[-1]
    if proc.returncode != 0:
        sys.exit(f"run failed ({' '.join(cmd)}):\n{proc.stderr[-2000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"{' '.join(overrides)} seed {seed}: test/acc {metrics['test/acc']:.4f}, wall {wall:.1f} s", file=sys.stderr)
    return {**metrics, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", default="outputs/benchmarks")
    parser.add_argument("overrides", nargs="*", help="attnkit overrides, after --")
    args = parser.parse_args()
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    rows = []
    for seed in args.seeds:
        m = run(args.overrides, seed, Path(args.out) / stamp / f"seed{seed}")
        rows.append((seed, m["test/acc"], m["wall_s"], m["train_time_s"], m["epochs"], m["params"]))
    print(f"\n`python -m attnkit {' '.join(args.overrides)}` on {os.cpu_count()} CPU cores\n")
    print("| seed | test accuracy | wall time (s) | training time (s) | epochs | parameters |")
    print("|---:|---:|---:|---:|---:|---:|")
    for seed, acc, wall, fit, epochs, params in rows:
        print(f"| {seed} | {acc:.2%} | {wall:.1f} | {fit:.1f} | {epochs} | {params:,} |")
    if len(rows) > 1:
        accs = [r[1] for r in rows]
        walls = [r[2] for r in rows]
        print(
            f"| mean | {statistics.mean(accs):.2%} ± {statistics.stdev(accs):.2%} | {statistics.mean(walls):.1f} "
            f"| | | |"
        )


if __name__ == "__main__":
    main()
