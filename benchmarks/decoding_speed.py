"""Decoding speed of the encoder–decoder: greedy with and without the KV cache, and beam search against greedy.

    python benchmarks/decoding_speed.py                      # batch 32, 128 target tokens, dim 256, 3+3 layers
    python benchmarks/decoding_speed.py --repeats 5 --device cuda

Every sentence decodes exactly `--tokens` target tokens (no end token: eos_id=-1), so the runs do the same work
whatever the random weights predict. The model has the size of the Multi30k recipe (dim 256, 3+3 layers, 4 heads,
a joint vocabulary of 8000). Prints a Markdown table of median times over `--repeats` runs and the ratios the issue
sets as targets: cached greedy at least 3x faster than recomputing the prefix, beam 5 at most 6x greedy.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from attnkit.nn import EncoderDecoder
from attnkit.nn.decoding import beam_search, greedy


def median_seconds(run: Callable[[], torch.Tensor], repeats: int, device: torch.device) -> float:
    """Median wall time of `run` after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--src-len", type=int, default=24, help="source tokens per sentence")
    parser.add_argument("--tokens", type=int, default=128, help="target tokens decoded per sentence")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--depth", type=int, default=3, help="encoder and decoder layers")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--attention", default="softmax")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device(args.device)
    model = EncoderDecoder(
        args.vocab,
        args.vocab,
        dim=args.dim,
        depth=args.depth,
        heads=args.heads,
        attention=args.attention,
        share_vocab=True,
    )
    model = model.to(device).eval()
    src = torch.randint(3, args.vocab, (args.batch, args.src_len), device=device)
    common = {"bos_id": 1, "eos_id": -1, "pad_id": 0, "max_len_a": 0.0, "max_len_b": args.tokens}

    runs: dict[str, Callable[[], torch.Tensor]] = {
        "greedy, cache": lambda: greedy(model, src, **common),
        "greedy, no cache (whole prefix each step)": lambda: greedy(model, src, **common, use_cache=False),
        f"beam {args.beam}, cache": lambda: beam_search(model, src, **common, beam=args.beam),
    }
    assert greedy(model, src, **common).shape == (args.batch, args.tokens)
    seconds = {name: median_seconds(run, args.repeats, device) for name, run in runs.items()}

    threads = torch.get_num_threads() if device.type == "cpu" else "-"
    params = sum(p.numel() for p in model.parameters())
    print(
        f"Batch {args.batch} sentences of {args.src_len} source tokens, {args.tokens} target tokens each; "
        f"model dim {args.dim}, {args.depth}+{args.depth} layers, {args.heads} heads, vocab {args.vocab} "
        f"({params / 1e6:.1f} M parameters), attention={args.attention}; device {device}, torch threads {threads}, "
        f"median of {args.repeats}.\n"
    )
    greedy_cached = seconds["greedy, cache"]
    print("| decoding | time (s) | ms / token step | relative to cached greedy |")
    print("|---|---:|---:|---:|")
    for name, value in seconds.items():
        print(f"| {name} | {value:.3f} | {1000 * value / args.tokens:.1f} | {value / greedy_cached:.2f}x |")
    speedup = seconds["greedy, no cache (whole prefix each step)"] / greedy_cached
    beam_ratio = seconds[f"beam {args.beam}, cache"] / greedy_cached
    print(
        f"\ncache speed-up {speedup:.1f}x (target >= 3x: {'met' if speedup >= 3 else 'NOT met'}); "
        f"beam {args.beam} / greedy {beam_ratio:.1f}x (target <= 6x: {'met' if beam_ratio <= 6 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
