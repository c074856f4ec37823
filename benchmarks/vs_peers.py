"""Whole-model speed against the libraries a user would pick instead, side by side in one process.

    python benchmarks/vs_peers.py                       # every pair, training step and inference
    python benchmarks/vs_peers.py --pairs vit-digits --rounds 5
    python benchmarks/vs_peers.py --device cuda         # on a GPU

Pairs (the same width, depth, heads, MLP ratio, tokens, pooling, vocabulary and batch on both sides):

- `vit-digits`: the main job's ViT (8×8 digits, 4×4 patches every 2 pixels → 16 patch tokens + class token,
  width 64, depth 4, 8 heads, MLP ratio 2, batch 64) against timm's `VisionTransformer` of that shape (its patch
  convolution given the same kernel, stride and padding);
- `vit-cifar`: a CIFAR-size ViT (32×32×3, 4×4 patches → 64 tokens, mean pooling, width 192, depth 6, 3 heads, MLP
  ratio 4, batch 128) against timm's (`global_pool='avg'`, no class token, no fc_norm);
- `seq2seq-multi30k`: the Multi30k recipe's encoder–decoder (width 256, 3 + 3 pre-norm layers, 4 heads, feed-forward
  512, GELU, joint vocabulary 8,000 with tied embeddings, sinusoidal positions, ~100 sentences of 20–28 tokens with
  padding) against `torch.nn.Transformer(norm_first=True)` with the same embeddings and output projection;
- `lm-shakespeare`: the decoder-only language model of `experiment=shakespeare_char` (width 256, 4 layers, 4 heads,
  MLP ratio 4 with exact GELU, learned positions over a context of 256, a character vocabulary of 65, tied
  embeddings, batch 16) against Hugging Face transformers' `GPT2LMHeadModel` of the same configuration; `generate`
  times greedy generation of 240 tokens after a 16-token prompt with the cache (attnkit's `sample` against
  `GPT2LMHeadModel.generate`), in milliseconds per generated token.

A training step is forward, cross-entropy, backward and an AdamW step; inference is a forward pass under
`torch.inference_mode` in eval mode. Dropout and drop-path are 0 on both sides (they differ in where they are
applied, not in the architecture). The two models of a pair run alternately, `--rounds` times `--steps` steps each
after a warm-up (`--steps 0`, the default: as many as take about `--round-s` seconds), with `--threads` torch
threads pinned. Each side's median step time is reported, and the median of the per-round ratios attnkit / peer
(below 1: attnkit is faster) with their interquartile range: a range on one side of 1 says which is faster, one
that straddles 1 within ±5% says the two are even, a wider one that the machine was too noisy to conclude. Needs
timm for the ViT pairs (`pip install 'attnkit[timm]'`) and transformers for the language-model pair
(`pip install 'attnkit[transformers]'`).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import attnkit

PAIRS = ("vit-digits", "vit-cifar", "seq2seq-multi30k", "lm-shakespeare")
MODES = ("train", "infer", "generate")
EVEN = 0.05  # an interquartile range within 1 ± EVEN that straddles 1: the two are even
PEERS = {"vit": "timm VisionTransformer", "seq2seq": "torch.nn.Transformer", "lm": "transformers GPT2LMHeadModel"}


def vit_pair(shape: dict, device: str) -> tuple[nn.Module, nn.Module, Callable[[], tuple]]:
    """attnkit's ViT and timm's of the same shape, and a function giving one batch (images, labels)."""
    import timm.models.vision_transformer as tv

    size, channels, patch, stride = shape["image"], shape["channels"], shape["patch"], shape["stride"]
    ours = attnkit.build(
        "model",
        "vit",
        image_size=size,
        in_channels=channels,
        num_classes=10,
        patch_size=patch,
        patch_stride=stride,
        dim=shape["dim"],
        depth=shape["depth"],
        heads=shape["heads"],
        pool=shape["pool"],
        ffn={"name": "mlp", "mlp_ratio": shape["mlp_ratio"]},
    )
    cls = shape["pool"] == "cls"
    peer = tv.VisionTransformer(
        img_size=size,
        patch_size=stride,  # the token grid; the convolution is replaced by one of the same kernel below
        in_chans=channels,
        num_classes=10,
        embed_dim=shape["dim"],
        depth=shape["depth"],
        num_heads=shape["heads"],
        mlp_ratio=shape["mlp_ratio"],
        class_token=cls,
        global_pool="token" if cls else "avg",
        fc_norm=False,
    )
    peer.patch_embed.proj = nn.Conv2d(channels, shape["dim"], patch, stride=stride, padding=(patch - stride) // 2)
    n_ours = ours.patch_embed.grid[0] * ours.patch_embed.grid[1] + cls
    n_peer = peer.pos_embed.shape[1]
    assert n_ours == n_peer, f"token counts differ: attnkit {n_ours}, timm {n_peer}"
    batch = shape["batch"]

    def data() -> tuple[Tensor, Tensor]:
        return torch.randn(batch, channels, size, size, device=device), torch.randint(0, 10, (batch,), device=device)

    return ours, peer, data


class TorchSeq2Seq(nn.Module):
    """`torch.nn.Transformer` with attnkit's embedding scheme around it: one embedding for the joint vocabulary
    (std dim^-½, scaled by √dim), sinusoidal positions, a tied output projection."""

    def __init__(self, vocab: int, dim: int, heads: int, depth: int, ff: int, max_len: int = 128) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        nn.init.normal_(self.embed.weight, std=dim**-0.5)
        self.body = nn.Transformer(
            d_model=dim,
            nhead=heads,
            num_encoder_layers=depth,
            num_decoder_layers=depth,
            dim_feedforward=ff,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.output = nn.Linear(dim, vocab, bias=False)
        self.output.weight = self.embed.weight
        position = torch.arange(max_len).unsqueeze(1)
        freq = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
        table = torch.zeros(max_len, dim)
        table[:, 0::2], table[:, 1::2] = torch.sin(position * freq), torch.cos(position * freq)
        self.register_buffer("table", table, persistent=False)
        self.scale = math.sqrt(dim)

    def embed_tokens(self, tokens: Tensor) -> Tensor:
        return self.embed(tokens) * self.scale + self.table[: tokens.shape[1]]

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        src_mask, tgt_mask = src.eq(0), tgt_in.eq(0)
        n = tgt_in.shape[1]
        causal = torch.ones(n, n, dtype=torch.bool, device=src.device).triu(1)  # True: not attended
        out = self.body(
            self.embed_tokens(src),
            self.embed_tokens(tgt_in),
            tgt_mask=causal,
            src_key_padding_mask=src_mask,
            tgt_key_padding_mask=tgt_mask,
            memory_key_padding_mask=src_mask,
            tgt_is_causal=True,
        )
        return self.output(out)


def seq2seq_pair(shape: dict, device: str) -> tuple[nn.Module, nn.Module, Callable[[], tuple]]:
    """attnkit's encoder–decoder and nn.Transformer's of the Multi30k recipe's size, and a batch function."""
    vocab, dim, heads, depth, ff = shape["vocab"], shape["dim"], shape["heads"], shape["depth"], shape["ff"]
    ours = attnkit.build(
        "model",
        "transformer",
        src_vocab=vocab,
        tgt_vocab=vocab,
        dim=dim,
        depth=depth,
        heads=heads,
        max_len=128,
        pad_id=0,
        share_vocab=True,
        tie_embeddings=True,
        pos_enc="sinusoidal",
        ffn={"name": "mlp", "mlp_ratio": ff / dim},
        dropout=0.0,
    )
    peer = TorchSeq2Seq(vocab, dim, heads, depth, ff)
    batch = shape["batch"]
    generator = torch.Generator().manual_seed(0)

    def tokens(low: int, high: int) -> Tensor:
        lengths = torch.randint(low, high + 1, (batch,), generator=generator)
        out = torch.randint(4, vocab, (batch, high), generator=generator)
        out[torch.arange(high)[None] >= lengths[:, None]] = 0  # right padding
        return out.to(device)

    def data() -> tuple[Tensor, Tensor, Tensor]:
        tgt = tokens(20, 28)
        return tokens(20, 28), tgt[:, :-1], tgt[:, 1:]

    return ours, peer, data


