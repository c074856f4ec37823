"""`data=shapes` (the default): generated scenes of overlapping shapes on cluttered backgrounds, offline.

Five shape classes that differ only by shape: colours are drawn from the same distribution as the background's, so
colour alone never tells the class; the background is a smooth random colour field with stripes and clutter (thin
strokes, small blobs) that is labelled background; shapes overlap, the later one wins, and the mask says what is
visible. A scene is first described (`Scenes`: class, centre, size, rotation, colour, drawing order per shape), then
rendered (`render`), vectorised over images, so 2,400 scenes of 64x64 take about a second.

Geometry, in a shape's own frame (u, v) = R(-angle) (x - cx, y - cy) / size, pixel centres at (col + 0.5, row + 0.5)
with y down: disc u² + v² <= 1; square |u|, |v| <= 0.85; triangle, equilateral with a vertex at (0, 1.3) (u cos a +
v sin a <= 0.65 for a = -90°, 30°, 150°); ring 0.55² <= u² + v² <= 1; cross (|u| <= 1, |v| <= 0.33) or
(|u| <= 0.33, |v| <= 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

import attnkit
from attnkit.data.checks import check_int
from attnkit.ranges import PositiveInt, Seed
from attnkit.tasks.segment.data.base import SegmentData, SegmentSplits, default_palette
from attnkit.tasks.segment.data.pairs import assemble

CLASSES = ["background", "disc", "square", "triangle", "ring", "cross"]
SQUARE_HALF_SIDE = 0.85
TRIANGLE_INRADIUS = 0.65
RING_INNER = 0.55
CROSS_HALF_WIDTH = 0.33
# shape size (its radius in the definitions above) as a fraction of the image side
SIZE_RANGE = (0.12, 0.26)
STROKES = 3  # clutter strokes per image at most
BLOBS = 3  # clutter blobs per image at most
BLOB_RADIUS = (0.02, 0.05)  # a blob is smaller than the smallest disc
NOISE = 8.0  # pixel noise (std, 0..255 scale)
CHUNK_PIXELS = 2**22  # images rendered at once: this many pixels per shape slot (few, large tensor operations)


@dataclass
class Scenes:
    """Descriptions of `n` scenes of side `size`: `max_shapes` slots per scene, drawn in slot order (a later slot is
    on top). Shape arrays are `[n, max_shapes]` (class 0 = an empty slot), centres `[n, max_shapes, 2]` as (y, x)
    pixels, colours `[..., 3]` in 0..255; the background's arrays describe its colour field, stripes, strokes and
    blobs; `noise_seed` seeds the pixel noise."""

    size: int
    classes: np.ndarray
    centres: np.ndarray
    sizes: np.ndarray
    angles: np.ndarray
    colours: np.ndarray
    shading: np.ndarray  # [n, S, 2]: brightness change across the shape, and its direction
    field: np.ndarray  # [n, 3, 3, 3]: background colours on a 3x3 grid, interpolated bilinearly
    stripes: np.ndarray  # [n, 5]: direction, period (px), phase, duty, strength (0 = none)
    stripe_colours: np.ndarray  # [n, 3]
    strokes: np.ndarray  # [n, STROKES, 5]: (y0, x0, y1, x1, width); width 0 = none
    stroke_colours: np.ndarray  # [n, STROKES, 3]
    blobs: np.ndarray  # [n, BLOBS, 3]: (y, x, radius); radius 0 = none
    blob_colours: np.ndarray  # [n, BLOBS, 3]
    noise_seed: int

    def __len__(self) -> int:
        return len(self.classes)


def sample_scenes(n: int, size: int, max_shapes: int, rng: np.random.Generator) -> Scenes:
    """`n` random scene descriptions: 1..max_shapes shapes each, uniform classes, sizes, places, angles, colours."""
    s = max_shapes
    count = rng.integers(1, s + 1, size=n)
    present = np.arange(s)[None, :] < count[:, None]
    classes = np.where(present, rng.integers(1, len(CLASSES), size=(n, s)), 0)
    centres = rng.uniform(0.1, 0.9, size=(n, s, 2)) * size
    sizes = rng.uniform(*SIZE_RANGE, size=(n, s)) * size
    angles = rng.uniform(0.0, 2 * math.pi, size=(n, s))
    colours = rng.uniform(0, 255, size=(n, s, 3))
    shading = np.stack([rng.uniform(-50, 50, size=(n, s)), rng.uniform(0, 2 * math.pi, size=(n, s))], axis=-1)
    field = rng.uniform(0, 255, size=(n, 3, 3, 3))
    stripes = np.stack(
        [
            rng.uniform(0, math.pi, size=n),
            rng.uniform(0.12, 0.35, size=n) * size,
            rng.uniform(0, 1, size=n),
            rng.uniform(0.3, 0.6, size=n),
            np.where(rng.random(n) < 0.6, rng.uniform(0.3, 0.8, size=n), 0.0),
        ],
        axis=-1,
    )
    stripe_colours = rng.uniform(0, 255, size=(n, 3))
    ends = rng.uniform(0, size, size=(n, STROKES, 4))
    widths = np.where(rng.random((n, STROKES)) < 0.5, rng.uniform(0.8, 1.8, size=(n, STROKES)) * size / 64, 0.0)
    strokes = np.concatenate([ends, widths[..., None]], axis=-1)
    stroke_colours = rng.uniform(0, 255, size=(n, STROKES, 3))
    radii = np.where(rng.random((n, BLOBS)) < 0.5, rng.uniform(*BLOB_RADIUS, size=(n, BLOBS)) * size, 0.0)
    blobs = np.concatenate([rng.uniform(0, size, size=(n, BLOBS, 2)), radii[..., None]], axis=-1)
    blob_colours = rng.uniform(0, 255, size=(n, BLOBS, 3))
    return Scenes(
        size, classes, centres, sizes, angles, colours, shading, field, stripes, stripe_colours, strokes,
        stroke_colours, blobs, blob_colours, int(rng.integers(0, 2**31)),
    )  # fmt: skip


def render(scenes: Scenes) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images `[n, 3, H, W]` and int16 masks `[n, H, W]` (class ids; 0 = background) of scene descriptions."""
    n, size, slots = len(scenes), scenes.size, scenes.classes.shape[1]
    chunk = max(1, CHUNK_PIXELS // (size * size * max(slots, 1)))
    images = torch.empty(n, 3, size, size, dtype=torch.uint8)
    masks = torch.empty(n, size, size, dtype=torch.int16)
    noise = torch.Generator().manual_seed(scenes.noise_seed)
    for start in range(0, n, chunk):
        part = slice(start, min(n, start + chunk))
        images[part], masks[part] = _render_chunk(scenes, part, noise)
    return images, masks


def _render_chunk(scenes: Scenes, part: slice, noise: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    def t(array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array[part], dtype=torch.float32)

    size = scenes.size
    centre = torch.arange(size, dtype=torch.float32) + 0.5
    ys, xs = centre.view(1, 1, size, 1), centre.view(1, 1, 1, size)
    ramp = _bilinear_weights(size)  # [H, 3]: the 3x3 colour grid interpolated bilinearly
    image = torch.einsum("hi,bcij,wj->bchw", ramp, t(scenes.field), ramp)  # [B, 3, H, W]
    b = image.shape[0]

    direction, period, phase, duty, strength = t(scenes.stripes).view(b, 5, 1, 1).unbind(1)
    wave = (xs[:, 0] * torch.cos(direction) + ys[:, 0] * torch.sin(direction)) / period + phase  # [B, H, W]
    on = ((wave - torch.floor(wave)) < duty).float() * strength
    image = torch.lerp(image, t(scenes.stripe_colours).view(b, 3, 1, 1), on.unsqueeze(1))

    y0, x0, y1, x1, width = t(scenes.strokes).view(b, STROKES, 5, 1, 1).unbind(2)
    dy, dx = y1 - y0, x1 - x0
    along = (((ys - y0) * dy + (xs - x0) * dx) / (dy * dy + dx * dx).clamp_min(1e-6)).clamp(0, 1)
    stroke = ((ys - y0 - along * dy) ** 2 + (xs - x0 - along * dx) ** 2) <= (width / 2) ** 2  # [B, K, H, W]
    by, bx, radius = t(scenes.blobs).view(b, BLOBS, 3, 1, 1).unbind(2)
    blob = ((ys - by) ** 2 + (xs - bx) ** 2) <= radius**2
    clutter, top = _topmost(torch.cat([stroke, blob], dim=1))  # strokes, then blobs on top
    colours = torch.cat([t(scenes.stroke_colours), t(scenes.blob_colours)], dim=1)  # [B, K, 3]
    image = torch.where(clutter, _pick(colours, top), image)

    classes = torch.as_tensor(scenes.classes[part], dtype=torch.int64)
    s = classes.shape[1]
    cy, cx = t(scenes.centres).view(b, s, 2, 1, 1).unbind(2)
    r, angle = t(scenes.sizes).view(b, s, 1, 1), t(scenes.angles).view(b, s, 1, 1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    u = ((xs - cx) * cos + (ys - cy) * sin) / r  # [B, S, H, W]
    v = ((ys - cy) * cos - (xs - cx) * sin) / r
    covered, top = _topmost(_inside(classes, u, v))  # the last slot that covers a pixel
    mask = torch.where(covered[:, 0], classes.gather(1, top.flatten(1)).view(b, size, size), 0)
    u, v = u.gather(1, top), v.gather(1, top)  # [B, 1, H, W]: the visible shape's frame
    shade, towards = t(scenes.shading).unbind(-1)  # [B, S]
    light = _pick(shade, top) * (u * _pick(torch.cos(towards), top) + v * _pick(torch.sin(towards), top))
    image = torch.where(covered, _pick(t(scenes.colours), top) + light, image)
    image = image + NOISE * torch.randn(image.shape, generator=noise)
    return image.round_().clamp_(0, 255).to(torch.uint8), mask.to(torch.int16)


def _bilinear_weights(size: int) -> torch.Tensor:
    """`[size, 3]` weights that interpolate 3 values at the ends and middle of a side at each pixel centre."""
    at = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2  # 0..2 across the side
    return (1 - (at.view(-1, 1) - torch.arange(3, dtype=torch.float32)).abs()).clamp_min(0)


def _topmost(hits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Whether any layer hits each pixel, `[B, 1, H, W]`, and the index of the last one that does (0 if none),
    from bool `[B, L, H, W]`."""
    layers = hits.shape[1]
    order = torch.arange(1, layers + 1, dtype=torch.uint8).view(1, layers, 1, 1)
    last, top = (hits * order).max(dim=1, keepdim=True)
    return last > 0, top


def _pick(values: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """Per-layer values `[B, L]` or `[B, L, C]` at each pixel's layer `top` `[B, 1, H, W]`: `[B, 1 or C, H, W]`."""
    b, layers = values.shape[:2]
    flat = top.flatten(1)  # [B, H*W]
    if values.dim() == 2:
        return values.gather(1, flat).view(top.shape)
    channels = values.shape[2]
    picked = values.gather(1, flat.unsqueeze(-1).expand(b, flat.shape[1], channels))  # [B, H*W, C]
    return picked.transpose(1, 2).reshape(b, channels, *top.shape[-2:])


def _inside(classes: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Whether each pixel (u, v) of each slot `[B, S, H, W]` is inside its slot's shape (class `[B, S]`; 0 = empty):
    every shape is `r2 <= top, r2 >= hole, max(|u|, |v|) <= box, min(|u|, |v|) <= arm`, within the triangle's three
    edges `<= edge`, with bounds per class."""
    inf = math.inf
    # class: (top, hole, box, arm, edge)
    bounds = torch.tensor(
        [
            (-inf, inf, inf, inf, inf),  # empty slot: nothing is inside
            (1.0, -inf, inf, inf, inf),  # disc
            (inf, -inf, SQUARE_HALF_SIDE, inf, inf),  # square
            (inf, -inf, inf, inf, TRIANGLE_INRADIUS),  # triangle
            (1.0, RING_INNER**2, inf, inf, inf),  # ring
            (inf, -inf, 1.0, CROSS_HALF_WIDTH, inf),  # cross
        ],
        dtype=torch.float32,
    )[classes]  # [B, S, 5]
    top, hole, box, arm, edge = bounds.view(*classes.shape, 5, 1, 1).unbind(2)
    r2 = u * u + v * v
    au, av = u.abs(), v.abs()
    half = math.sin(math.radians(30))
    across = math.cos(math.radians(30)) * au  # the edges at 30° and 150° are mirror images in u
    edges = torch.maximum(-v, across + half * v)
    return (
        (r2 <= top) & (r2 >= hole) & (torch.maximum(au, av) <= box) & (torch.minimum(au, av) <= arm) & (edges <= edge)
    )


@attnkit.register("data", "shapes")
class ShapesData(SegmentData):
    """Generated scenes of shapes (disc, square, triangle, ring, cross) on cluttered backgrounds: 6 classes with
    background, offline, the same tensors for the same `seed` (the default).

    `train_size`, `val_size` and `test_size` scenes of `image_size` x `image_size` RGB pixels, each with 1 to
    `max_shapes` shapes of random class, size, place, rotation and colour; shapes overlap (the later one is
    visible). Each split comes from its own seed derived from `seed`. Normalised with the training split's mean and
    std unless `mean` and `std` were set before loading (a checkpoint's).
    """

    def __init__(
        self,
        batch_size: PositiveInt = 16,
        image_size: PositiveInt = 64,
        train_size: PositiveInt = 2000,
        val_size: PositiveInt = 200,
        test_size: PositiveInt = 200,
        max_shapes: PositiveInt = 4,
        seed: Seed = 0,
    ) -> None:
        super().__init__(batch_size=batch_size)
        sizes = {"image_size": image_size, "train_size": train_size, "val_size": val_size, "test_size": test_size}
        for key, value in {**sizes, "max_shapes": max_shapes}.items():
            check_int(key, value, minimum=1)
        check_int("seed", seed, minimum=0)
        self.image_size = (image_size, image_size)
        self.in_channels = 3
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.max_shapes = max_shapes
        self.seed = seed

    def scenes(self, split: str) -> Scenes:
        """The scene descriptions of `split` (train, val or test)."""
        rng = np.random.default_rng([self.seed, ("train", "val", "test").index(split)])
        return sample_scenes(self.sizes[split], self.image_size[0], self.max_shapes, rng)

    def _load(self) -> SegmentSplits:
        parts = {split: render(self.scenes(split)) for split in self.sizes}
        return assemble(self, parts, CLASSES, default_palette(len(CLASSES)), channels=self.in_channels)
