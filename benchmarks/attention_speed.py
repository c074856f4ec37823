"""Forward+backward time and peak memory of every registered attention against sequence length.

    python benchmarks/attention_speed.py                        # N = 256 … 8192, B=1, H=8, D=64
    python benchmarks/attention_speed.py --lengths 256 1024 --repeats 2
    python benchmarks/attention_speed.py --level kernel --variants "raw SDPA" softmax --lengths 1024 4096

Each (variant, N) runs in a fresh subprocess so that its peak resident memory (minus the process's memory before the
measurement) belongs to it alone. Besides the registered variants (inside attnkit's multi-head layer), two references
run the same work: torch.nn.MultiheadAttention(need_weights=False) and raw F.scaled_dot_product_attention on
pre-projected heads; a third, `projections`, runs only the layer's four Linear maps (q, k, v, out), and the table's
last column gives their share of each layer's time at the largest N (projections time / layer time). `--level
kernel` times the kernels alone on the same pre-projected heads as raw SDPA (no projections), which compares a
kernel with SDPA on equal terms. Prints a Markdown table and writes a PNG plot (time and memory against N, log-log).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REFERENCES = ("nn.MultiheadAttention", "raw SDPA", "projections")
LAYER_ONLY = ("nn.MultiheadAttention", "projections")


def measure(
    variant: str,
    n: int,
    batch: int,
    heads: int,
    head_dim: int,
    repeats: int,
    causal: bool,
    level: str,
    device: str = "cpu",
    autocast: str | None = None,
) -> dict:
    """Runs inside the child process: median seconds of forward+backward, and peak memory in MiB (resident memory
    on CPU, allocated memory on CUDA)."""
    import contextlib

    import torch
    import torch.nn.functional as F

    import attnkit
    from attnkit.nn import MultiHeadAttention

    torch.manual_seed(0)
    torch.set_default_device(device)
    cuda = device.startswith("cuda")
    dim = heads * head_dim
    x = torch.randn(batch, n, dim, requires_grad=True)
    if variant == "nn.MultiheadAttention":
        layer = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
        mask = torch.nn.Transformer.generate_square_subsequent_mask(n) if causal else None

        def step() -> torch.Tensor:
            return layer(x, x, x, need_weights=False, attn_mask=mask, is_causal=causal)[0]

    elif variant == "raw SDPA":
        q, k, v = (torch.randn(batch, heads, n, head_dim, requires_grad=True) for _ in range(3))

        def step() -> torch.Tensor:
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    elif variant == "projections":  # the four Linear maps of attnkit's layer, no attention between them
        layer = MultiHeadAttention(dim, heads)

        def step() -> torch.Tensor:
            return layer.out_proj(layer.q_proj(x)) + layer.k_proj(x) + layer.v_proj(x)

    else:
        if variant not in attnkit.available("attention"):
            raise SystemExit(f"unknown attention {variant!r}")
        spec = {"name": variant}
        options = attnkit.registry.defaults("attention", variant)
        if "max_length" in options:  # a kernel that declares its maximum length gets exactly N
            spec["max_length"] = n
        if "cpu_eager_max_len" in options:  # the fused kernel, whatever the length
            spec["cpu_eager_max_len"] = 0
        if level == "kernel":
            kernel = attnkit.build_spec("attention", spec, dim=dim, heads=heads, head_dim=head_dim)
            q, k, v = (torch.randn(batch, heads, n, head_dim, requires_grad=True) for _ in range(3))

            def step() -> torch.Tensor:
                return kernel(q, k, v, causal=causal)

        else:
            layer = MultiHeadAttention(dim, heads, attention=spec)

            def step() -> torch.Tensor:
                return layer(x, causal=causal)

    precision = torch.autocast(device.split(":")[0], dtype=getattr(torch, autocast)) if autocast else None

    def run() -> None:
        with precision or contextlib.nullcontext():
            out = step()
        out.float().sum().backward()
        if cuda:
            torch.cuda.synchronize()

    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    run()  # warm-up, and the peak
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return {"seconds": sorted(times)[len(times) // 2], "peak_mib": max(0, peak - before) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096, 8192])
    parser.add_argument("--variants", nargs="+", default=None, help="default: every registered attention")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--causal", action="store_true")
    parser.add_argument("--level", choices=["layer", "kernel"], default="layer", help="with or without projections")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--autocast", choices=["bfloat16", "float16"], help="mixed precision (default: float32)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per measurement before giving up")
    parser.add_argument("--plot", default=None, help="PNG path (default under outputs/benchmarks/)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, n = args.child.rsplit(":", 1)
        result = measure(
            variant,
            int(n),
            args.batch,
            args.heads,
            args.head_dim,
            args.repeats,
            args.causal,
            args.level,
            device=args.device,
            autocast=args.autocast,
        )
        print(json.dumps(result))
        return

    import attnkit

    references = REFERENCES if args.level == "layer" else ("raw SDPA",)
    variants = args.variants or [*references, *attnkit.available("attention")]
    for layer_only in LAYER_ONLY:
        if args.level == "kernel" and layer_only in variants:
            parser.error(f"{layer_only} is a layer measurement: it has no --level kernel measurement")
    results: dict[str, dict[int, dict | None]] = {v: {} for v in variants}
    for variant in variants:
        for n in args.lengths:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                f"{variant}:{n}",
                "--batch",
                str(args.batch),
                "--heads",
                str(args.heads),
                "--head-dim",
                str(args.head_dim),
                "--repeats",
                str(args.repeats),
                "--level",
                args.level,
                "--device",
                args.device,
                *(["--autocast", args.autocast] if args.autocast else []),
            ]
            if args.causal:
                cmd.append("--causal")
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                ok = proc.returncode == 0
                results[variant][n] = json.loads(proc.stdout.strip().splitlines()[-1]) if ok else None
                lines = proc.stderr.strip().splitlines()
                note = "" if ok else (lines[-1][:100] if lines else f"exit code {proc.returncode}")
            except subprocess.TimeoutExpired:
                results[variant][n], note = None, "timed out"
            r = results[variant][n]
            shown = f"{r['seconds']:.3f} s, {r['peak_mib']:.0f} MiB" if r else note
            print(f"{variant:>22} N={n:>5}: {shown}", file=sys.stderr, flush=True)

    kind = ("causal" if args.causal else "bidirectional") + (", kernels only" if args.level == "kernel" else "")
    kind += f", {args.device}" + (f", autocast {args.autocast}" if args.autocast else ", float32")
    print(f"\nForward+backward, B={args.batch}, H={args.heads}, D={args.head_dim}, {kind}; seconds (peak MiB)\n")
    longest = max(args.lengths)
    projections = results.get("projections", {}).get(longest)  # the share of the layer time they take
    share = f" projections' share at N={longest} |" if projections else ""
    print("| variant | " + " | ".join(f"N={n}" for n in args.lengths) + f" |{share}")
    print("|---|" + "---:|" * (len(args.lengths) + bool(share)))
    for variant in variants:
        cells = [
            f"{r['seconds']:.3f} ({r['peak_mib']:.0f})" if (r := results[variant][n]) else "—" for n in args.lengths
        ]
        if projections:
            r = results[variant][longest]
            cells.append(
                f"{projections['seconds'] / r['seconds']:.0%}"
                if r and variant not in ("projections", "raw SDPA")
                else ""
            )
        print(f"| {variant} | " + " | ".join(cells) + " |")
    suffix = ("_kernel" if args.level == "kernel" else "") + ("_causal" if args.causal else "")
    plot(results, args.lengths, Path(args.plot or f"outputs/benchmarks/attention_speed{suffix}.png"), kind)


def plot(results: dict, lengths: list[int], path: Path, kind: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for variant, by_n in results.items():
        ns = [n for n in lengths if by_n.get(n)]
        if not ns:
            continue
        style = "--" if variant in REFERENCES else "-"
        axes[0].plot(ns, [by_n[n]["seconds"] for n in ns], style, marker="o", label=variant)
        axes[1].plot(ns, [max(by_n[n]["peak_mib"], 1) for n in ns], style, marker="o", label=variant)
    for ax, label in zip(axes, ("seconds (forward+backward)", "peak memory (MiB)"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length N")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"attention variants, {kind}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"\nplot: {path}")


if __name__ == "__main__":
    main()
