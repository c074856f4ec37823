"""Training-step time of the main job's ViT and of the Multi30k translation model: eager float32, `compile=true`
(torch.compile), bf16 autocast, and both.

    python benchmarks/compile_speed.py                                    # both models at their recipes' sizes
    python benchmarks/compile_speed.py --models vit --steps 100
    python benchmarks/compile_speed.py --compile "{mode: max-autotune-no-cudagraphs, dynamic: false}"
    python benchmarks/compile_speed.py --tiny --steps 2 --warmup 1        # a smoke run: tiny models and batches

One process. A training step is what a task's training step costs besides its data: forward, the loss (cross-entropy
with label smoothing 0.1, as both recipes), backward and an AdamW step, on one fixed synthetic batch of the recipe's
shape:

- `vit`: the digits ViT exactly as `task=vit` builds it (conf/task/vit.yaml: 8×8 images, 1 channel, 10 classes,
  patch 4 / stride 2, dim 64, depth 4, 8 heads, MLP ratio 2, drop_path 0.1, class token), batch 64 (`data=digits`);
- `translation`: the model of `experiment=multi30k_de_en` (dim 256, 3 + 3 blocks, 4 heads, MLP ratio 2, dropout 0.1,
  joint vocabulary of 8,000, tied embeddings), a batch of `--tr-batch` pairs of `--tr-len` tokens each side (the
  recipe's `data.max_tokens=2560` padded tokens: about 100 sentences of up to 25 tokens).

Variants, each on a fresh copy of the same initial weights: `eager` (float32); `compiled` (`nn.Module.compile` with
`--compile`'s arguments, as `compile=...` does); `bf16` (eager under `torch.autocast("cpu", dtype=torch.bfloat16)`,
what `trainer.precision=bf16-mixed` does on the CPU); `compiled + bf16`. `compile (s)` is the one-time cost: the
first step's time less a steady step's. Real batches vary in length (translation): there `compile=true` compiles
again for the second shape seen, with dynamic shapes; `benchmarks/recipe.py` measures whole runs:

    python benchmarks/recipe.py --seeds 0 -- task=vit compile=true
    python benchmarks/recipe.py --seeds 0 -- task=vit trainer.precision=bf16-mixed

Prints a Markdown table (median ms per step over `--steps` steps after `--warmup`).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch import nn

VARIANTS = ("eager", "compiled", "bf16", "compiled + bf16")


def vit_case(tiny: bool) -> tuple[nn.Module, Callable[[nn.Module], torch.Tensor], str]:
    """The digits ViT of `task=vit` and a loss on one batch of 64 images (tiny: a 1-block ViT, 8 images)."""
    import attnkit
    from attnkit.registry import build_spec

    cfg = attnkit.compose("task=vit", *(("model.dim=16", "model.depth=1", "heads=2") if tiny else ()))
    batch = 8 if tiny else int(cfg["data"]["batch_size"])
    from attnkit.tasks.vit.recipe import choose_patches

    patch, stride = choose_patches(8, 8)  # what task=vit chooses for the digits (model.patch_size: null)
    spec = {**cfg["model"], "patch_size": patch, "patch_stride": stride}
    net = build_spec("model", spec, image_size=(8, 8), in_channels=1, num_classes=10)
    images, labels = torch.randn(batch, 1, 8, 8), torch.randint(0, 10, (batch,))

    def loss(model: nn.Module) -> torch.Tensor:
        return F.cross_entropy(model(images), labels, label_smoothing=0.1)

    return net, loss, f"{batch} images"


def translation_case(tiny: bool, batch: int, length: int) -> tuple[nn.Module, Callable[[nn.Module], torch.Tensor], str]:
    """The encoder-decoder of `experiment=multi30k_de_en` and a teacher-forced loss on one batch of token ids."""
    import attnkit
    from attnkit.registry import build_spec

    small = ("model.dim=16", "model.depth=1", "heads=2", "task.tokenizer.vocab_size=200") if tiny else ()
    cfg = attnkit.compose("experiment=multi30k_de_en", *small)
    vocab = int(cfg["task"]["tokenizer"]["vocab_size"])
    batch, length = (4, 6) if tiny else (batch, length)
    context = {"src_vocab": vocab, "tgt_vocab": vocab, "pad_id": 0, "share_vocab": True}
    net = build_spec("model", cfg["model"], **context)
    src = torch.randint(4, vocab, (batch, length))
    tgt = torch.randint(4, vocab, (batch, length + 1))  # BOS + target, target + EOS

    def loss(model: nn.Module) -> torch.Tensor:
        logits = model(src, tgt[:, :-1])
        return F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=0, label_smoothing=0.1)

    return net, loss, f"{batch}×{length} tokens"


def measure(
    base: nn.Module, loss_fn: Callable[[nn.Module], torch.Tensor], variant: str, compile_kwargs: dict, args
) -> dict[str, float]:
    """Median seconds per training step, and the first step's extra seconds (compilation)."""
    torch.manual_seed(0)
    model = copy.deepcopy(base).train()
    if "compiled" in variant:
        model.compile(**compile_kwargs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    bf16 = "bf16" in variant

    def step() -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    first = step()
    for _ in range(args.warmup):
        step()
    times = [step() for _ in range(args.steps)]
    median = statistics.median(times)
    return {"step_s": median, "compile_s": max(0.0, first - median) if "compiled" in variant else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=("vit", "translation"), default=["vit", "translation"])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=30, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps after the first")
    parser.add_argument("--compile", default="true", help="the compile= value: true, or a mapping in YAML")
    parser.add_argument("--tr-batch", type=int, default=100, help="translation: sentence pairs per batch")
    parser.add_argument("--tr-len", type=int, default=25, help="translation: tokens per sentence, each side")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--tiny", action="store_true", help="tiny models and batches: checks that the script runs")
    args = parser.parse_args()

    from attnkit.errors import ConfigError
    from attnkit.train.compile import compile_kwargs

    try:
        kwargs = compile_kwargs(yaml.safe_load(args.compile)) or {}
    except ConfigError as exc:
        parser.error(f"--compile: {exc}")
    if args.threads:
        torch.set_num_threads(args.threads)
    cases: dict[str, Any] = {
        "vit": lambda: vit_case(args.tiny),
        "translation": lambda: translation_case(args.tiny, args.tr_batch, args.tr_len),
    }
    rows = []
    for name in args.models:
        base, loss_fn, batch = cases[name]()
        results = {variant: measure(base, loss_fn, variant, kwargs, args) for variant in args.variants}
        reference = results.get("eager", {}).get("step_s")
        for variant, r in results.items():
            ratio = f"{reference / r['step_s']:.2f}×" if reference else "–"
            compile_s = f"{r['compile_s']:.1f}" if "compiled" in variant else "–"
            rows.append([name, batch, variant, f"{r['step_s'] * 1000:.1f}", ratio, compile_s])

    print(
        f"\ntraining step (forward, backward, AdamW) on {os.cpu_count()} CPU cores, {torch.get_num_threads()} "
        f"threads, torch {torch.__version__}, compile={args.compile}{' (tiny)' if args.tiny else ''}\n"
    )
    print("| model | batch | variant | ms / step | speed-up vs eager | compile (s) |")
    print("|---|---|---|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
