"""Whether the softmax kernel's explicit path beats SDPA on CPU: ViT training-step time for both paths.

    python benchmarks/softmax_cpu_paths.py

`attention=softmax` computes softmax(QKᵀ/√d)V with torch's scaled_dot_product_attention, except on CPU for at most
`cpu_eager_max_len` keys (default 96), where it uses explicit matmuls. This script measures a whole ViT training
step (forward, backward, AdamW) with each path, for sequence lengths around that threshold. Prints a Markdown table.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

import attnkit

# (image size, patch size, batch, width, heads): 17, 50, 65, 257 tokens with the class token
CASES = [(8, 2, 64, 64, 8), (28, 4, 128, 64, 8), (28, 4, 128, 64, 4), (32, 4, 64, 128, 4), (32, 2, 32, 128, 4)]
PATHS = {"SDPA": {"name": "softmax", "cpu_eager_max_len": 0}, "explicit": {"name": "eager"}}


def step_ms(image: int, patch: int, batch: int, dim: int, heads: int, attention: dict, steps: int = 20) -> float:
    torch.manual_seed(0)
    model = attnkit.build(
        "model",
        "vit",
        image_size=image,
        in_channels=1,
        num_classes=10,
        patch_size=patch,
        dim=dim,
        heads=heads,
        attention=attention,
    )
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y = torch.randn(batch, 1, image, image), torch.randint(0, 10, (batch,))

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1000


def main() -> None:
    print(f"ViT training step on CPU, {torch.get_num_threads()} threads, depth 4 (ms per step, lower is better)\n")
    print("| tokens | head dim | batch | SDPA | explicit | explicit / SDPA |")
    print("|---:|---:|---:|---:|---:|---:|")
    for image, patch, batch, dim, heads in CASES:
        tokens = (image // patch) ** 2 + 1
        ms = {name: step_ms(image, patch, batch, dim, heads, spec) for name, spec in PATHS.items()}
        ratio = ms["explicit"] / ms["SDPA"]
        print(f"| {tokens} | {dim // heads} | {batch} | {ms['SDPA']:.1f} | {ms['explicit']:.1f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
