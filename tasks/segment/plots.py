"""Pictures of label maps: colour masks, overlays, the image | truth | prediction figure, and the PNG files that
`mode=predict` writes.

A palette is an RGB colour per class (`default_palette` of tasks/segment/data/base.py); `IGNORE` pixels are black in
colour masks and figures. matplotlib and PIL are imported inside the functions that need them (the CLI imports this
module at start-up).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from attnkit.tasks.segment.data.base import IGNORE

Palette = Sequence[tuple[int, int, int]]

# Figure layout of plot_segmentation, in inches at DPI dots per inch: a panel is PANEL wide and as high as the
# image's aspect ratio says; a column adds COLUMN_PAD between panels, a row ROW_PAD for the panel titles; a title adds
# TITLE; the legend takes LEGEND_COLUMN per column of LEGEND_ENTRY-high entries.
DPI = 110
PANEL = 2.2
COLUMN_PAD = 0.15
ROW_PAD = 0.3
TITLE = 0.4
LEGEND_COLUMN = 1.5
LEGEND_ENTRY = 0.2
# Up to this many classes the legend lists them all; above it, only those that appear in the figure.
LEGEND_ALL = 20


def _numpy(x: Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def colorize(mask: Tensor | np.ndarray, palette: Palette) -> np.ndarray:
    """uint8 `[H, W, 3]` colours of the class ids `mask` `[H, W]`: `palette[c]` for class c, black for `IGNORE`."""
    ids = _numpy(mask).astype(np.int64)
    if ids.size and (ids.max() >= len(palette) or ((ids < 0) & (ids != IGNORE)).any()):
        bad = ids[(ids >= len(palette)) | ((ids < 0) & (ids != IGNORE))][0]
        raise ValueError(f"mask holds class id {bad}, outside 0..{len(palette) - 1} (palette) or {IGNORE} (ignored)")
    lut = np.zeros((len(palette) + 1, 3), dtype=np.uint8)
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    return lut[np.where(ids == IGNORE, len(palette), ids)]


def _rgb(image: Tensor | np.ndarray) -> np.ndarray:
    """uint8 `[H, W]`, `[H, W, 1]` or `[H, W, 3]` -> uint8 `[H, W, 3]`."""
    image = _numpy(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 [H, W, 3] (0..255), not {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"image must be [H, W], [H, W, 1] or [H, W, 3], not {list(image.shape)}")
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def overlay(image: Tensor | np.ndarray, mask: Tensor | np.ndarray, palette: Palette, alpha: float = 0.5) -> np.ndarray:
    """uint8 `[H, W, 3]`: the uint8 image `[H, W, 3]` (or grey `[H, W]`; a dataset's `[C, H, W]` image needs
    `.permute(1, 2, 0)`) blended with the colours of `mask` `[H, W]` with weight `alpha`; `IGNORE` pixels keep the
    image as it is."""
    rgb = _rgb(image)
    ids = _numpy(mask)
    if rgb.shape[:2] != ids.shape:
        raise ValueError(f"image {list(rgb.shape[:2])} and mask {list(ids.shape)} must have the same height and width")
    blend = (1.0 - alpha) * rgb + alpha * colorize(ids, palette)
    blend = np.where((ids == IGNORE)[..., None], rgb, np.rint(blend))
    return blend.clip(0, 255).astype(np.uint8)


def plot_segmentation(
    images: Tensor,
    targets: Tensor,
    preds: Tensor,
    palette: Palette,
    class_names: list[str],
    path: Path,
    title: str | None = None,
) -> None:
    """A PNG at `path`, one row per image: image | ground truth | prediction (with its pixel accuracy), and a legend
    of the classes' colours (all of them up to LEGEND_ALL classes, else those that appear), "ignored" (black) when
    some pixel is `IGNORE`. images `[n, C, H, W]` float in [0, 1] (C = 1 or 3, un-normalised), targets and preds
    `[n, H, W]` class ids."""
    n, _, h, w = images.shape
    if targets.shape != (n, h, w) or preds.shape != (n, h, w):
        raise ValueError(
            f"images {list(images.shape)}, targets {list(targets.shape)} and preds {list(preds.shape)} do not pair "
            f"up: expected [n, C, H, W], [n, H, W], [n, H, W]"
        )
    import matplotlib  # lazy: a second of start-up, needed only for the figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    k = len(class_names)
    shown = torch.cat([targets.reshape(-1), preds.reshape(-1)]).cpu()
    present = set(torch.unique(shown).tolist())
    classes = range(k) if k <= LEGEND_ALL else sorted(c for c in present if c != IGNORE)
    handles = [Patch(facecolor=np.asarray(palette[c]) / 255, edgecolor="0.5", label=class_names[c]) for c in classes]
    if IGNORE in present:
        handles.append(Patch(facecolor="black", edgecolor="0.5", label="ignored"))

    panel_h = PANEL * h / w
    fig_h = n * (panel_h + ROW_PAD) + (TITLE if title else 0.0)
    legend_cols = math.ceil(len(handles) / max(1, int(fig_h / LEGEND_ENTRY) - 1))
    panels_w = 3 * (PANEL + COLUMN_PAD)
    fig = plt.figure(figsize=(panels_w + LEGEND_COLUMN * legend_cols, fig_h), dpi=DPI)
    axes = fig.subplots(n, 3, squeeze=False)
    for i in range(n):
        image = images[i].detach().float().permute(1, 2, 0).clamp(0, 1).cpu().numpy()
        target, pred = targets[i].cpu(), preds[i].cpu()
        scored = target != IGNORE
        acc = float((pred[scored] == target[scored]).float().mean()) if scored.any() else math.nan
        axes[i, 0].imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
        axes[i, 1].imshow(colorize(target, palette), interpolation="nearest")
        axes[i, 2].imshow(colorize(pred, palette), interpolation="nearest")
        for ax, label in zip(axes[i], ("image", "ground truth", f"prediction (acc {acc:.2f})"), strict=True):
            ax.set_title(label, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.legend(handles=handles, loc="center right", ncol=legend_cols, fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, panels_w / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def save_label_map(mask: Tensor | np.ndarray, path: Path, num_classes: int | None = None) -> None:
    """An index PNG of the class ids `mask` `[H, W]`: 8-bit (mode L) with `IGNORE` written as 255 when there are at
    most 255 classes (ids 0..254), else 16-bit (mode I;16) with `IGNORE` written as 65535. The class count is
    `num_classes`, or the mask's largest id + 1 (pass it, so that every file of a run has the same depth)."""
    from PIL import Image

    ids = _numpy(mask).astype(np.int64)
    k = num_classes if num_classes is not None else int(ids.max(initial=-1)) + 1
    depth, blank = (np.uint8, 255) if k <= 255 else (np.uint16, 65535)
    if ids.size and (ids.max() >= min(k, blank) or ((ids < 0) & (ids != IGNORE)).any()):
        bad = ids[(ids >= min(k, blank)) | ((ids < 0) & (ids != IGNORE))][0]
        raise ValueError(f"mask holds class id {bad}, outside 0..{min(k, blank) - 1} or {IGNORE} (ignored)")
    Image.fromarray(np.where(ids == IGNORE, blank, ids).astype(depth)).save(path)


def save_overlay(
    image: Tensor | np.ndarray, mask: Tensor | np.ndarray, palette: Palette, path: Path, alpha: float = 0.5
) -> None:
    """An RGB PNG of `overlay(image, mask, palette, alpha)`: image uint8 `[H, W, 3]` (or `[H, W]`), mask `[H, W]`."""
    from PIL import Image

    Image.fromarray(overlay(image, mask, palette, alpha)).save(path)
