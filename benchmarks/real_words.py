"""Real words or free pieces: the same trained checkpoints tested with task.words=free and task.words=real.

    python benchmarks/real_words.py --seeds 0 1 2 -- task=summarization          # train each seed, then test both
    python benchmarks/real_words.py --seeds 0 -- experiment=aeslc data.limit_train=2000
    python benchmarks/real_words.py --runs outputs/<date>/<time> ...            # runs trained already

Each seed trains `python -m attnkit <overrides> seed=<s>` (benchmarks/recipe.py's `run`), unless `--runs` gives run
directories; then its `--checkpoint` (default best.ckpt, what the run tested) is tested twice in its own process,
`mode=test task.words=free` and `mode=test task.words=real`. Prints per run the primary metric (ROUGE-L, BLEU) and
the non-word rate of each, the lead baseline's where the task has one, and the test wall times; then the means.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipe import primary, run  # noqa: E402

MODES = ("free", "real")


def test_both(run_dir: Path, checkpoint: str, out: Path, seed: int) -> dict[str, dict]:
    """The run's checkpoint tested with each `task.words`, each in its own run directory under `out`."""
    ckpt = run_dir / "checkpoints" / checkpoint
    results = {}
    for mode in MODES:
        overrides = ["mode=test", f"ckpt_path={ckpt}", f"task.words={mode}"]
        results[mode] = run(overrides, seed, out / f"{run_dir.name}-{mode}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--runs", type=Path, nargs="+", default=None, help="trained run directories instead")
    parser.add_argument("--checkpoint", default="best.ckpt")
    parser.add_argument("--out", default="outputs/benchmarks")
    parser.add_argument("overrides", nargs="*", help="attnkit overrides, after --")
    args = parser.parse_args()
    out = Path(args.out) / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    if args.runs is None:
        runs = []
        for seed in args.seeds:
            run(args.overrides, seed, out / f"seed{seed}")
            runs.append(out / f"seed{seed}")
    else:
        runs = [path.resolve() for path in args.runs]
    rows = [(path, test_both(path, args.checkpoint, out, 0)) for path in runs]

    key = primary(rows[0][1]["free"])
    lead = key.replace("test/", "test/lead_", 1)
    has_lead = lead in rows[0][1]["free"]
    print(f"\n{key} and test/non_word_rate with task.words=free and =real, the same checkpoints ({args.checkpoint})\n")
    head = f"| run | {key} free | {key} real | non-words free | non-words real |"
    head += f" {lead} | lead non-words |" if has_lead else ""
    print(head + " test wall free / real (s) |")
    print("|---|" + "---:|" * (head.count("|") - 1))
    for path, result in rows:
        free, real = result["free"], result["real"]
        cells = [path.name, f"{free[key]:.2f}", f"{real[key]:.2f}"]
        cells += [f"{100 * free['test/non_word_rate']:.2f} %", f"{100 * real['test/non_word_rate']:.2f} %"]
        if has_lead:
            cells += [f"{free[lead]:.2f}", f"{100 * free['test/lead_non_word_rate']:.2f} %"]
        cells.append(f"{free['wall_s']:.1f} / {real['wall_s']:.1f}")
        print("| " + " | ".join(cells) + " |")
    if len(rows) > 1:
        for mode in MODES:
            scores = [result[mode][key] for _, result in rows]
            rates = [100 * result[mode]["test/non_word_rate"] for _, result in rows]
            print(
                f"\n{mode}: {key} {statistics.mean(scores):.2f} ± {statistics.stdev(scores):.2f}, "
                f"non-word rate {statistics.mean(rates):.2f} % ± {statistics.stdev(rates):.2f} ({len(rows)} runs)"
            )


if __name__ == "__main__":
    main()
