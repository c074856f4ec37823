"""Attention-map figure of a language model: the last block's causal attention weights over one sample, per head."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor


def plot_attention(weights: Tensor, path: Path, title: str) -> None:
    """weights `[H, N, N]` (query rows, key columns): one panel per head."""
    import matplotlib  # lazy: a second of start-up, needed only for the figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads = weights.shape[0]
    fig, axes = plt.subplots(1, heads, figsize=(2.6 * heads, 2.8), squeeze=False)
    for h, ax in enumerate(axes[0]):
        ax.imshow(weights[h].float().cpu().numpy(), cmap="viridis")
        ax.set_title(f"head {h + 1}", fontsize=8)
        ax.set_xlabel("key", fontsize=7)
        ax.set_ylabel("query", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
