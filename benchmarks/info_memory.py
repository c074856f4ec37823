"""mode=info's memory estimate against the memory a training run really takes, for a few configs.

    python benchmarks/info_memory.py
    python benchmarks/info_memory.py --configs "task=classify attention=eager" "task=vit"

For each config: the estimate of `mode=info` (activations kept for the backward pass at the configured batch, plus
weights, gradients and AdamW's moments), then a real training run of 30 steps, each config in its own process (so
that no config inherits another's freed memory), whose resident memory is sampled: measured = its peak minus the
resident memory just before training (the data and the model are already loaded then, so they count in neither).
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import attnkit
from attnkit.train.task import PeakMemory, _rss

CONFIGS = (
    "task=vit",
    "task=classify attention=eager",
    "task=classify attention=linear",
    "task=translation model.dim=256 model.depth=3",
)


def measure(overrides: list[str]) -> tuple[dict, float]:
    """(mode=info's report, measured training memory in MiB) for one config."""
    from attnkit.train.trainer import make_trainer

    extra = ("trainer.enable_progress_bar=false", "+trainer.limit_train_batches=30", "+trainer.limit_val_batches=0")
    cfg = attnkit.compose(*overrides, *extra)
    cfg["trainer"]["max_epochs"] = 1
    task = attnkit.build_spec("task", cfg["task"])
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
        report = task.info(cfg, run_dir=Path(folder) / "info")
        cfg, task, setup = task.prepare(cfg)
        module, datamodule = task.lightning(cfg, setup, None)
        trainer = make_trainer(cfg["trainer"], Path(folder) / "run", monitor=task.monitor, checkpoints=False)
        before = _rss()
        with PeakMemory(interval=0.005) as memory:
            trainer.fit(module, datamodule=datamodule)
    return report, memory.peak / 2**20 - before / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # measure one config here, print JSON
    args = parser.parse_args()
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if args.one is not None:
        report, measured = measure(args.one.split())
        print(json.dumps({"report": report, "measured": measured}, default=str))
        return
    rows = []
    for text in args.configs:
        out = subprocess.run([sys.executable, __file__, "--one", text], capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        report, measured = result["report"], result["measured"]
        rows.append((text, report, measured))
        print(f"{text}: estimated {report['estimated_training_mb']} MB, measured {measured:.0f} MB", file=sys.stderr)
    print(f"\nmode=info against 30 training steps, {os.cpu_count()} CPU cores\n")
    print("| config | batch | FLOPs / sample | estimated activations (MB) | estimated training (MB) | measured (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for text, report, measured in rows:
        print(
            f"| `{text}` | {report['batch_size']} | {report['flops_per_sample']:,} | {report['activation_mb']:.0f} | "
            f"{report['estimated_training_mb']:.0f} | {measured:.0f} |"
        )


if __name__ == "__main__":
    main()
