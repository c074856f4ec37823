"""How a training step of the segmentation ViT grows with the resolution, per attention: doubling the crop's sides
gives four times the tokens, so attention's quadratic part grows 16-fold and the rest 4-fold.

    python benchmarks/segment_resolution.py
    python benchmarks/segment_resolution.py --sizes 120x160 240x320 --variants softmax local linear

The model is `experiment=camvid`'s (conv stem, a token every 8 pixels, width 128, depth 6) built with each variant;
each step is forward, backward and an AdamW update on random images of a batch of 8, timed after two warm-up steps,
variants alternating so that drift in the machine's speed falls on all of them. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import attnkit
from attnkit.registry import build_spec

VARIANTS = {
    "softmax": {"attention": "softmax"},
    "local": {"attention": "local"},
    "linear": {"attention": "linear"},
    "hybrid linear/softmax": {"layers": ["linear", "linear", "softmax", "linear", "linear", "softmax"]},
}


def model(variant: str, size: tuple[int, int]) -> torch.nn.Module:
    spec = {"name": "segmenter", "stem": "conv", "patch_size": 8, "dim": 128, "depth": 6, "heads": 4}
    spec.update(pos_enc="rope2d", ffn={"name": "mlp", "mlp_ratio": 4.0}, **VARIANTS[variant])
    return build_spec("model", spec, image_size=size, in_channels=3, num_classes=11)


def step_time(net: torch.nn.Module, size: tuple[int, int], batch: int, steps: int) -> float:
    optimizer = torch.optim.AdamW(net.parameters())
    images, masks = torch.randn(batch, 3, *size), torch.randint(0, 11, (batch, *size))
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(images), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["120x160", "240x320"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    attnkit.available("attention")
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    seconds: dict[tuple[str, tuple[int, int]], list[float]] = {}
    nets = {(v, s): model(v, s) for v in args.variants for s in sizes}
    for _ in range(args.rounds):  # alternating: every variant and size in every round
        for key, net in nets.items():
            seconds.setdefault(key, []).append(step_time(net, key[1], args.batch, args.steps))
    tokens = [(h // 8) * (w // 8) for h, w in sizes]
    print(f"\nbatch {args.batch}, {torch.get_num_threads()} threads, {os.cpu_count()} CPU cores\n")
    header = " | ".join(f"{h}x{w} ({n} tokens), s / step" for (h, w), n in zip(sizes, tokens, strict=True))
    print(f"| variant | {header} | growth per doubling |")
    print("|---|" + "---:|" * len(sizes) + "---:|")
    for variant in args.variants:
        times = [statistics.median(seconds[(variant, s)]) for s in sizes]
        growth = (times[-1] / times[0]) ** (1 / max(1, len(sizes) - 1))
        print(f"| {variant} | {' | '.join(f'{t:.3f}' for t in times)} | ×{growth:.2f} |")


if __name__ == "__main__":
    main()