class Logits(nn.Module):
    """A Hugging Face causal LM as `ids [B, N] -> logits [B, N, V]`, with its `generate` beside it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: Tensor) -> Tensor:
        return self.model(ids).logits


def lm_pair(shape: dict, device: str) -> tuple[nn.Module, nn.Module, Callable[[], tuple]]:
    """attnkit's decoder and GPT-2 of one shape (learned positions, exact GELU, tied embeddings), and a batch
    function giving (inputs [B, N], next tokens [B, N])."""
    import transformers

    vocab, dim, depth, heads, context = (shape[k] for k in ("vocab", "dim", "depth", "heads", "context"))
    ours = attnkit.build(
        "model", "decoder", vocab_size=vocab, dim=dim, depth=depth, heads=heads, max_len=context, pos_enc="learned"
    )
    config = transformers.GPT2Config(
        vocab_size=vocab,
        n_positions=context,
        n_embd=dim,
        n_layer=depth,
        n_head=heads,
        activation_function="gelu",  # exact GELU, as ffn=mlp's
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=None,
        eos_token_id=None,
    )
    peer = Logits(transformers.GPT2LMHeadModel(config))
    batch = shape["batch"]
    generator = torch.Generator().manual_seed(0)

    def data() -> tuple[Tensor, Tensor]:
        ids = torch.randint(0, vocab, (batch, context + 1), generator=generator).to(device)
        return ids[:, :-1], ids[:, 1:]

    return ours, peer, data


def generation(model: nn.Module, shape: dict, device: str) -> Callable[[], None]:
    """Greedy generation with the cache of `shape['new_tokens']` tokens after a prompt of `shape['prompt']`."""
    from attnkit.nn import sample

    prompt = torch.randint(0, shape["vocab"], (1, shape["prompt"]), generator=torch.Generator().manual_seed(1))
    prompt, new = prompt.to(device), shape["new_tokens"]
    model.eval()
    if isinstance(model, Logits):
        hf = model.model

        def run() -> None:
            out = hf.generate(prompt, max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)
            assert out.shape[1] == prompt.shape[1] + new

        return run

    def run_ours() -> None:
        assert sample(model, prompt, max_new_tokens=new, temperature=0).shape[1] == new

    return run_ours


SHAPES = {
    "vit-digits": (vit_pair, {"image": 8, "channels": 1, "patch": 4, "stride": 2, "dim": 64, "depth": 4,
                              "heads": 8, "mlp_ratio": 2.0, "pool": "cls", "batch": 64}),
    "vit-cifar": (vit_pair, {"image": 32, "channels": 3, "patch": 4, "stride": 4, "dim": 192, "depth": 6,
                             "heads": 3, "mlp_ratio": 4.0, "pool": "mean", "batch": 128}),
    "seq2seq-multi30k": (seq2seq_pair, {"vocab": 8000, "dim": 256, "heads": 4, "depth": 3, "ff": 512,
                                        "batch": 100}),
    "lm-shakespeare": (lm_pair, {"vocab": 65, "dim": 256, "depth": 4, "heads": 4, "context": 256, "batch": 16,
                                 "prompt": 16, "new_tokens": 240}),
}  # fmt: skip


def steps(model: nn.Module, data: Callable[[], tuple], train: bool, ignore: int) -> Callable[[], None]:
    """One training step (forward, loss, backward, AdamW; targets equal to `ignore` unscored) or one inference
    forward, on a fixed batch."""
    batch = data()
    if not train:
        model.eval()

        def infer() -> None:
            with torch.inference_mode():
                model(*batch[:-1])

        return infer
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train_step() -> None:
        logits = model(*batch[:-1])
        loss = F.cross_entropy(logits.flatten(0, -2), batch[-1].flatten(), ignore_index=ignore)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return train_step


def timed(step: Callable[[], None], n: int, device: str) -> float:
    """Seconds per step over `n` steps."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / n


