"""Attention-map figure: for a few test images, the class token's attention to each patch, per head."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor


def plot_attention_maps(images: Tensor, maps: Tensor, labels: list[str], path: Path, title: str) -> None:
    """images `[B, C, H, W]` in [0, 1], maps `[B, heads, gh, gw]`: one row per image, one column per head."""
    import matplotlib  # lazy: a second of start-up, needed only for the figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b, heads = maps.shape[:2]
    fig, axes = plt.subplots(b, heads + 1, figsize=(1.6 * (heads + 1), 1.7 * b), squeeze=False)
    for i in range(b):
        image = images[i].permute(1, 2, 0).clamp(0, 1).cpu().numpy()
        axes[i, 0].imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray")
        axes[i, 0].set_title(labels[i], fontsize=8)
        for h in range(heads):
            axes[i, h + 1].imshow(maps[i, h].float().cpu().numpy(), cmap="viridis")
            if i == 0:
                axes[i, h + 1].set_title(f"head {h + 1}", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
