"""The main job against an earlier recipe, side by side: test accuracy and wall time per seed, and the ratio.

    python benchmarks/main_job_speed.py                    # today's preset against the pinned 2026-12 recipe
    python benchmarks/main_job_speed.py --seeds 0 --new task=vit heads=8 trainer.max_epochs=60
    python benchmarks/main_job_speed.py --old-checkout b12bd87     # the old recipe on that commit's code

Absolute times on a shared machine vary by 1.5-2× from hour to hour, so the two recipes run alternately (old seed 0,
new seed 0, old seed 1, ...) in one script, and the ratio of their total wall times is what to compare. Each run is
`python -m attnkit ...` in its own run directory (see benchmarks/recipe.py): wall time includes start-up, data
loading, training, testing and the reports. `--old-checkout <commit>` runs the old recipe on that commit's code (a
git worktree of it, run from its root), so that the comparison includes what changed in the code as well.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

from recipe import run

# The main job's recipe until 2026-12, pinned by overrides so that later presets do not change it: 4x4 patches every
# 2 pixels, width 64, depth 4, MLP ratio 2, batch 64, AdamW lr 3e-3, 150 epochs, moving average 0.998, tested on the
# image alone (no test-time views).
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
    "task.test_shift=0",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--old", nargs="+", default=OLD, help="the earlier recipe's overrides")
    parser.add_argument("--new", nargs="+", default=["task=vit", "heads=8"], help="the recipe to compare")
    parser.add_argument("--old-checkout", help="a commit whose code runs the old recipe (default: this checkout)")
    parser.add_argument("--out", default="outputs/benchmarks")
    args = parser.parse_args()
    out = Path(args.out) / datetime.now().strftime("main_job_%Y-%m-%d_%H-%M-%S")
    results: dict[str, list[dict]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as tmp:
        old_root = None
        if args.old_checkout:
            old_root = Path(tmp) / "old"
            subprocess.run(["git", "worktree", "add", "--detach", "-q", str(old_root), args.old_checkout], check=True)
        try:
            for seed in args.seeds:
                results["old"].append(run(args.old, seed, out / f"old-seed{seed}", cwd=old_root))
                results["new"].append(run(args.new, seed, out / f"new-seed{seed}"))
        finally:
            if old_root is not None:
                subprocess.run(["git", "worktree", "remove", "--force", str(old_root)], check=False)
    code = f" (code of {args.old_checkout})" if args.old_checkout else ""
    print(f"\nold{code}: `python -m attnkit {' '.join(args.old)}`\nnew: `python -m attnkit {' '.join(args.new)}`\n")
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
