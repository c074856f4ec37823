"""MQAR ranking: every registered causal attention and two hybrids, from one multirun, with its summary.

    python benchmarks/mqar_sweep.py                          # context 256, 16 and 64 pairs, widths 64 and 128, 3 seeds
    python benchmarks/mqar_sweep.py --pairs 16 --widths 64 --seeds 0 --epochs 2     # a quick look
    python benchmarks/mqar_sweep.py --dry-run                # print the two commands only

Runs `python -m attnkit -m task=lm ...` twice (the single attentions, then the hybrid stacks local+softmax and
linear+softmax), two layers each; each sweep folder's summary.md then holds test/acc (answer accuracy) as mean ± std
over the seeds, with the training time. Prints the commands and the summaries' paths.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import attnkit


def commands(args: argparse.Namespace) -> list[list[str]]:
    causal = [n for n in attnkit.available("attention") if attnkit.get("attention", n).supports_causal]
    causal = [n for n in causal if n != "eager"]  # eager is softmax computed another way
    common = [
        "task=lm",
        f"task.context={args.context}",
        f"data.vocab_size={args.vocab}",
        f"data.num_kv_pairs={','.join(map(str, args.pairs))}",
        f"model.dim={','.join(map(str, args.widths))}",
        "model.depth=2",
        f"trainer.max_epochs={args.epochs}",
        f"seed={','.join(map(str, args.seeds))}",
        "trainer.enable_progress_bar=false",
    ]
    base = [sys.executable, "-m", "attnkit", "-m", *common]
    return [
        [*base, f"attention={','.join(causal)}"],
        [*base, "model.layers=[local,softmax],[linear,softmax]"],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--pairs", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    for command in commands(args):
        print(" ".join(command[1:]), flush=True)
        if not args.dry_run:
            subprocess.run(command, check=True)
    if not args.dry_run:
        print("summaries: outputs/multirun/<date>/<time>/summary.md (the two newest sweep folders)")


if __name__ == "__main__":
    main()