def spread(ratios: list[float]) -> tuple[float, float, float]:
    """(median, first quartile, third quartile) of per-round ratios."""
    if len(ratios) < 2:
        return ratios[0], ratios[0], ratios[0]
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return statistics.median(ratios), q1, q3


def verdict(median: float, q1: float, q3: float) -> str:
    """What the rounds say: faster or slower when the interquartile range of the ratios lies on one side of 1; even
    when it straddles 1 within ±`EVEN`; else too noisy to conclude."""
    if q3 < 1.0:
        return "attnkit faster"
    if q1 > 1.0:
        return "peer faster"
    if q1 > 1.0 - EVEN and q3 < 1.0 + EVEN:
        return "even"
    return "too noisy to conclude"


def compare(pair: str, mode: str, args: argparse.Namespace) -> tuple[float, float, list[float]]:
    """Median seconds per step (generate: per generated token) of attnkit and of the peer, measured alternately,
    and the ratio attnkit / peer of each round."""
    build, shape = SHAPES[pair]
    torch.manual_seed(0)
    ours, peer, data = build(shape, args.device)
    ours, peer = ours.to(args.device), peer.to(args.device)
    if mode == "generate":
        run_ours, run_peer = (generation(m, shape, args.device) for m in (ours, peer))
    else:
        ignore = 0 if pair.startswith("seq2seq") else -100  # the encoder-decoder's targets are padded with 0
        run_ours, run_peer = (steps(m, data, mode == "train", ignore) for m in (ours, peer))
    warm = [timed(step, args.warmup, args.device) for step in (run_ours, run_peer)]
    n = args.steps or max(1, round(args.round_s / max(warm)))
    times: tuple[list[float], list[float]] = ([], [])
    for r in range(args.rounds):
        order = ((0, run_ours), (1, run_peer)) if r % 2 == 0 else ((1, run_peer), (0, run_ours))
        for side, step in order:
            times[side].append(timed(step, n, args.device))
    per = shape["new_tokens"] if mode == "generate" else 1
    ratios = [ours / peer for ours, peer in zip(*times, strict=True)]
    return statistics.median(times[0]) / per, statistics.median(times[1]) / per, ratios


