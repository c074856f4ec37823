"""The ViT task's size-aware defaults: what `task=vit` chooses from the training split when the config leaves it.

Left to this rule (`null` in conf/task/vit.yaml and in VitTask's fields): `model.patch_size` (with
`model.patch_stride`), `trainer.max_epochs`, `task.warmup_epochs`, and the regularisation `task.random_rotate`,
`task.random_scale` and `model.drop_path`. A value the config gives (command line, experiment file, Python) is kept as
it is. From the images' height and width H x W, the number of training images N and the batch size B:

- **patches**: the stride s is the smallest number of pixels that divides H and W and is at least max(2, max(H, W) / 8),
  with at least 4 patches per side: a grid of 4 x 4 to 8 x 8 patches, 16-64 tokens (attention over a few dozen
  tokens is cheap on a CPU, and a patch of 2 pixels or more carries some shape). Patches overlap, 2s pixels every s
  (the digits recipe's 4 every 2), while s <= 4, that is up to 32 x 32 images: each token then also sees its
  neighbours' edges, for a negligible cost in the patch embedding (on Fashion-MNIST 88.3% against 87.3% for
  non-overlapping 4 x 4 patches, same time). Above that patch = stride: a patch of 2s pixels would make the embedding
  cost as much as the transformer. Sizes with no such stride take the largest smaller one if it gives at most 16 x 16
  patches (more tokens), else the smallest larger one (fewer), else are refused.
- **epochs**: a compute budget of `PATCH_TOKENS` patch-tokens seen in training (images seen x patches per image: on a
  CPU, what training costs, within about 20%, for this model size), in whole epochs, at least 1 and at most
  `MAX_EPOCHS`. Fashion-MNIST (55,000 images of 7 x 7 patches) gets 8 epochs; 50,000 32 x 32 images get 7; the 8 x 8
  digits (1,257 images of 4 x 4 patches) would get hundreds and have the cap, 150 (2,850 steps), the digits recipe.
  The budget is about 8 minutes on 2 CPU cores for the default model (width 64, depth 4, 8 heads); a data set too
  large for it still gets one whole epoch. `trainer.max_steps` given: epochs enough to reach it.
- **warm-up**: `WARMUP_FRACTION` of the run, at most `MAX_WARMUP_EPOCHS` (the digits' 5 of 150): never more than a
  tenth of a run, also one whose `trainer.max_epochs` is given.
- **regularisation**: runs of at least `LONG_RUN` epochs (each image seen many times: small data sets) get the digits
  recipe's random rotation (±10°), zoom (±10%) and stochastic depth (0.1); shorter runs under-fit rather than
  over-fit (training accuracy at the level of validation's) and get none of the three, only the random shifts of
  `task.random_shift` (on Fashion-MNIST, 7 epochs: 86.7% with them, 88.3% without).

`describe` is the one line the task prints when training starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from attnkit.errors import ConfigError

MIN_STRIDE = 2  # pixels
MIN_GRID, MAX_GRID = 4, 8  # patches per side
MAX_OVERLAP_STRIDE = 4  # overlapping patches (2s pixels every s) up to this stride
MAX_FALLBACK_GRID = 16  # sizes with no stride in range: at most this many patches per side
PATCH_TOKENS = 22_000_000  # training budget: images seen x patches per image
MAX_EPOCHS = 150
WARMUP_FRACTION = 0.1
MAX_WARMUP_EPOCHS = 5.0
LONG_RUN = 20  # epochs from which the run is regularised
REGULARISATION = {"random_rotate": 10.0, "random_scale": 0.1, "drop_path": 0.1}  # long runs; short ones: 0
# what each choice is, and the config key that sets it
KEYS = {
    "patch_size": "model.patch_size",
    "max_epochs": "trainer.max_epochs",
    "warmup_epochs": "task.warmup_epochs",
    "random_rotate": "task.random_rotate",
    "random_scale": "task.random_scale",
    "drop_path": "model.drop_path",
}


@dataclass(frozen=True)
class Recipe:
    """What the rule chose (or kept) for this data, and what it means for it.

    `why` maps each key of `KEYS` to how it was decided: `rule`, `given` (by the config) or `recorded` (by the run
    being resumed).
    """

    image_size: tuple[int, int]
    train_images: int
    batch_size: int
    patch_size: int
    patch_stride: int | None
    epochs: int
    warmup_epochs: float
    random_rotate: float
    random_scale: float
    drop_path: float
    why: dict[str, str] = field(default_factory=dict)

    @property
    def stride(self) -> int:
        return self.patch_size if self.patch_stride is None else self.patch_stride

    @property
    def grid(self) -> tuple[int, int]:
        return self.image_size[0] // self.stride, self.image_size[1] // self.stride

    @property
    def tokens(self) -> int:
        """Patches per image (the class token aside)."""
        return self.grid[0] * self.grid[1]

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(self.train_images, self.batch_size)

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def steps_per_epoch(train_images: int, batch_size: int) -> int:
    """Optimizer steps per epoch: whole batches (the task drops the last partial one), one for a set under a batch."""
    return train_images // batch_size if train_images > batch_size else 1


def choose_patches(height: int, width: int) -> tuple[int, int | None]:
    """(patch_size, patch_stride): see the module's docstring. `patch_stride` None = non-overlapping."""
    low = max(MIN_STRIDE, math.ceil(max(height, width) / MAX_GRID))
    divisors = [s for s in range(1, min(height, width) + 1) if height % s == 0 and width % s == 0]
    fitting = [s for s in divisors if s >= low and min(height, width) // s >= MIN_GRID]
    finer = [s for s in divisors if s < low and max(height, width) // s <= MAX_FALLBACK_GRID]
    coarser = [s for s in divisors if s >= low and min(height, width) // s >= 2]
    if not (fitting or finer or coarser):
        raise ConfigError(
            f"no patch size from {low} to {min(height, width) // MIN_GRID} pixels divides {height}x{width} images; "
            f"give data.image_size a multiple of 8, or model.patch_size"
        )
    stride = fitting[0] if fitting else finer[-1] if finer else coarser[0]
    return overlapping(stride), None if overlapping(stride) == stride else stride


def overlapping(stride: int) -> int:
    """The patch for a stride: 2 x stride (overlapping) up to MAX_OVERLAP_STRIDE when even, else the stride."""
    return 2 * stride if stride <= MAX_OVERLAP_STRIDE and stride % 2 == 0 else stride


def choose_epochs(train_images: int, batch_size: int, tokens: int, max_steps: int | None = None) -> int:
    """Epochs: the patch-token budget in whole epochs, within [1, MAX_EPOCHS]; or enough to reach `max_steps`."""
    per_epoch = steps_per_epoch(train_images, batch_size)
    if max_steps is not None and max_steps > 0:
        return max(1, math.ceil(max_steps / per_epoch))
    seen = per_epoch * min(batch_size, train_images) * max(1, tokens)  # patch-tokens per epoch
    return int(min(MAX_EPOCHS, max(1, round(PATCH_TOKENS / seen))))


def choose_warmup(epochs: int) -> float:
    """Warm-up epochs: a tenth of the run, at most 5."""
    return float(min(MAX_WARMUP_EPOCHS, round(WARMUP_FRACTION * epochs, 2)))


def choose_regularisation(epochs: int) -> dict[str, float]:
    """Rotation, zoom and stochastic depth: the digits recipe's for runs of LONG_RUN epochs or more, else none."""
    return {key: value if epochs >= LONG_RUN else 0.0 for key, value in REGULARISATION.items()}


def choose(
    image_size: Sequence[int],
    train_images: int,
    batch_size: int,
    *,
    patch_size: int | None = None,
    patch_stride: int | None = None,
    max_epochs: int | None = None,
    max_steps: int | None = None,
    warmup_epochs: float | None = None,
    random_rotate: float | None = None,
    random_scale: float | None = None,
    drop_path: float | None = None,
    recorded: Mapping[str, Any] | None = None,
) -> Recipe:
    """The recipe for this data: what is given (not None) kept, the rest taken from `recorded` (the run being
    resumed: the keys of `KEYS` and `patch_stride`) or else chosen by the rule."""
    h, w = int(image_size[0]), int(image_size[1])
    recorded = recorded or {}
    given = {
        "patch_size": patch_size,
        "max_epochs": max_epochs,
        "warmup_epochs": warmup_epochs,
        "random_rotate": random_rotate,
        "random_scale": random_scale,
        "drop_path": drop_path,
    }
    why = {key: "given" if value is not None else "recorded" for key, value in given.items()}
    why = {key: "rule" if why[key] == "recorded" and recorded.get(key) is None else why[key] for key in why}
    value = {key: given[key] if why[key] == "given" else recorded.get(key) for key in given}

    if why["patch_size"] == "recorded":
        patch_stride = recorded.get("patch_stride")
    elif why["patch_size"] == "rule" and patch_stride is not None:  # a stride alone: the rule's patch for it
        value["patch_size"] = overlapping(int(patch_stride))
    elif why["patch_size"] == "rule":
        value["patch_size"], patch_stride = choose_patches(h, w)
    stride = int(value["patch_size"] if patch_stride is None else patch_stride)
    tokens = (h // stride) * (w // stride) if stride > 0 else 0
    if why["max_epochs"] == "rule":
        value["max_epochs"] = choose_epochs(train_images, batch_size, tokens, max_steps)
    epochs = int(value["max_epochs"])
    if epochs <= 0:  # max_epochs=-1 with max_steps
        epochs = math.ceil((max_steps or 1) / steps_per_epoch(train_images, batch_size))
    if why["warmup_epochs"] == "rule":
        value["warmup_epochs"] = choose_warmup(epochs)
    for key, chosen in choose_regularisation(epochs).items():
        if why[key] == "rule":
            value[key] = chosen
    return Recipe(
        image_size=(h, w),
        train_images=int(train_images),
        batch_size=int(batch_size),
        patch_size=int(value["patch_size"]),
        patch_stride=None if patch_stride is None else int(patch_stride),
        epochs=int(value["max_epochs"]),
        warmup_epochs=float(value["warmup_epochs"]),
        random_rotate=float(value["random_rotate"]),
        random_scale=float(value["random_scale"]),
        drop_path=float(value["drop_path"]),
        why=why,
    )


def describe(recipe: Recipe) -> str:
    """One line: what was chosen for this data and why, and which keys choose instead."""
    (h, w), (gh, gw), p, why = recipe.image_size, recipe.grid, recipe.patch_size, recipe.why
    how = {"rule": "", "given": " as given", "recorded": " as recorded"}
    every = f" every {recipe.stride} px" if recipe.stride != p else ""
    parts = [f"{p}x{p} patches{every} ({gh}x{gw} grid, {recipe.tokens} tokens){how[why['patch_size']]}"]
    if recipe.epochs > 0:
        steps = f"{recipe.steps:,} steps of {recipe.batch_size}"
        if why["max_epochs"] == "rule":
            limit = "the cap" if recipe.epochs == MAX_EPOCHS else f"a budget of {PATCH_TOKENS / 1e6:g}M patch-tokens"
            steps = f"{steps}: {limit}"
        parts.append(f"{recipe.epochs:,} epoch{'s' if recipe.epochs != 1 else ''} ({steps}){how[why['max_epochs']]}")
    else:
        parts.append(f"epochs up to trainer.max_steps{how[why['max_epochs']]}")
    rule = " (a tenth of the run, at most 5)" if why["warmup_epochs"] == "rule" else how[why["warmup_epochs"]]
    parts.append(f"warm-up {recipe.warmup_epochs:g} epochs{rule}")
    regularisation = ("random_rotate", "random_scale", "drop_path")
    values = f"rotation ±{recipe.random_rotate:g}°, zoom ±{recipe.random_scale:.0%}, drop-path {recipe.drop_path:g}"
    if not any(getattr(recipe, key) for key in regularisation):
        values = "no rotation, zoom or drop-path"
    reason = [how[why[key]].strip() for key in regularisation if why[key] != "rule"]
    if len(reason) < len(regularisation):
        reason.insert(0, f"{'at least' if recipe.epochs >= LONG_RUN else 'under'} {LONG_RUN} epochs")
    parts.append(f"{values} ({', '.join(reason)})")
    chosen = [KEYS[key] for key in KEYS if why[key] == "rule"]
    tail = f"; set {', '.join(chosen)} to choose yourself" if chosen else ""
    return f"recipe: {h}x{w} images, {recipe.train_images:,} training images -> {', '.join(parts)}{tail}"
