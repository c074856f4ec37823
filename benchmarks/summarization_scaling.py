"""Training-step time and peak memory of the encoder–decoder against source length, per encoder self-attention.

    python benchmarks/summarization_scaling.py  # docs/measured/speed.md: N = 512 … 4096, softmax/eager/local/linear
    python benchmarks/summarization_scaling.py --lengths 512 1024 --repeats 1 --dim 64
    python benchmarks/summarization_scaling.py --device cuda

The summarization setting: long sources, short targets. One training step of the registered `transformer` model as
tasks/seq2seq/module.py takes it: forward(src, tgt_in, src_mask) -> logits, label-smoothed cross-entropy on tgt_out
(padding ignored), backward, AdamW step. Only the encoder self-attention changes (softmax, eager, local, linear);
decoder self-attention and cross-attention stay softmax, so the cross-attention (`--tgt-len` queries against N keys)
grows linearly in N for every variant. Sources are random tokens without padding; dropout is 0.

As in benchmarks/attention_speed.py, each (variant, N) runs in a fresh subprocess: peak memory is the resident
high-water mark minus the process's memory after building the model and data (on CUDA, allocated memory), so it
covers activations, gradients and AdamW state. One warm-up step, then the median of `--repeats` timed steps. Prints a
Markdown table with the growth per doubling of N (2x is linear, 4x quadratic), writes JSON results and a PNG plot
(log-log) under `--out`; a point that fails or runs out of memory is recorded with its reason and the run goes on.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

VARIANTS = ("softmax", "eager", "local", "linear")  # eager: softmax with the N x N scores materialised
PAD, FIRST_TOKEN = 0, 3  # ids 0-2: padding, BOS, EOS; random tokens start above them
LABEL_SMOOTHING, LR, WEIGHT_DECAY = 0.1, 5e-4, 1e-4
FORWARDED = ("batch", "tgt_len", "dim", "depth", "heads", "vocab", "window", "repeats", "device")  # to each child


def encoder_attention(variant: str, n: int, window: int) -> dict[str, Any]:
    """The encoder's attention spec: `window` for a windowed kernel, `max_length=N` for one that declares it."""
    import attnkit

    spec: dict[str, Any] = {"name": variant}
    options = attnkit.registry.defaults("attention", variant)
    if "window" in options:
        spec["window"] = window
    if "max_length" in options:
        spec["max_length"] = n
    return spec


def measure(
    variant: str,
    n: int,
    *,
    batch: int,
    tgt_len: int,
    dim: int,
    depth: int,
    heads: int,
    vocab: int,
    window: int,
    repeats: int,
    device: str,
) -> dict[str, float]:
    """Runs inside the child process: median seconds of a training step, and peak memory in MiB above the built
    model (resident memory on CPU, allocated memory on CUDA)."""
    import torch
    import torch.nn.functional as F

    import attnkit
    from attnkit.train.optim import param_groups

    torch.manual_seed(0)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    spec = {
        "name": "transformer",
        "dim": dim,
        "depth": depth,
        "heads": heads,
        "max_len": max(n, tgt_len),
        "dropout": 0.0,
        "encoder": {"attention": encoder_attention(variant, n, window)},
    }
    model = attnkit.build_spec("model", spec, src_vocab=vocab, tgt_vocab=vocab, pad_id=PAD, share_vocab=True)
    model = model.to(dev).train()
    optimizer = torch.optim.AdamW(param_groups(model, WEIGHT_DECAY), lr=LR, betas=(0.9, 0.98))
    src = torch.randint(FIRST_TOKEN, vocab, (batch, n), device=dev)  # [B, N], no padding
    src_mask = src.eq(PAD)  # [B, N], all False
    tgt_in, tgt_out = torch.randint(FIRST_TOKEN, vocab, (2, batch, tgt_len), device=dev)  # [B, Nt] each

    def step() -> None:
        logits = model(src, tgt_in, src_mask)  # [B, Nt, V]
        loss = F.cross_entropy(
            logits.flatten(0, 1).float(), tgt_out.flatten(), ignore_index=PAD, label_smoothing=LABEL_SMOOTHING
        )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize(dev)

    if cuda:
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    step()  # warm-up; creates the AdamW state
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(dev) if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": statistics.median(times), "peak_mib": max(0, peak - before) / 2**20}


def run_point(args: argparse.Namespace, variant: str, n: int) -> dict[str, Any]:
    """Measure one (variant, N) in a fresh process: its result, or {"error": one line} if it fails."""
    cmd = [sys.executable, __file__, "--child", f"{variant}:{n}"]
    for key in FORWARDED:
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout:.0f} s"}
    if proc.returncode == 0:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    if lines := proc.stderr.strip().splitlines():
        return {"error": lines[-1][:160]}
    if proc.returncode < 0:  # killed without a word, e.g. by the kernel's out-of-memory killer (signal 9)
        return {
            "error": f"killed by signal {-proc.returncode}" + (" (out of memory?)" if proc.returncode == -9 else "")
        }
    return {"error": f"exit code {proc.returncode}"}


def label(variant: str, window: int) -> str:
    """How a variant is shown in the table, the progress lines and the plot."""
    return f"{variant} (window {window})" if variant == "local" else variant


