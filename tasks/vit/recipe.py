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
- **epochs**: as many whole epochs as fit `task.budget_minutes` (default 15) of wall time on the machine the run is
  on, at least 1 and at most `MAX_EPOCHS` (150). The task times a few training steps of the model it will train (on
  batches of the training split at the run's batch size and thread count: attnkit/train/step_time.py, about a second)
  and the run is estimated at `STEP_FACTOR` x the timed seconds plus `STEP_SECONDS` per step, plus `FIXED_SECONDS`:
  epochs = floor((budget - FIXED_SECONDS) / (steps per epoch x (seconds per step x STEP_FACTOR + STEP_SECONDS))).
  The terms are what the timed steps leave out and the whole command spends, fitted to two real runs on this 2-core
  machine: a factor for validation every epoch and the test, which grow with the step (1.05 measured, 1.15 taken),
  about 10 ms a step of Lightning's hooks, logging, augmentation and the moving average, which do not, and the
  start-up (about 10 s measured, 15 taken). The two runs: the digits main job (2,850 steps timed at 20 ms, 100 s of
  wall time, 2 threads) and 4 epochs of 42,000 32 x 32 CamVid crops (benchmarks/make_camvid_crops.py: 2,624 steps
  timed at 185 ms, 549 s of wall time; one thread with another run beside it). A single factor cannot fit both: the
  fixed cost per step is half a small model's step and a twentieth of a large one's. The estimate assumes the
  machine keeps the speed it had while timing (on a busy machine timings vary by a tenth, at times by half; other jobs
  starting later slow the run), one device, and eager training (`compile` and several devices only make it shorter
  than planned); the time spent loading the data before the timing is not counted. The digits (1,257 images, 19 steps
  an epoch) fit 150 epochs in a few minutes: the cap, as their recipe (their timing, kept short rather than skipped,
  costs about 0.3 s of a run of minutes); 42,000 32 x 32 photographs at 101 ms a step (2 cores) get 10. A data set
  too large for the budget still gets one whole epoch, said in the line. `trainer.max_steps` given: epochs enough to
  reach it. Nothing is timed when the epochs are given, recorded (a resumed run keeps its own) or set by
  `trainer.max_steps`.
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
# a run's wall time = steps x (timed step x STEP_FACTOR + STEP_SECONDS) + FIXED_SECONDS: see the module's docstring
STEP_FACTOR = 1.15
STEP_SECONDS = 0.010
FIXED_SECONDS = 15.0
MAX_EPOCHS = 150
BUDGET_MINUTES = 15.0  # VitTask.budget_minutes' default
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
    seconds_per_step: float | None = None  # measured on this machine; None: not timed
    budget_minutes: float | None = None
    max_steps: int | None = None  # trainer.max_steps, when it sets the epochs

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

    @property
    def minutes(self) -> float | None:
        """The run's estimated wall time (training, validation, test) at the measured speed; None if not timed."""
        return None if self.seconds_per_step is None else run_minutes(self.steps, self.seconds_per_step)


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


def run_minutes(steps: int, seconds_per_step: float) -> float:
    """A run's estimated wall time in minutes: its training steps at the measured speed with what each step and the
    run add (STEP_FACTOR, STEP_SECONDS, FIXED_SECONDS)."""
    return (steps * (seconds_per_step * STEP_FACTOR + STEP_SECONDS) + FIXED_SECONDS) / 60


def choose_epochs(
    train_images: int,
    batch_size: int,
    seconds_per_step: float | None,
    budget_minutes: float,
    max_steps: int | None = None,
) -> int:
    """Epochs: as many whole epochs as fit `budget_minutes` at `seconds_per_step`, within [1, MAX_EPOCHS] (not
    timed: MAX_EPOCHS); or enough to reach `max_steps`."""
    per_epoch = steps_per_epoch(train_images, batch_size)
    if max_steps is not None and max_steps > 0:
        return max(1, math.ceil(max_steps / per_epoch))
    if seconds_per_step is None or seconds_per_step <= 0:
        return MAX_EPOCHS
    epoch_seconds = per_epoch * (seconds_per_step * STEP_FACTOR + STEP_SECONDS)
    fitting = math.floor((budget_minutes * 60 - FIXED_SECONDS) / epoch_seconds + 1e-9)
    return int(min(MAX_EPOCHS, max(1, fitting)))


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
    budget_minutes: float = BUDGET_MINUTES,
    seconds_per_step: float | None = None,
) -> Recipe:
    """The recipe for this data: what is given (not None) kept, the rest taken from `recorded` (the run being
    resumed: the keys of `KEYS` and `patch_stride`) or else chosen by the rule. Epochs left to the rule fit
    `budget_minutes` at `seconds_per_step` (the measured time of a training step of the recipe's model; None, not
    timed: `MAX_EPOCHS`, whose model the caller then times)."""
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
    if why["max_epochs"] == "rule":
        value["max_epochs"] = choose_epochs(train_images, batch_size, seconds_per_step, budget_minutes, max_steps)
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
        seconds_per_step=seconds_per_step,
        budget_minutes=float(budget_minutes),
        max_steps=max_steps if max_steps is not None and max_steps > 0 else None,
    )


def plan(recipe: Recipe) -> str:
    """How epochs left to the rule were planned: the run's estimate at the measured speed against the budget."""
    if recipe.max_steps is not None:
        return f"enough for trainer.max_steps={recipe.max_steps:,}"
    if recipe.minutes is None or recipe.seconds_per_step is None:
        return (
            f"at most; not timed: mode=train times a few steps and plans the epochs that fit the budget of "
            f"{recipe.budget_minutes:g} min"
        )
    ms = recipe.seconds_per_step * 1000
    estimate = f"{recipe.minutes:.1f} min at {ms:.{0 if ms >= 10 else 1}f} ms/step measured"
    if recipe.epochs == MAX_EPOCHS:
        return f"the cap, {estimate}, budget {recipe.budget_minutes:g} min"
    if recipe.minutes > (recipe.budget_minutes or 0):
        return f"{estimate}, over the budget of {recipe.budget_minutes:g} min: one epoch at least"
    return f"{estimate}, budget {recipe.budget_minutes:g} min"


def describe(recipe: Recipe) -> str:
    """One line: what was chosen for this data and why, and which keys choose instead."""
    (h, w), (gh, gw), p, why = recipe.image_size, recipe.grid, recipe.patch_size, recipe.why
    how = {"rule": "", "given": " as given", "recorded": " as recorded"}
    every = f" every {recipe.stride} px" if recipe.stride != p else ""
    parts = [f"{p}x{p} patches{every} ({gh}x{gw} grid, {recipe.tokens} tokens){how[why['patch_size']]}"]
    if recipe.epochs > 0:
        steps = f"{recipe.steps:,} steps of {recipe.batch_size}"
        if why["max_epochs"] == "rule":
            steps = f"{steps}: {plan(recipe)}"
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
