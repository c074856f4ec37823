"""Token mixers against causal softmax on a CPU: training time per token and activation memory as N grows, and
decoding speed with a fixed-size state against softmax's KV cache. One process, ratios.

    python benchmarks/mixer_speed.py                       # N = 1,024, 4,096, 16,384; decoding 8,192 tokens
    python benchmarks/mixer_speed.py --quick               # short lengths: checks that the script runs
    python benchmarks/mixer_speed.py --mixers gla mamba2 --lengths 2048 8192 --decode 4096

The model is the language model of `task=lm` (`attnkit.nn.Decoder`): width 256, 2 layers, 4 heads, vocabulary 256,
batch 1, every layer the mixer (`model.layers=[m, m]`), or softmax attention (SDPA, causal) for the reference.

- train: the median time of a training step (forward, loss, backward) over `--repeats`, variants interleaved, as
  microseconds per token; the growth column is the time per token at the longest length over the one before
  (1.00 = linear in N). `MB at N`: bytes saved for the backward pass (autograd's saved tensors, each storage
  once): the memory a training step holds, which is what grows with N.
- decode: `--decode` tokens fed one at a time through the cache (teacher-forced random ids: the speed of greedy
  decoding without the argmax), tokens/s, and the cache's size at the end, all layers (a mixer's state is the same at
  any length; softmax's keys and values grow with N).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import Tensor

import attnkit
from attnkit.nn import Decoder

VOCAB = 256


def model(name: str, dim: int, depth: int, heads: int, max_len: int) -> Decoder:
    torch.manual_seed(0)
    layers = None if name == "softmax" else [name] * depth
    return Decoder(VOCAB, dim=dim, depth=depth, heads=heads, max_len=max_len, layers=layers, pos_enc="rope")


def saved_bytes(net: Decoder, ids: Tensor) -> int:
    """Bytes autograd keeps for the backward pass of one training step (each storage counted once)."""
    storages: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(net(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
    loss.backward()
    net.zero_grad(set_to_none=True)
    return sum(storages.values())


def step_seconds(net: Decoder, ids: Tensor) -> float:
    start = time.perf_counter()
    loss = F.cross_entropy(net(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
    loss.backward()
    net.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def cache_bytes(node: dict) -> int:
    return sum(
        v.nbytes if isinstance(v, Tensor) else cache_bytes(v) if isinstance(v, dict) else 0 for v in node.values()
    )


@torch.no_grad()
def decode(net: Decoder, tokens: int) -> tuple[float, int]:
    """(tokens per second, cache bytes at the end) feeding `tokens` ids one at a time."""
    net.eval()
    ids = torch.randint(0, VOCAB, (1, tokens))
    cache: dict = {}
    start = time.perf_counter()
    for t in range(tokens):
        net(ids[:, t : t + 1], cache=cache)
    seconds = time.perf_counter() - start
    net.train()
    return tokens / seconds, cache_bytes(cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mixers = [m for m in attnkit.available("mixer") if m != "attention"]
    parser.add_argument("--mixers", nargs="+", default=mixers, help="registered mixers (softmax is always run)")
    parser.add_argument("--lengths", nargs="+", type=int, default=[1024, 4096, 16384])
    parser.add_argument("--decode", type=int, default=8192, help="tokens to decode (0: skip)")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="lengths 256 and 512, decoding 256 tokens, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.lengths, args.decode, args.repeats = [256, 512], 256, 1
    names = ["softmax", *args.mixers]
    longest = max(args.lengths + [args.decode]) + 1
    nets = {name: model(name, args.dim, args.depth, args.heads, longest) for name in names}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; width {args.dim}, {args.depth} layers, "
        f"{args.heads} heads, batch 1"
    )

    times: dict[tuple[str, int], list[float]] = {}
    memory: dict[tuple[str, int], int] = {}
    for n in args.lengths:
        ids = torch.randint(0, VOCAB, (1, n + 1))
        for name, net in nets.items():
            memory[name, n] = saved_bytes(net, ids)  # also the warm-up
        for _ in range(args.repeats):
            for name, net in nets.items():
                times.setdefault((name, n), []).append(step_seconds(net, ids))

    print("\n## Training step: µs per token (ratio to softmax), activation MB")
    head = " | ".join(f"N={n:,}" for n in args.lengths)
    growth = f"{args.lengths[-1]:,} / {args.lengths[-2]:,}" if len(args.lengths) > 1 else "-"
    print(f"| mixer | {head} | {growth} per token | " + " | ".join(f"MB at {n:,}" for n in args.lengths) + " |")
    print("|---|" + "---:|" * (2 * len(args.lengths) + 1))
    for name in names:
        per_token = {n: statistics.median(times[name, n]) / n * 1e6 for n in args.lengths}
        cells = []
        for n in args.lengths:
            ratio = per_token[n] / (statistics.median(times["softmax", n]) / n * 1e6)
            cells.append(f"{per_token[n]:.1f} ({ratio:.2f})")
        grow = per_token[args.lengths[-1]] / per_token[args.lengths[-2]] if len(args.lengths) > 1 else float("nan")
        mb = " | ".join(f"{memory[name, n] / 2**20:.0f}" for n in args.lengths)
        print(f"| {name} | {' | '.join(cells)} | {grow:.2f} | {mb} |")

    if args.decode:
        print(f"\n## Decoding {args.decode:,} tokens one at a time: tokens/s (ratio to softmax), cache at the end")
        print("| mixer | tokens/s | ratio | cache KB |")
        print("|---|---:|---:|---:|")
        results = {name: decode(net, args.decode) for name, net in nets.items()}
        for name, (speed, size) in results.items():
            print(f"| {name} | {speed:,.0f} | {speed / results['softmax'][0]:.2f} | {size / 1024:,.0f} |")


if __name__ == "__main__":
    main()