def main() -> None:
    warnings.filterwarnings("ignore", message=".*enable_nested_tensor is True.*")  # nn.Transformer with norm_first
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", choices=PAIRS, default=list(PAIRS))
    parser.add_argument(
        "--modes", nargs="+", choices=MODES, default=list(MODES), help="generate: the language-model pair only"
    )
    parser.add_argument("--rounds", type=int, default=21, help="alternations of the two models")
    parser.add_argument("--steps", type=int, default=0, help="steps per round (0: about --round-s seconds)")
    parser.add_argument("--round-s", type=float, default=0.4)
    parser.add_argument("--threads", type=int, default=None, help="torch threads, pinned (default: every core)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    versions = []
    for prefix, package in (("vit", "timm"), ("lm", "transformers")):
        if any(p.startswith(prefix) for p in args.pairs):
            try:
                versions.append(f"{package} {__import__(package).__version__}")
            except ImportError:
                sys.exit(f"the {prefix} pairs need {package}: pip install 'attnkit[{package}]' (or leave them out)")
    peer_version = ", ".join(versions)
    where = f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} threads" if args.device == "cpu" else args.device
    print(f"\ntorch {torch.__version__}, {peer_version}, {where}; median of {args.rounds} alternating rounds\n")
    print("| model | peer | mode | attnkit (ms/step) | peer (ms/step) | attnkit / peer | IQR | verdict |")
    print("|---|---|---|---:|---:|---:|---|---|")  # generate: ms per generated token
    for pair in args.pairs:
        peer_name = PEERS[pair.split("-")[0]]
        for mode in args.modes:
            if mode == "generate" and not pair.startswith("lm"):
                continue
            ours, peer, ratios = compare(pair, mode, args)
            median, q1, q3 = spread(ratios)
            print(
                f"| {pair} | {peer_name} | {mode} | {ours * 1e3:.1f} | {peer * 1e3:.1f} | {median:.2f} | "
                f"{q1:.2f}–{q3:.2f} | {verdict(median, q1, q3)} |"
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
