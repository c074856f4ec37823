"""Length extrapolation of positional encodings with `task=lm`: a character model trained on windows of L characters,
then `mode=test task.eval_lengths=[1,2,4]` scores its checkpoint on test windows of L, 2L and 4L.

    python benchmarks/pos_enc_extrapolation.py                        # Tiny Shakespeare, L = 64, seeds 0 1 2
    python benchmarks/pos_enc_extrapolation.py --data corpus.txt --length 128 --steps 1000 --seeds 0

Each encoding (`none`, `sinusoidal`, the same at `pos_enc.scale=1`, `learned` with `pos_enc.interpolate=true`,
`rope`, `alibi`, `t5`) trains one run per seed with the same recipe (`python -m attnkit task=lm data=text
data.path=... pos_enc=...`), then is tested from its checkpoint at the three lengths; a `learned` table without
interpolation is tested too, and the line that refuses it is printed. The text is split as nanoGPT splits it (train
the first 90 %, then validation and test, 5 % each). The decoder's token embeddings start at GPT-2's scale (std
0.02), and it adds a sinusoidal table at that scale; `sinusoidal-1` adds it at its own, which drowns them. Prints a
Markdown table of test bits per character, mean ± std over the seeds, with the training time per run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
# label -> the positional encoding and its options
ENCODINGS = {
    "none": ["pos_enc=none"],
    "sinusoidal": ["pos_enc=sinusoidal"],  # added at the token embeddings' scale, 0.02, in the decoder
    "sinusoidal-1": ["pos_enc=sinusoidal", "pos_enc.scale=1"],  # at its own scale
    "learned": ["pos_enc=learned", "pos_enc.interpolate=true"],
    "rope": ["pos_enc=rope"],
    "alibi": ["pos_enc=alibi"],
    "t5": ["pos_enc=t5"],
}


def attnkit(*overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "attnkit", *overrides], capture_output=True, text=True, cwd=ROOT)


def run(args: argparse.Namespace, name: str, seed: int, out: Path) -> tuple[dict, float]:
    """Encoding `name` trained with `seed`, then tested at 1, 2 and 4 times its context: (scores, seconds)."""
    folder = out / f"{name}-seed{seed}"
    common = [
        "task=lm",
        "data=text",
        f"data.path={args.data}",
        f"task.context={args.length}",
        f"model.dim={args.dim}",
        f"model.depth={args.depth}",
        f"heads={args.heads}",
        f"data.batch_size={args.batch}",
        *ENCODINGS[name],
    ]
    trained = attnkit(
        *common,
        f"seed={seed}",
        f"+trainer.max_steps={args.steps}",
        "trainer.max_epochs=-1",
        "trainer.enable_progress_bar=false",
        "task.attention_map=false",
        f"hydra.run.dir={folder}",
    )
    if trained.returncode:
        sys.exit(f"{name} (seed {seed}) failed:\n{trained.stderr[-2000:]}")
    seconds = json.loads((folder / "metrics.json").read_text())["train_time_s"]
    ckpt = folder / "checkpoints" / "last.ckpt"
    tested = attnkit("mode=test", f"ckpt_path={ckpt}", "task.eval_lengths=[1,2,4]", f"hydra.run.dir={folder}-test")
    if tested.returncode:
        sys.exit(f"testing {name} (seed {seed}) failed:\n{tested.stderr[-2000:]}")
    return json.loads((folder.with_name(folder.name + "-test") / "metrics.json").read_text())["lengths"], seconds


def refusal(out: Path, args: argparse.Namespace) -> str:
    """The line that refuses a learned table (no interpolation) at twice its length."""
    folder = out / "learned-plain"
    trained = attnkit(
        "task=lm",
        "data=text",
        f"data.path={args.data}",
        f"task.context={args.length}",
        "model.dim=32",
        "model.depth=1",
        "heads=2",
        "pos_enc=learned",
        "+trainer.max_steps=1",
        "trainer.max_epochs=-1",
        "trainer.enable_progress_bar=false",
        "task.attention_map=false",
        f"hydra.run.dir={folder}",
    )
    if trained.returncode:
        sys.exit(f"learned failed:\n{trained.stderr[-2000:]}")
    ckpt = folder / "checkpoints" / "last.ckpt"
    tested = attnkit("mode=test", f"ckpt_path={ckpt}", "task.eval_lengths=[1,2]", f"hydra.run.dir={folder}-test")
    return tested.stderr.strip().splitlines()[-1] if tested.returncode else "(not refused)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="a plain-text file")
    parser.add_argument("--encodings", nargs="+", choices=list(ENCODINGS), default=list(ENCODINGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--length", type=int, default=64, help="the training context L")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "pos_enc_extrapolation")
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"error: no text file at {args.data}; give --data path/to/text.txt")
    args.data = args.data.resolve()
    out = args.out / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    lengths = [args.length * m for m in (1, 2, 4)]
    rows = []
    for name in args.encodings:
        scores: dict[int, list[float]] = {n: [] for n in lengths}
        times = []
        for seed in args.seeds:
            measured, seconds = run(args, name, seed, out)
            times.append(seconds)
            for n in lengths:
                scores[n].append(measured[str(n)]["bits_per_character"])
            print(f"{name} seed {seed}: " + ", ".join(f"{n}: {scores[n][-1]:.3f}" for n in lengths), flush=True)
        rows.append((name, scores, statistics.mean(times)))

    def cell(values: list[float]) -> str:
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.3f} ± {spread:.3f}"

    print(
        f"\ntask=lm on {args.data.name}, trained at L={args.length} ({args.steps} steps of {args.batch} windows, "
        f"width {args.dim}, depth {args.depth}, {args.heads} heads; seeds {', '.join(map(str, args.seeds))}); "
        f"test bits per character, mean ± std\n"
    )
    print("| pos_enc | " + " | ".join(f"{n} ({n // args.length}L)" for n in lengths) + " | training time (s) |")
    print("|---|" + "---:|" * (len(lengths) + 1))
    for name, scores, seconds in rows:
        label = " ".join(
            f"`{arg.split('=', 1)[1]}`" if arg.startswith("pos_enc=") else f"`{arg}`" for arg in ENCODINGS[name]
        )
        print(f"| {label} | " + " | ".join(cell(scores[n]) for n in lengths) + f" | {seconds:.0f} |")
    print(f"\n`learned` without interpolation, tested at 2L: {refusal(out, args)}")


if __name__ == "__main__":
    main()
