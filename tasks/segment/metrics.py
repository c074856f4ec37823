"""Segmentation scores from a confusion matrix: mIoU, pixel and class accuracy, the majority-class baseline, and
median-frequency class weights.

Everything is computed from one int64 `[K, K]` confusion matrix (rows = true class, columns = predicted class) that
a caller sums over the evaluated batches; pixels whose truth is `IGNORE` never enter it. Conventions (those of
mmsegmentation's `mean_iou`, the usual CamVid / Cityscapes protocol):

- IoU_c = TP / (TP + FP + FN); it is undefined (None) for a class with no pixel in truth nor prediction.
  `miou` is the mean over the classes whose IoU is defined (NaN ones left out): a class absent from the truth but
  predicted somewhere counts with IoU 0, so false alarms of a class that never occurs cost. On a whole evaluation
  split where every class occurs this is the plain mean over all K classes.
- recall_c (class accuracy) = TP / truth pixels of c; undefined (None) for a class absent from the truth.
  `class_acc` is the mean over the classes present in the truth.
- `pixel_acc` = correct / scored pixels.
With no scored pixel at all the three means are NaN (written as null in metrics.json).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from attnkit.tasks.segment.data.base import IGNORE


def confusion(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """int64 `[K, K]` counts (rows = true class, columns = predicted) of class ids `pred` and `target` (any matching
    shape, e.g. `[B, H, W]`), on their device. Pixels whose target is `IGNORE` are left out (their pred is not read);
    any other value outside `[0, K)` is a ValueError."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    for name, t in (("pred", pred), ("target", target)):
        if t.is_floating_point() or t.is_complex():
            raise ValueError(f"{name} must hold integer class ids, not {t.dtype} (e.g. logits.argmax(1))")
    k = num_classes
    target = target.reshape(-1).to(torch.int64)
    keep = target != IGNORE
    target, pred = target[keep], pred.reshape(-1)[keep].to(torch.int64)
    for name, t in (("target", target), ("pred", pred)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= k):
            bad = t[(t < 0) | (t >= k)][0]
            allowed = f"0..{k - 1}" + (f" or {IGNORE} (ignored)" if name == "target" else "")
            raise ValueError(f"{name} holds class id {int(bad)}, outside {allowed} for num_classes={k}")
    return torch.bincount(target * k + pred, minlength=k * k).reshape(k, k)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _mean(values: list[float | None]) -> float:
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else math.nan


def scores(conf: Tensor, class_names: list[str]) -> dict[str, Any]:
    """Scores of a confusion matrix `[K, K]` (rows = truth): `miou`, `pixel_acc`, `class_acc` (Python floats in
    [0, 1], NaN without scored pixels), `per_class_iou` and `per_class_acc` ({name: float, or None where undefined:
    see the module docstring}) and `pixels` (scored pixel count)."""
    k = len(class_names)
    if conf.shape != (k, k):
        raise ValueError(f"confusion matrix {tuple(conf.shape)} does not match {k} class names: expected ({k}, {k})")
    conf = conf.detach().to("cpu", torch.float64)
    tp, truth, predicted = conf.diagonal(), conf.sum(1), conf.sum(0)
    total = float(truth.sum())
    iou = [_ratio(float(tp[c]), float(truth[c] + predicted[c] - tp[c])) for c in range(k)]
    acc = [_ratio(float(tp[c]), float(truth[c])) for c in range(k)]
    return {
        "miou": _mean(iou),
        "pixel_acc": float(tp.sum()) / total if total > 0 else math.nan,
        "class_acc": _mean(acc),
        "per_class_iou": dict(zip(class_names, iou, strict=True)),
        "per_class_acc": dict(zip(class_names, acc, strict=True)),
        "pixels": int(total),
    }


def majority_baseline(
    class_pixels_train: list[int], conf_eval: Tensor, class_names: list[str] | None = None
) -> dict[str, Any]:
    """`scores` of always predicting the training split's most frequent class (the lowest id on a tie) on the
    pixels counted in `conf_eval` `[K, K]`: its row sums (the truth) all move to that column. `class_names` default to
    the class ids as strings."""
    k = len(class_pixels_train)
    if conf_eval.shape != (k, k):
        raise ValueError(f"confusion matrix {tuple(conf_eval.shape)} does not match {k} class pixel counts")
    if not any(p > 0 for p in class_pixels_train):
        raise ValueError("class_pixels_train has no labelled pixel: no majority class to predict")
    majority = max(range(k), key=lambda c: (class_pixels_train[c], -c))
    baseline = torch.zeros(k, k, dtype=torch.int64)
    baseline[:, majority] = conf_eval.detach().to("cpu", torch.int64).sum(1)
    return scores(baseline, class_names if class_names is not None else [str(c) for c in range(k)])


def median_frequency_weights(class_pixels: list[int]) -> list[float]:
    """Median frequency balancing (Eigen & Fergus 2015): weight_c = median(freq) / freq_c, the median over the
    classes with pixels. Simplified to freq_c = pixels_c / all labelled pixels (the paper divides by the pixels of the
    images where c occurs; only per-class totals are kept here), so weight_c = median(pixels) / pixels_c. A class
    with no pixel gets weight 0: it has no target to weigh."""
    present = sorted(p for p in class_pixels if p > 0)
    if not present:
        raise ValueError("class_pixels has no labelled pixel: no frequency to balance")
    mid = len(present) // 2
    median = present[mid] if len(present) % 2 else (present[mid - 1] + present[mid]) / 2
    return [median / p if p > 0 else 0.0 for p in class_pixels]
