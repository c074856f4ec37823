"""The ViT task's Lightning glue: augmentation, test-time views and the learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch

from attnkit.tasks.vit.module import random_affine
from attnkit.tasks.vit.views import mean_log_probs, shifted_views, view_logits
from attnkit.train.schedule import warmup_cosine


def test_random_affine_without_augmentation_is_identity() -> None:
    images = torch.randn(4, 1, 8, 8)
    assert random_affine(images) is images


def test_random_affine_keeps_shape_and_range() -> None:
    images = torch.rand(16, 3, 8, 8)
    out = random_affine(images, shift=1.0, rotate=10.0, scale=0.1)
    assert out.shape == images.shape
    assert out.min() >= images.min() - 1e-6 and out.max() <= images.max() + 1e-6  # bilinear: no new extremes
    assert not torch.allclose(out, images)


def test_random_affine_shift_moves_content_by_at_most_the_shift() -> None:
    torch.manual_seed(0)
    images = torch.zeros(64, 1, 9, 9)
    images[:, :, 4, 4] = 1.0  # a dot in the centre
    out = random_affine(images, shift=1.0)
    torch.testing.assert_close(out.sum(dim=(1, 2, 3)), torch.ones(64), atol=1e-5, rtol=0)  # mass is kept
    rows = (out[:, 0].sum(dim=2) * torch.arange(9.0)).sum(dim=1)  # centre of mass
    cols = (out[:, 0].sum(dim=1) * torch.arange(9.0)).sum(dim=1)
    assert (rows - 4).abs().max() <= 1.0 + 1e-5 and (cols - 4).abs().max() <= 1.0 + 1e-5
    assert (rows - 4).abs().max() > 0.3  # it does move


@pytest.mark.parametrize("shift", [1, 2])
def test_shifted_views_move_the_image_whole_pixels_repeating_edges(shift: int) -> None:
    images = torch.arange(2 * 3 * 7 * 6, dtype=torch.float32).reshape(2, 3, 7, 6)
    views = shifted_views(images, shift)
    assert views.shape == (5, 2, 3, 7, 6)
    torch.testing.assert_close(views[0], images)
    s = shift
    torch.testing.assert_close(views[1][..., s:, :], images[..., :-s, :])  # moved down
    torch.testing.assert_close(views[2][..., :-s, :], images[..., s:, :])  # up
    torch.testing.assert_close(views[3][..., :, s:], images[..., :, :-s])  # right
    torch.testing.assert_close(views[4][..., :, :-s], images[..., :, s:])  # left
    torch.testing.assert_close(views[1][..., :s, :], images[..., :1, :].expand(-1, -1, s, -1))  # the edge repeated


def test_view_logits_batch_the_views_and_average_probabilities() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4))
    images = torch.randn(3, 1, 4, 4)
    logits = view_logits(model, images, 1)
    assert logits.shape == (5, 3, 4)
    for i, view in enumerate(shifted_views(images, 1)):
        torch.testing.assert_close(logits[i], model(view))
    expected = torch.stack([lg.softmax(-1) for lg in logits]).mean(0).log()
    torch.testing.assert_close(mean_log_probs(logits), expected)
    alone = view_logits(model, images, 0)
    assert alone.shape == (1, 3, 4)
    torch.testing.assert_close(mean_log_probs(alone), model(images).log_softmax(-1))


@pytest.mark.parametrize(("total", "warmup"), [(100, 10), (10, 0), (5, 20)])
def test_warmup_cosine_rises_then_decays_to_the_floor(total, warmup) -> None:
    factor = warmup_cosine(total, warmup, min_ratio=0.01)
    values = [factor(step) for step in range(total + 1)]
    peak = values.index(max(values))
    assert all(a <= b + 1e-12 for a, b in zip(values[:peak], values[1 : peak + 1], strict=True))
    assert all(a >= b - 1e-12 for a, b in zip(values[peak:], values[peak + 1 :], strict=False))
    assert max(values) <= 1.0 and math.isclose(values[-1], 0.01, abs_tol=1e-9)
