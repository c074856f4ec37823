"""MQAR ranking: every registered causal attention, every token mixer, and hybrids, from one multirun, with its summary.

    python benchmarks/mqar_sweep.py                     # context 256, 16 and 64 pairs, widths 64 and 128, 3 seeds
    python benchmarks/mqar_sweep.py --pairs 16 --widths 64 --seeds 0 --steps 200     # a quick look
    python benchmarks/mqar_sweep.py --dry-run           # print the command only
    python benchmarks/mqar_sweep.py --stacks gla,gla gla,softmax    # chosen stacks only (one per argument)

Runs `python -m attnkit -m task=lm ...` once: the single attentions (every registered attention with a causal form
but `eager`, which is softmax computed another way), every registered token mixer (`attnkit.nn.mixers`), and the
hybrid stacks local+softmax, linear+softmax, gla+softmax and gated_deltanet+softmax, two layers each,
`model.layers` naming each layer's attention or mixer (the single ones too, so that the sweep is one axis; local
attention looks `--window` keys back, a quarter of the context unless given). Each
job trains `--steps` steps of `--batch` sequences drawn from `data.train_size` sequences; `--jobs` jobs run side by
side with the cores divided between them (Hydra's joblib launcher). The sweep folder's summary.md holds test/acc
(answer accuracy) as mean ± std over the seeds, with the training time; the command and the folder are printed.

The vocabulary is 512 symbols (keys from the lower half, values from the upper half), not Zoology's 8,192: the
output layer over 8,192 symbols at every answer would be most of a step's time on a CPU, and 512 leaves 255 keys and
256 values for at most 64 pairs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import attnkit

HYBRIDS = (("local", "softmax"), ("linear", "softmax"), ("gla", "softmax"), ("gated_deltanet", "softmax"))


def command(args: argparse.Namespace) -> list[str]:
    causal = [n for n in attnkit.available("attention") if attnkit.get("attention", n).supports_causal]
    causal = [n for n in causal if n != "eager"]  # eager is softmax computed another way
    window = args.window or args.context // 4

    def spec(name: str) -> str:  # local attention sees `window` keys back: a quarter of the context by default
        return f"{{name:local,window:{window}}}" if name == "local" else name

    mixers = [n for n in attnkit.available("mixer") if n != "attention"]
    stacks = [(name, name) for name in causal + mixers] + list(HYBRIDS)
    if args.stacks:
        stacks = [tuple(stack.split(",")) for stack in args.stacks]
    layers = ["[" + ",".join(spec(name) for name in stack) + "]" for stack in stacks]
    return [
        sys.executable,
        "-m",
        "attnkit",
        "-m",
        "task=lm",
        f"task.context={args.context}",
        f"data.vocab_size={args.vocab}",
        f"data.batch_size={args.batch}",
        f"data.num_kv_pairs={','.join(map(str, args.pairs))}",
        f"model.dim={','.join(map(str, args.widths))}",
        "model.depth=2",
        f"model.layers={','.join(layers)}",
        f"+trainer.max_steps={args.steps}",
        "trainer.max_epochs=-1",
        f"seed={','.join(map(str, args.seeds))}",
        "trainer.enable_progress_bar=false",
        "task.attention_map=false",
        *(["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}"] if args.jobs > 1 else []),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=512)
    parser.add_argument("--pairs", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--window", type=int, default=0, help="local attention's window (0: a quarter of --context)")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--jobs", type=int, default=2, help="jobs side by side (1: one after another)")
    parser.add_argument(
        "--stacks", nargs="+", default=[], help="stacks to run, e.g. gla,gla gla,softmax (default: all)"
    )
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    cmd = command(args)
    print(" ".join(cmd[1:]), flush=True)
    if not args.dry_run:
        subprocess.run(cmd, check=True)
        print("summary: outputs/multirun/<date>/<time>/summary.md (the newest sweep folder)")


if __name__ == "__main__":
    main()
