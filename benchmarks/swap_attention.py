"""Swap the attention of a trained model: fine-tune from softmax weights against training from scratch.

    python benchmarks/swap_attention.py                                  # digits: softmax -> linear, local
    python benchmarks/swap_attention.py --pretrained outputs/<date>/<time>/checkpoints/last.ckpt --finetune-epochs 10

1. Train the main job (`task=vit heads=8`, softmax attention) for `--pretrain-epochs`, or take
   `--pretrained`, a checkpoint of such a run (its wall time is then read from its metrics.json).
2. For each attention of `--attentions`: fine-tune from that checkpoint with `init_from=` for `--finetune-epochs`
   (a lower learning rate, one warm-up epoch), and train the same model from scratch for (a) the fine-tune's epochs
   and (b) the pre-training's plus the fine-tune's epochs, the same total time as pre-training then fine-tuning.

Every run is `python -m attnkit ...` in its own run directory (see benchmarks/recipe.py); the table gives each run's
test accuracy and wall time. `local` runs with `attention.window=4` (on 17 tokens a window of 64 would be exact
softmax attention).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from recipe import run

OPTIONS = {"local": ["attention.window=4"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attentions", nargs="+", default=["linear", "local"])
    parser.add_argument("--pretrain-epochs", type=int, default=150)
    parser.add_argument("--finetune-epochs", type=int, default=20)
    parser.add_argument("--finetune-lr", type=float, default=1e-3)
    parser.add_argument("--pretrained", type=Path, help="a last.ckpt of a softmax run (skips pre-training)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="outputs/benchmarks")
    parser.add_argument("overrides", nargs="*", help="attnkit overrides for every run, after --")
    args = parser.parse_args()
    base = ["task=vit", "heads=8", *args.overrides]
    out = Path(args.out) / datetime.now().strftime("swap_%Y-%m-%d_%H-%M-%S")
    p, f = args.pretrain_epochs, args.finetune_epochs
    rows = []
    if args.pretrained is None:
        pre = run([*base, f"trainer.max_epochs={p}"], args.seed, out / "softmax")
        ckpt = out / "softmax" / "checkpoints" / "last.ckpt"
    else:
        ckpt = args.pretrained.resolve()
        pre = {**json.loads((ckpt.parent.parent / "metrics.json").read_text()), "wall_s": float("nan")}
        p = int(pre["epochs"])
    rows.append(("softmax", "scratch", p, pre["test/acc"], pre["wall_s"]))
    for name in args.attentions:
        model = [*base, f"attention={name}", *OPTIONS.get(name, [])]
        tune = [f"init_from={ckpt}", f"task.lr={args.finetune_lr}", "task.warmup_epochs=1"]
        runs = (
            ("fine-tuned from softmax", [*model, *tune, f"trainer.max_epochs={f}"], f),
            ("scratch", [*model, f"trainer.max_epochs={f}"], f),
            ("scratch", [*model, f"trainer.max_epochs={p + f}"], p + f),
        )
        for i, (start, overrides, epochs) in enumerate(runs):
            m = run(overrides, args.seed, out / f"{name}-{i}")
            rows.append((name, start, epochs, m["test/acc"], m["wall_s"]))
    print(f"\n`python benchmarks/swap_attention.py {' '.join(args.overrides)}`, seed {args.seed}\n")
    print("| attention | start | epochs | test accuracy | wall time (s) |")
    print("|---|---|---:|---:|---:|")
    for name, start, epochs, acc, wall in rows:
        print(f"| {name} | {start} | {epochs} | {acc:.2%} | {wall:.0f} |")


if __name__ == "__main__":
    main()
