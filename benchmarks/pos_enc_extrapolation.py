"""Length extrapolation of positional encodings: a character language model trained on windows of L characters,
evaluated on windows of L, 2L and 4L.

    python benchmarks/pos_enc_extrapolation.py                     # L = 64; sinusoidal, rope, alibi, t5, none
    python benchmarks/pos_enc_extrapolation.py --length 32 --steps 300 --encodings rope alibi

The text is the English side of Multi30k (../shared/data/multi30k-de-en, captions joined by newlines): train split
for training, validation split for evaluation. The model is built from attnkit.nn's public blocks in plain PyTorch
(a causal pre-norm encoder stack: embeddings, the encoding's hooks, EncoderBlock(causal=True), a tied output
layer) and trained identically for every encoding (same seed, data order and steps). Prints a Markdown table of
validation bits per character over whole windows (lower is better) and the training time.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import attnkit
from attnkit.nn import EncoderBlock

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "multi30k-de-en"


class CharLM(nn.Module):
    """Causal character model: `[B, N]` ids -> `[B, N, vocab]` logits, with any registered 1-D encoding."""

    def __init__(self, vocab: int, pos_enc: str, dim: int, depth: int, heads: int, train_length: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        nn.init.normal_(self.embed.weight, std=dim**-0.5)  # scaled by √dim on input, tied on output
        self.pos_enc = attnkit.build_spec("pos_enc", pos_enc, dim=dim, heads=heads, max_len=train_length, causal=True)
        self.blocks = nn.ModuleList(
            EncoderBlock(dim, heads, attention="softmax", causal=True, pos_enc=self.pos_enc, dropout=0.0)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: Tensor) -> Tensor:
        x = self.pos_enc.add_to_tokens(self.embed(ids) * math.sqrt(self.embed.embedding_dim))
        bias = self.pos_enc.score_bias(ids.shape[1], ids.shape[1])
        for block in self.blocks:
            x = block(x, bias=bias)
        return self.norm(x) @ self.embed.weight.T


def read_text(path: Path, limit: int | None = None) -> str:
    lines = [json.loads(line)["translation"]["en"] for line in path.read_text(encoding="utf-8").splitlines()]
    text = "\n".join(lines)
    return text if limit is None else text[:limit]


def windows(ids: Tensor, length: int) -> Tensor:
    """Non-overlapping windows of length+1 ids (inputs and next-character targets): `[W, length + 1]`."""
    count = (ids.numel() - 1) // length
    return torch.stack([ids[i * length : i * length + length + 1] for i in range(count)])


@torch.no_grad()
def bits_per_char(model: CharLM, ids: Tensor, length: int, batch: int = 16) -> float:
    model.eval()
    data = windows(ids, length)
    total, count = 0.0, 0
    for i in range(0, len(data), batch):
        chunk = data[i : i + batch]
        logits = model(chunk[:, :-1])
        total += F.cross_entropy(logits.flatten(0, 1), chunk[:, 1:].flatten(), reduction="sum").item()
        count += chunk[:, 1:].numel()
    return total / count / math.log(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--encodings", nargs="+", default=["sinusoidal", "rope", "alibi", "t5", "none"])
    parser.add_argument("--length", type=int, default=64, help="training window L")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--train-chars", type=int, default=1_000_000)
    args = parser.parse_args()
    if not (args.data / "train.jsonl").is_file():
        raise SystemExit(f"error: no Multi30k files under {args.data}; pass --data DIR (train.jsonl, validation.jsonl)")
    train_text = read_text(args.data / "train.jsonl", args.train_chars)
    val_text = read_text(args.data / "validation.jsonl")
    chars = sorted(set(train_text) | set(val_text))
    index = {c: i for i, c in enumerate(chars)}
    train_ids = torch.tensor([index[c] for c in train_text])
    val_ids = torch.tensor([index[c] for c in val_text])
    lengths = [args.length, 2 * args.length, 4 * args.length]
    rows = []
    for name in args.encodings:
        torch.manual_seed(0)
        model = CharLM(len(chars), name, args.dim, args.depth, args.heads, args.length)
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=args.steps, pct_start=0.1)
        generator = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        model.train()
        for _ in range(args.steps):
            offsets = torch.randint(0, train_ids.numel() - args.length - 1, (args.batch,), generator=generator)
            chunk = torch.stack([train_ids[o : o + args.length + 1] for o in offsets.tolist()])
            loss = F.cross_entropy(model(chunk[:, :-1]).flatten(0, 1), chunk[:, 1:].flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
        seconds = time.perf_counter() - start
        scores = [bits_per_char(model, val_ids, n) for n in lengths]
        rows.append((name, scores, seconds))
        print(f"{name}: " + ", ".join(f"{n}: {s:.3f}" for n, s in zip(lengths, scores, strict=True)), flush=True)
    print(
        f"\nCharacter LM on Multi30k English, trained at L={args.length} ({args.steps} steps, batch {args.batch}, "
        f"dim {args.dim}, depth {args.depth}, {args.heads} heads); validation bits per character\n"
    )
    print("| pos_enc | " + " | ".join(f"{n} ({n // args.length}L)" for n in lengths) + " | training time (s) |")
    print("|---|" + "---:|" * (len(lengths) + 1))
    for name, scores, seconds in rows:
        print(f"| `{name}` | " + " | ".join(f"{s:.3f}" for s in scores) + f" | {seconds:.0f} |")


if __name__ == "__main__":
    main()
