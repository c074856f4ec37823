"""Tiny Shakespeare with `experiment=shakespeare_char`: loss on nanoGPT's validation split, time, and a sample.

    python benchmarks/shakespeare_char.py                          # seeds 0 1 2, one after another
    python benchmarks/shakespeare_char.py --seeds 0 --data other.txt
    python benchmarks/shakespeare_char.py --runs outputs/<date>/<time> ...   # score runs made before

Each seed trains the recipe (`python -m attnkit experiment=shakespeare_char data.path=... seed=N`), timed from the
command's start to its end. The recipe validates on the 5 % after the training text and tests on the last 5 %;
nanoGPT's validation split is both together, so each checkpoint is then scored once more on the last 10 %
(`mode=test data.val_fraction=0.05 data.test_fraction=0.1`: that run's test split is nanoGPT's validation split).
Prints a Markdown table (nats and bits per character, training and wall time per seed) and the first seed's sample.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


def attnkit(*overrides: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "attnkit", *overrides], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        sys.exit(f"python -m attnkit {' '.join(overrides)} failed:\n{done.stderr[-2000:]}")
    return done


def train(data: Path, seed: int, out: Path) -> tuple[Path, float]:
    folder = out / f"seed{seed}"
    start = time.perf_counter()
    attnkit(
        "experiment=shakespeare_char",
        f"data.path={data}",
        f"seed={seed}",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={folder}",
    )
    return folder, time.perf_counter() - start


def nanogpt_validation(run: Path) -> float:
    """The checkpoint's loss (nats per character) on the last 10 % of the text, nanoGPT's validation split."""
    folder = run.with_name(run.name + "-val10")
    attnkit(
        "mode=test",
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        "data.val_fraction=0.05",
        "data.test_fraction=0.1",
        f"hydra.run.dir={folder}",
    )
    return json.loads((folder / "metrics.json").read_text())["test/loss"]


def sample(run: Path, prompt: str, tokens: int) -> str:
    done = attnkit(
        "mode=generate",
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        f"input={prompt}",
        f"task.max_new_tokens={tokens}",
        "task.temperature=0.8",
        "task.seed=0",
        f"hydra.run.dir={run.with_name(run.name + '-sample')}",
    )
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="a plain-text file")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", type=Path, nargs="+", help="score these finished runs instead of training")
    parser.add_argument("--prompt", default="ROMEO:")
    parser.add_argument("--tokens", type=int, default=240, help="characters in the sample")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "shakespeare_char")
    args = parser.parse_args()
    if args.runs is None and not args.data.is_file():
        sys.exit(f"error: no text file at {args.data}; give --data path/to/text.txt")
    out = args.out / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    runs = [(run.resolve(), None) for run in args.runs] if args.runs else []
    for seed in [] if args.runs else args.seeds:
        runs.append(train(args.data.resolve(), seed, out))
        print(f"seed {seed}: trained in {runs[-1][1]:.0f} s", flush=True)
    print("\n| seed | val (5 %) | test (5 %) | nanoGPT's val (10 %) | bits per character | training (s) | wall (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    scores = []
    for run, wall in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        config = (run / "config.yaml").read_text()
        seed = next((line.split(":")[1].strip() for line in config.splitlines() if line.startswith("seed:")), "?")
        loss = nanogpt_validation(run)
        scores.append(loss)
        shown_wall = "" if wall is None else f"{wall:.0f}"
        print(
            f"| {seed} | {metrics['val/loss']:.3f} | {metrics['test/loss']:.3f} | {loss:.3f} | "
            f"{loss / math.log(2):.3f} | {metrics['train_time_s']:.0f} | {shown_wall} |",
            flush=True,
        )
    if len(scores) > 1:
        print(f"\nnanoGPT's validation split: {statistics.mean(scores):.3f} ± {statistics.stdev(scores):.3f} nats/char")
    print(f"\nSample (the first run, prompt {args.prompt!r}, temperature 0.8):\n")
    print(sample(runs[0][0], args.prompt, args.tokens))


if __name__ == "__main__":
    main()
