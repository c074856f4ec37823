"""Generation speed and memory of a decoder: softmax with its KV cache against linear and performer recurrent states.

    python benchmarks/recurrent_decoding.py                  # 512, 2048 and 8192 tokens, batch 1, dim 512, 8 heads
    python benchmarks/recurrent_decoding.py --quick          # short lengths only: checks that the script runs
    python benchmarks/recurrent_decoding.py --lengths 1024 --batch 4 --heads 4 --dim 256 --repeats 5

Greedy decoding (`attnkit.nn.decoding.greedy`, cache on) with the encoder–decoder of attnkit, only the decoder's
self-attention changing: every variant generates exactly N tokens per sentence (no end token) after a source of 8
tokens; cross-attention and the encoder are softmax everywhere. Variants: softmax with its KV cache, linear and
performer with their recurrent state (`supports_recurrent`, chosen automatically), and linear with the KV cache
(`recurrent=false`) for reference, which recomputes its causal prefix sums over every cached key at each step, so it
is quadratic in N and runs only up to `--kv-max-len` tokens.

Reported per N: tokens/s (batch × N / median seconds), the ratio to softmax at the same N, the decoder's
self-attention cache at the end (bytes of its cached tensors, all layers; the cross-attention keys and values of the
source are the same for every variant and left out), and the peak growth of the resident memory
(CPU; allocated memory on CUDA) during one untimed run. Everything runs in one process, with repeats interleaved
across variants, so the RSS column is indicative only (memory freed by one variant may be reused by the next).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from attnkit.nn import EncoderDecoder
from attnkit.nn.decoding import greedy

BOS, PAD, SRC_LEN = 1, 0, 8


def cache_bytes(node: dict) -> int:
    """Bytes of every tensor in a (nested) decoding cache."""
    return sum(
        v.nbytes if isinstance(v, Tensor) else cache_bytes(v) if isinstance(v, dict) else 0 for v in node.values()
    )


def rss_bytes() -> int:
    """The resident memory of this process now (Linux), else its peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def variants(features: int) -> dict[str, Any]:
    """Decoder self-attention specs, by the name shown in the table."""
    return {
        "softmax, KV cache": "softmax",
        "linear, recurrent": {"name": "linear"},
        f"performer ({features} features), recurrent": {"name": "performer", "num_features": features},
        "linear, KV cache": {"name": "linear", "recurrent": False},
    }


def build(spec: Any, args: argparse.Namespace, max_len: int, device: torch.device) -> EncoderDecoder:
    torch.manual_seed(0)
    model = EncoderDecoder(
        args.vocab,
        args.vocab,
        dim=args.dim,
        depth=1,
        decoder_depth=args.depth,
        heads=args.heads,
        max_len=max_len,
        dropout=0.0,
        attention="softmax",
        pos_enc=args.pos_enc,
        decoder={"attention": spec},
        share_vocab=True,
    )
    return model.to(device).eval()


def profile(model: EncoderDecoder, generate: Callable[[], Tensor], device: torch.device) -> tuple[int, float, bool]:
    """One untimed run: (self-attention cache bytes at the end, peak memory growth in MiB, whether a recurrent state
    was kept)."""
    decode, seen = model.decode, {}
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = torch.cuda.memory_allocated(device) if cuda else rss_bytes()
    peak = start

    def recording(*args: Any, cache: dict | None = None, **kwargs: Any) -> Tensor:
        nonlocal peak
        logits = decode(*args, cache=cache, **kwargs)
        seen["cache"] = cache
        if not cuda:
            peak = max(peak, rss_bytes())
        return logits

    model.decode = recording  # type: ignore[method-assign]
    try:
        generate()
    finally:
        del model.decode
    if cuda:
        peak = torch.cuda.max_memory_allocated(device)
    self_caches = {layer: entry["self"] for layer, entry in seen["cache"].items()}
    recurrent = all("state" in entry for entry in self_caches.values())
    return cache_bytes(self_caches), (peak - start) / 2**20, recurrent


def seconds(run: Callable[[], Tensor], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 2048, 8192], help="tokens generated")
    parser.add_argument("--quick", action="store_true", help="lengths 16 and 64, one repeat: a smoke test")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--depth", type=int, default=2, help="decoder layers")
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--features", type=int, default=64, help="performer's random features")
    parser.add_argument("--pos-enc", default="rope", help="decoder and encoder positional encoding")
    parser.add_argument("--kv-max-len", type=int, default=2048, help="longest N for linear with the KV cache")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.quick:
        args.lengths, args.repeats = [16, 64], 1

    device = torch.device(args.device)
    specs = variants(args.features)
    src = torch.randint(3, args.vocab, (args.batch, SRC_LEN), generator=torch.Generator().manual_seed(0)).to(device)
    rows: list[tuple[int, str, float, int, float]] = []
    for n in args.lengths:
        models = {
            name: build(spec, args, n + 2, device)
            for name, spec in specs.items()
            if not (name == "linear, KV cache" and n > args.kv_max_len)
        }
        runs = {
            name: (lambda m=model, n=n: greedy(m, src, bos_id=BOS, eos_id=-1, pad_id=PAD, max_len_a=0.0, max_len_b=n))
            for name, model in models.items()
        }
        memory = {}
        for name, run in runs.items():  # the warm-up, measuring memory
            nbytes, peak_mib, recurrent = profile(models[name], run, device)
            expected = name.endswith("recurrent")
            if recurrent != expected:
                raise SystemExit(f"{name}: expected {'a recurrent state' if expected else 'a KV cache'} in the cache")
            memory[name] = (nbytes, peak_mib)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):  # interleaved
            for name, run in runs.items():
                times[name].append(seconds(run, device))
        for name in runs:
            median = statistics.median(times[name])
            rows.append((n, name, args.batch * n / median, *memory[name]))
            print(f"N={n:>5} {name:>36}: {median:.3f} s, {memory[name][0]} cache bytes", file=sys.stderr, flush=True)

    threads = torch.get_num_threads() if device.type == "cpu" else "-"
    print(
        f"\nGreedy generation of N tokens, batch {args.batch}, decoder of {args.depth} layers, dim {args.dim}, "
        f"{args.heads} heads (D={args.dim // args.heads}), pos_enc={args.pos_enc}, vocab {args.vocab}; device "
        f"{device}, torch threads {threads}, median of {args.repeats}. Memory: the self-attention cache at the end "
        f"(every cached tensor) and the peak {'allocated' if device.type == 'cuda' else 'resident'} memory growth "
        "of one run.\n"
    )
    print("| N | decoder self-attention | tokens/s | vs softmax | self-attention cache (bytes) | peak growth (MiB) |")
    print("|---:|---|---:|---:|---:|---:|")
    for n, name, rate, nbytes, peak_mib in rows:
        softmax = next(r[2] for r in rows if r[0] == n and r[1] == "softmax, KV cache")
        print(f"| {n} | {name} | {rate:.0f} | {rate / softmax:.2f}x | {nbytes:,} | {peak_mib:.1f} |")
    skipped = [n for n in args.lengths if n > args.kv_max_len]
    if skipped:
        print(f"\nlinear with the KV cache is not run for N > {args.kv_max_len} (--kv-max-len): quadratic in N.")


if __name__ == "__main__":
    main()
