"""Where the softmax kernel's explicit CPU path beats SDPA: the kernel alone, by shape, in training and inference.

    python benchmarks/softmax_cpu_paths.py                  # the grid below, 2 threads
    python benchmarks/softmax_cpu_paths.py --keys 17 65 --head-dims 8 64 --rounds 15

`attention=softmax` computes softmax(QKᵀ/√d)V with torch's scaled_dot_product_attention (SDPA), or on the CPU with
explicit matrix products where that is faster: `attnkit/nn/attention/softmax.py` holds the table this script measures
(`CPU_EXPLICIT_MAX_KEYS`: per head dimension, the most keys for which the explicit path is used, in training and in
inference). For each shape, the two paths run alternately in short rounds; `train` is forward and backward, `infer` a
forward pass under `torch.inference_mode`. q, k and v are what the model hands the kernel: strided views ([B, H, N,
d], B·H sequences) of one projection's output [B, N, 3·H·d], which the explicit path copies and SDPA reads as they
are. The table gives each path's median time and the median of the per-round ratios explicit / SDPA with their
interquartile range, then the thresholds the measurements give (the longest N up to which the explicit path is at
least as fast at every measured length).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from attnkit.registry import build_spec

PATHS = {"SDPA": {"name": "softmax", "cpu_eager_max_len": 0}, "explicit": {"name": "eager"}}


def timer(kernel: torch.nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mode: str) -> Callable[[], None]:
    """One call of `kernel` on q, k, v: forward and backward (`train`) or a forward pass (`infer`)."""
    b, h, n, d = q.shape
    packed = torch.cat([t.transpose(1, 2).flatten(2) for t in (q, k, v)], dim=-1)  # [B, N, 3·H·d]: one projection's

    def heads(x: torch.Tensor) -> list[torch.Tensor]:  # the model's views of it: [B, H, N, d], strided
        return [t.unflatten(-1, (h, d)).transpose(1, 2) for t in x.split(h * d, dim=-1)]

    if mode == "train":
        packed.requires_grad_()
        grad = torch.randn(b, h, n, d)

        def step() -> None:
            kernel(*heads(packed)).backward(grad)

        return step

    def forward() -> None:
        with torch.inference_mode():
            kernel(*heads(packed))

    return forward


def measure(n: int, d: int, rows: int, mode: str, rounds: int, round_s: float) -> dict[str, float]:
    """Median ms per call of each path and the median, 25th and 75th percentile of the per-round ratios."""
    torch.manual_seed(0)
    heads = 8 if rows % 8 == 0 else 1
    q, k, v = (torch.randn(rows // heads, heads, n, d) for _ in range(3))
    calls = {name: timer(build_spec("attention", spec), q, k, v, mode) for name, spec in PATHS.items()}
    for call in calls.values():  # warm-up, and the calls per round
        call()
    start = time.perf_counter()
    calls["SDPA"]()
    per_round = max(1, int(round_s / max(time.perf_counter() - start, 1e-6)))
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(per_round):
                call()
            times[name].append((time.perf_counter() - start) / per_round * 1000)
    ratios = sorted(e / s for e, s in zip(times["explicit"], times["SDPA"], strict=True))
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {
        "SDPA": statistics.median(times["SDPA"]),
        "explicit": statistics.median(times["explicit"]),
        "ratio": statistics.median(ratios),
        "low": quartiles[0],
        "high": quartiles[2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, nargs="+", default=[17, 33, 50, 65, 97, 129, 197, 257])
    parser.add_argument("--head-dims", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--rows", type=int, default=512, help="B·H: sequences times heads")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--round-s", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"softmax attention kernel on the CPU, {args.threads} threads, B·H = {args.rows} (ms per call)\n")
    print("| mode | head dim | keys | SDPA | explicit | explicit / SDPA | interquartile range |")
    print("|---|---:|---:|---:|---:|---:|---|")
    thresholds: dict[tuple[str, int], int] = {}
    for mode in ("train", "infer"):
        for d in args.head_dims:
            longest, losing = 0, False
            for n in sorted(args.keys):
                r = measure(n, d, args.rows, mode, args.rounds, args.round_s)
                print(
                    f"| {mode} | {d} | {n} | {r['SDPA']:.3f} | {r['explicit']:.3f} | {r['ratio']:.2f} | "
                    f"{r['low']:.2f}–{r['high']:.2f} |",
                    flush=True,
                )
                losing = losing or r["ratio"] > 1.0
                longest = longest if losing else n
            thresholds[(mode, d)] = longest
    print("\nthe longest keys up to which the explicit path is at least as fast, per (mode, head dim):")
    for (mode, d), n in thresholds.items():
        print(f"  {mode:5s} d={d:<3d} {n}")


if __name__ == "__main__":
    main()