def growth_per_doubling(points: list[tuple[int, float]]) -> float | None:
    """2^slope of the least-squares line through log2 N, log2 value: 2 for linear growth, 4 for quadratic."""
    points = [(n, v) for n, v in points if v > 0]
    if len(points) < 2 or len({n for n, _ in points}) < 2:
        return None
    xs, ys = [math.log2(n) for n, _ in points], [math.log2(v) for _, v in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return 2.0**slope


def table(results: dict[str, dict[int, dict]], lengths: list[int], window: int) -> list[str]:
    """Markdown rows: N against time and peak memory per variant, then the end-to-end ratio and growth per doubling."""
    columns = [(v, key) for v in results for key in ("seconds", "peak_mib")]
    header = [f"{label(v, window)} {'time (s)' if key == 'seconds' else 'peak MiB'}" for v, key in columns]
    rows = ["| N | " + " | ".join(header) + " |", "|---:|" + "---:|" * len(columns)]
    for n in lengths:
        cells = []
        for v, key in columns:
            r = results[v][n]
            cells.append("—" if "error" in r else f"{r[key]:.3f}" if key == "seconds" else f"{r[key]:.0f}")
        rows.append(f"| {n} | " + " | ".join(cells) + " |")
    first, last = lengths[0], lengths[-1]
    ratios, growth = [], []
    for v, key in columns:
        a, b = results[v][first].get(key), results[v][last].get(key)
        ratios.append(f"{b / a:.1f}x" if a and b else "—")
        g = growth_per_doubling([(n, r[key]) for n, r in results[v].items() if "error" not in r])
        growth.append(f"{g:.2f}x" if g else "—")
    if last != first:
        rows.append(f"| N={last} / N={first} | " + " | ".join(ratios) + " |")
    rows.append("| per doubling of N | " + " | ".join(growth) + " |")
    return rows


def plot(results: dict[str, dict[int, dict]], window: int, path: Path, title: str) -> None:
    """Log-log time and peak memory against N, one line per variant, with N and N² guides on the time panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for variant, by_n in results.items():
        ns = [n for n, r in by_n.items() if "error" not in r]
        if ns:
            axes[0].plot(ns, [by_n[n]["seconds"] for n in ns], marker="o", label=label(variant, window))
            axes[1].plot(ns, [max(by_n[n]["peak_mib"], 1) for n in ns], marker="o", label=label(variant, window))
    measured = [(n, r["seconds"]) for by_n in results.values() for n, r in by_n.items() if "error" not in r]
    n0, t0 = min(measured)
    ns = sorted({n for n, _ in measured})
    for power, style in ((1, ":"), (2, "-.")):
        guide = [t0 * (n / n0) ** power for n in ns]
        axes[0].plot(ns, guide, style, color="gray", label=f"∝ N{'²' if power == 2 else ''}")
    for ax, ylabel in zip(axes, ("seconds per training step", "peak memory (MiB)"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("source length N")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048, 4096], help="source lengths N")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help="encoder self-attention variants")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--tgt-len", type=int, default=32, help="target tokens per example")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--depth", type=int, default=3, help="encoder and decoder layers")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--window", type=int, default=128, help="local attention: keys seen on each side")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps after one warm-up step (median)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per measurement before giving up")
    parser.add_argument("--out", default="outputs/benchmarks", help="folder for the JSON results and the PNG plot")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, n = args.child.rsplit(":", 1)
        print(json.dumps(measure(variant, int(n), **{key: getattr(args, key) for key in FORWARDED})))
        return

    import torch

    import attnkit

    unknown = [v for v in args.variants if v not in attnkit.available("attention")]
    if unknown:
        parser.error(f"unknown attention {', '.join(unknown)}; registered: {', '.join(attnkit.available('attention'))}")
    lengths = sorted(set(args.lengths))
    results: dict[str, dict[int, dict]] = {v: {} for v in args.variants}
    for variant in args.variants:
        for n in lengths:
            r = results[variant][n] = run_point(args, variant, n)
            shown = r["error"] if "error" in r else f"{r['seconds']:.3f} s, {r['peak_mib']:.0f} MiB"
            print(f"{label(variant, args.window):>20} N={n:>5}: {shown}", file=sys.stderr, flush=True)

    threads = f", torch threads {torch.get_num_threads()}" if args.device == "cpu" else ""
    setting = (
        f"B={args.batch}, target {args.tgt_len} tokens, dim {args.dim}, {args.depth}+{args.depth} layers, "
        f"{args.heads} heads, vocab {args.vocab}; {args.device}{threads}, float32, median of {args.repeats}"
    )
    print(
        f"\nTraining step (forward + backward + AdamW) of the encoder–decoder against source length N, {setting}. "
        f"Encoder self-attention varies; decoder self- and cross-attention are softmax. Peak MiB: above the built "
        f"model, each point in its own process.\n"
    )
    print("\n".join(table(results, lengths, args.window)))
    print("\nGrowth per doubling of N: 2x is linear in N, 4x quadratic (least-squares slope over the measured N).")
    for variant, by_n in results.items():
        for n, r in by_n.items():
            if "error" in r:
                print(f"— {label(variant, args.window)}, N={n}: {r['error']}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "summarization_scaling" + ("" if args.device == "cpu" else f"_{args.device.replace(':', '')}")
    settings = {key: getattr(args, key) for key in ("lengths", "variants", *FORWARDED)}
    settings |= {"torch": torch.__version__, "threads": torch.get_num_threads()}
    records = [
        {"variant": v, "label": label(v, args.window), "n": n, **r}
        for v, by_n in results.items()
        for n, r in by_n.items()
    ]
    (out / f"{stem}.json").write_text(json.dumps({"settings": settings, "results": records}, indent=2) + "\n")
    print(f"\nresults: {out / f'{stem}.json'}")
    if any("error" not in r for by_n in results.values() for r in by_n.values()):
        plot(results, args.window, out / f"{stem}.png", f"encoder–decoder training step, {setting}")
        print(f"plot: {out / f'{stem}.png'}")


if __name__ == "__main__":
    main()
