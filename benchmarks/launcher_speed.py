"""The same multirun, serially and side by side with the joblib launcher: wall time of each, in one process.

    python benchmarks/launcher_speed.py                         # 4 digits ViT jobs of 20 epochs
    python benchmarks/launcher_speed.py --jobs 4 -- task=vit trainer.max_epochs=10

Serial: Hydra's basic launcher, each job with every core. Side by side: hydra/launcher=joblib with n_jobs = the
number of cores, each job with cores / jobs torch threads (attnkit divides them). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=4, help="jobs in the sweep (seeds 0 .. jobs-1)")
    parser.add_argument("overrides", nargs="*", default=["task=vit", "trainer.max_epochs=20"])
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    seeds = ",".join(str(s) for s in range(args.jobs))
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    rows = []
    for label, launcher in (("serial (basic launcher)", []), (f"joblib, {cores} at a time", ["hydra/launcher=joblib"])):
        with tempfile.TemporaryDirectory() as folder:
            cmd = [sys.executable, "-m", "attnkit", "-m", *launcher, *args.overrides, f"seed={seeds}"]
            cmd += [f"hydra.sweep.dir={folder}/sweep", "trainer.enable_progress_bar=false"]
            start = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                sys.exit(f"{label} failed:\n{proc.stderr[-2000:]}")
        rows.append((label, wall))
        print(f"{label}: {wall:.1f} s", file=sys.stderr)
    print(f"\n`python -m attnkit -m {' '.join(args.overrides)} seed={seeds}` ({args.jobs} jobs) on {cores} CPU cores\n")
    print("| launcher | wall time (s) | vs serial |")
    print("|---|---:|---:|")
    for label, wall in rows:
        print(f"| {label} | {wall:.1f} | {wall / rows[0][1]:.2f}× |")


if __name__ == "__main__":
    main()
