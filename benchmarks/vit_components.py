"""Train the digits ViT recipe once per registered component of one kind and tabulate accuracy and time.

    python benchmarks/vit_components.py --kind attention
    python benchmarks/vit_components.py --kind pos_enc
    python benchmarks/vit_components.py --kind attention --choices softmax "local attention.window=4"

Each row is `python -m attnkit task=vit <kind>=<choice> seed=<s>` (the full recipe, start-up to reports) in its
own run directory under outputs/benchmarks/; `--choices` entries may carry extra overrides after the name.
Components that cannot serve the recipe (a bias encoding with an attention that has none, say) are skipped with
the CLI's one-line reason. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from datetime import datetime
from pathlib import Path

from recipe import run

import attnkit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", required=True, help="registry kind: attention, pos_enc, norm, ffn")
    parser.add_argument("--choices", nargs="+", help="names (with optional overrides); default: all registered")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", default="outputs/benchmarks")
    parser.add_argument("overrides", nargs="*", help="further attnkit overrides for every run, after --")
    args = parser.parse_args()
    choices = args.choices or attnkit.available(args.kind)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    rows = []
    for choice in choices:
        name, *extra = choice.split()
        overrides = ["task=vit", f"{args.kind}={name}", *extra, *args.overrides]
        runs = []
        for seed in args.seeds:
            result = run(overrides, seed, Path(args.out) / stamp / f"{args.kind}-{name}" / f"seed{seed}", check=False)
            if isinstance(result, str):
                print(f"{choice}: skipped ({result})", file=sys.stderr)
                break
            runs.append(result)
        if runs:
            rows.append((choice, runs))
    seeds = " ".join(map(str, args.seeds))
    print(f"\n`python -m attnkit task=vit {args.kind}=<choice> {' '.join(args.overrides)}`, seeds {seeds}, ", end="")
    print(f"{os.cpu_count()} CPU cores\n")
    print(f"| {args.kind} | test accuracy | wall time (s) | training time (s) | parameters |")
    print("|---|---:|---:|---:|---:|")
    for choice, runs in rows:
        accs = [r["test/acc"] for r in runs]
        acc = f"{statistics.mean(accs):.2%}" + (f" ± {statistics.stdev(accs):.2%}" if len(accs) > 1 else "")
        wall = statistics.mean(r["wall_s"] for r in runs)
        fit = statistics.mean(r["train_time_s"] for r in runs)
        print(f"| `{choice}` | {acc} | {wall:.1f} | {fit:.1f} | {runs[0]['params']:,} |")


if __name__ == "__main__":
    main()
