"""Lightning glue for ViT classification: random-affine augmentation and the warm-up counted in epochs."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from attnkit.tasks.vit.views import mean_log_probs, view_logits
from attnkit.train.classification import ClassifierModule


def random_affine(images: Tensor, shift: float = 0.0, rotate: float = 0.0, scale: float = 0.0) -> Tensor:
    """Per image: translate by up to ±`shift` pixels, rotate by up to ±`rotate` degrees, zoom by up to ±`scale`
    (a fraction), resampled bilinearly with edge pixels repeated. `[B, C, H, W]` -> same."""
    if shift <= 0 and rotate <= 0 and scale <= 0:
        return images
    b, _, h, w = images.shape
    uniform = lambda *shape: torch.rand(*shape, device=images.device) * 2 - 1  # noqa: E731  in [-1, 1)
    angle = uniform(b) * math.radians(rotate)
    zoom = 1 + uniform(b) * scale
    offset = uniform(b, 2) * shift * 2 / torch.tensor([w, h], device=images.device)  # pixels -> [-1, 1] units
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


class ImageClassifier(ClassifierModule):
    """Cross-entropy training of a registered image model on `(images, labels)` batches, augmented by the recipe's
    `random_shift` / `random_rotate` / `random_scale`, warmed up for `warmup_epochs`; tested on the views of
    `test_shift` (views.py), with the unmoved image's accuracy beside it (`test/acc_one_view`)."""

    def augment(self, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        r = self.recipe
        return (random_affine(inputs[0], r.random_shift, r.random_rotate, r.random_scale),)

    def counted(self, inputs: tuple[Tensor, ...]) -> dict[str, int]:
        return {"images": len(inputs[0])}

    def warmup(self, total_steps: int) -> int:
        per_epoch = total_steps / max(1, self.trainer.max_epochs or 1)
        return round(self.recipe.warmup_epochs * per_epoch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        shift = int(getattr(self.recipe, "test_shift", 0) or 0)  # 0 in checkpoints from before the key
        logits = view_logits(self.eval_model, images, shift)  # [V, B, classes]
        self.score(mean_log_probs(logits), labels, "test")
        if shift > 0:
            self.log_accuracy("test/acc_one_view", logits[0], labels)
