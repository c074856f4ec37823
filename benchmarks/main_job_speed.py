"""The README's main job against an earlier recipe, side by side: test accuracy and wall time per seed, and the ratio.

    python benchmarks/main_job_speed.py                    # today's preset against the pinned 2026-11 recipe
    python benchmarks/main_job_speed.py --seeds 0 --new task=vit heads=8 trainer.max_epochs=60

Absolute times on a shared machine vary by 1.5-2× from hour to hour, so the two recipes run alternately (old seed 0,
new seed 0, old seed 1, ...) in one script, and the ratio of their total wall times is what to compare. Each run is
`python -m attnkit ...` in its own run directory (see benchmarks/recipe.py): wall time includes start-up, data
loading, training, testing and the reports.
"""

from __future__ import annotations

import argparse
import statistics
from datetime import datetime
from pathlib import Path

from recipe import run

# The main job's recipe until 2026-11, pinned by overrides so that later presets do not change it: 4x4 patches every
# 2 pixels, width 64, depth 4, MLP ratio 2, batch 64, AdamW lr 3e-3, 150 epochs, moving average 0.998.
OLD = [
    "task=vit",
    "heads=8",
    "model.patch_size=4",
    "model.patch_stride=2",
    "model.dim=64",
    "model.depth=4",
    "model.drop_path=0.1",
    "ffn.mlp_ratio=2.0",
    "data.batch_size=64",
    "task.lr=3e-3",
    "task.warmup_epochs=5",
    "task.ema_decay=0.998",
    "trainer.max_epochs=150",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--old", nargs="+", default=OLD, help="the earlier recipe's overrides")
    parser.add_argument("--new", nargs="+", default=["task=vit", "heads=8"], help="the recipe to compare")
    parser.add_argument("--out", default="outputs/benchmarks")
    args = parser.parse_args()
    out = Path(args.out) / datetime.now().strftime("main_job_%Y-%m-%d_%H-%M-%S")
    results: dict[str, list[dict]] = {"old": [], "new": []}
    for seed in args.seeds:
        for side in ("old", "new"):
            results[side].append(run(getattr(args, side), seed, out / f"{side}-seed{seed}"))
    print(f"\nold: `python -m attnkit {' '.join(args.old)}`\nnew: `python -m attnkit {' '.join(args.new)}`\n")
    print("| seed | old test/acc | new test/acc | old wall (s) | new wall (s) | new / old |")
    print("|---:|---:|---:|---:|---:|---:|")
    for seed, old, new in zip(args.seeds, results["old"], results["new"], strict=True):
        ratio = new["wall_s"] / old["wall_s"]
        accs = f"{old['test/acc']:.2%} | {new['test/acc']:.2%}"
        print(f"| {seed} | {accs} | {old['wall_s']:.1f} | {new['wall_s']:.1f} | {ratio:.2f} |")
    total = {side: sum(m["wall_s"] for m in runs) for side, runs in results.items()}
    mean = {side: statistics.mean(m["test/acc"] for m in runs) for side, runs in results.items()}
    print(
        f"| all | {mean['old']:.2%} (mean) | {mean['new']:.2%} (mean) | {total['old']:.1f} | {total['new']:.1f} | "
        f"{total['new'] / total['old']:.2f} |"
    )


if __name__ == "__main__":
    main()
