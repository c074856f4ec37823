"""The ViT task's size-aware recipe (tasks/vit/recipe.py): patches, epochs, warm-up and regularisation chosen from the
training split's image size and count and the measured time of a training step, unless the config gives them; printed
in one line and recorded in the run."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import yaml
from checks import compose, make_task, one_line
from PIL import Image

import attnkit
from attnkit import ConfigError
from attnkit.schema import check_config
from attnkit.tasks.vit import task as vit_task
from attnkit.tasks.vit.recipe import KEYS, MAX_EPOCHS, choose, describe, run_minutes, steps_per_epoch
from attnkit.train.task import Given

TINY = ("model.dim=16", "model.depth=1", "heads=2", "task.attention_maps=0", "trainer.enable_progress_bar=false")

FULL, NONE = (10.0, 0.1, 0.1), (0.0, 0.0, 0.0)  # rotation, zoom, drop-path
# (height, width), training images, batch, seconds per step -> patch_size, patch_stride, epochs, warm-up epochs,
# regularisation (in the default budget of 15 minutes)
CASES = {
    "digits-8x8": ((8, 8), 1_257, 64, 0.02, (4, 2, 150, 5.0, FULL)),  # the main job's recipe, exactly
    "fashion-28x28": ((28, 28), 55_000, 128, 0.25, (8, 4, 6, 0.6, NONE)),
    "32x32x50000": ((32, 32), 50_000, 64, 0.15, (8, 4, 6, 0.6, NONE)),
    "icons-32x32": ((32, 32), 626, 64, 0.15, (8, 4, 150, 5.0, FULL)),
    "64x64": ((64, 64), 20_000, 64, 0.15, (8, None, 15, 1.5, NONE)),
    "224x224": ((224, 224), 10_000, 64, 0.15, (28, None, 31, 3.1, FULL)),
}


def chosen(recipe) -> tuple:
    regularisation = (recipe.random_rotate, recipe.random_scale, recipe.drop_path)
    return recipe.patch_size, recipe.patch_stride, recipe.epochs, recipe.warmup_epochs, regularisation


@pytest.mark.parametrize(("size", "count", "batch", "seconds", "expected"), list(CASES.values()), ids=list(CASES))
def test_the_rule_chooses_from_image_size_count_and_speed(size, count, batch, seconds, expected) -> None:
    recipe = choose(size, count, batch, seconds_per_step=seconds)
    assert chosen(recipe) == expected
    assert set(recipe.why.values()) == {"rule"}


@pytest.mark.parametrize("seconds", [0.001, 0.02, 0.15, 0.4, 3.0])
@pytest.mark.parametrize("budget", [1.0, 15.0, 120.0])
@pytest.mark.parametrize("count", [600, 50_000])
def test_the_epochs_are_the_most_that_fit_the_budget(seconds, budget, count) -> None:
    recipe = choose((32, 32), count, 64, seconds_per_step=seconds, budget_minutes=budget)
    one_more = run_minutes((recipe.epochs + 1) * steps_per_epoch(count, 64), seconds)
    assert 1 <= recipe.epochs <= MAX_EPOCHS
    assert recipe.minutes <= budget or recipe.epochs == 1  # fits, or one epoch at least
    assert one_more > budget or recipe.epochs == MAX_EPOCHS  # one more would not fit, or the cap
    if recipe.epochs == 1 and recipe.minutes > budget:
        assert f"over the budget of {budget:g} min: one epoch at least" in describe(recipe)


def test_a_larger_budget_or_a_faster_step_gives_more_epochs() -> None:
    def epochs(budget: float, seconds: float) -> int:
        return choose((32, 32), 50_000, 64, seconds_per_step=seconds, budget_minutes=budget).epochs

    assert epochs(15, 0.15) == 6 and epochs(30, 0.15) == 12 and epochs(15, 0.075) == 11 and epochs(0.5, 0.15) == 1


@pytest.mark.parametrize("side", [8, 12, 16, 24, 28, 30, 32, 48, 64, 96, 100, 128, 224, 256])
@pytest.mark.parametrize("count", [50, 1_257, 55_000, 1_000_000])
def test_tens_of_tokens_bounded_epochs_and_a_short_warmup(side, count) -> None:
    recipe = choose((side, side), count, 64, seconds_per_step=0.1)
    assert 16 <= recipe.tokens <= 64 and recipe.grid[0] <= 8, recipe
    assert 1 <= recipe.epochs <= MAX_EPOCHS and 0 < recipe.warmup_epochs <= 0.1 * recipe.epochs + 1e-9
    assert recipe.drop_path == (0.1 if recipe.epochs >= 20 else 0.0)
    model = attnkit.build(  # the model accepts what the rule chose
        "model", "vit", image_size=side, in_channels=3, num_classes=2, dim=8, depth=1, heads=2,
        patch_size=recipe.patch_size, patch_stride=recipe.patch_stride,
    )  # fmt: skip
    assert model.patch_embed.grid == recipe.grid


def test_a_data_set_too_large_for_the_budget_still_gets_one_epoch() -> None:
    recipe = choose((32, 32), 5_000_000, 64, seconds_per_step=0.15)
    assert recipe.epochs == 1 and recipe.minutes == pytest.approx(237.9, abs=0.1)
    line = describe(recipe)
    assert "1 epoch (78,125 steps of 64: 237.9 min at 150 ms/step measured, over the budget of 15 min: one" in line


def test_without_a_timing_the_rule_gives_the_cap_and_says_so() -> None:
    recipe = choose((32, 32), 50_000, 64)  # what the task then times: the model of the longest run
    assert (recipe.epochs, recipe.drop_path, recipe.minutes) == (MAX_EPOCHS, 0.1, None)
    assert "150 epochs (117,150 steps of 64: at most; not timed: mode=train times a few steps" in describe(recipe)
    by_steps = choose((32, 32), 50_000, 64, max_steps=1_000)  # epochs from trainer.max_steps: nothing to time
    assert by_steps.epochs == 2 and "enough for trainer.max_steps=1,000" in describe(by_steps)


def test_sizes_without_a_fitting_patch_take_more_tokens_or_are_refused() -> None:
    assert (choose((22, 22), 1_000, 64).grid, choose((4, 4), 1_000, 64).grid) == ((11, 11), (4, 4))
    assert choose((26, 26), 1_000, 64).grid == (13, 13) and choose((34, 34), 1_000, 64).grid == (2, 2)
    with pytest.raises(ConfigError) as exc:
        choose((37, 37), 1_000, 64)
    assert "data.image_size" in one_line(exc) and "model.patch_size" in one_line(exc)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"patch_size": 2}, (2, None, 150, 5.0, FULL)),
        ({"patch_size": 4, "patch_stride": 2, "max_epochs": 3}, (4, 2, 3, 0.3, NONE)),
        ({"patch_stride": 4}, (8, 4, 150, 5.0, FULL)),  # a stride alone: the rule's patch for it
        ({"max_epochs": 3, "warmup_epochs": 5.0}, (4, 2, 3, 5.0, NONE)),  # a given warm-up is kept, even a long one
        ({"warmup_epochs": 0.0, "random_rotate": 0.0}, (4, 2, 150, 0.0, (0.0, 0.1, 0.1))),
        ({"max_epochs": 5, "drop_path": 0.2, "random_scale": 0.05}, (4, 2, 5, 0.5, (0.0, 0.05, 0.2))),
    ],
)
def test_given_values_win(given, expected) -> None:
    recipe = choose((8, 8), 1_257, 64, **given)
    assert chosen(recipe) == expected
    assert recipe.why == {key: "given" if key in given else "rule" for key in KEYS}


@pytest.mark.parametrize(("epochs", "warmup"), [(1, 0.1), (3, 0.3), (19, 1.9), (20, 2.0), (50, 5.0), (1000, 5.0)])
def test_the_warmup_and_regularisation_follow_given_epochs(epochs, warmup) -> None:
    recipe = choose((32, 32), 50_000, 64, max_epochs=epochs)
    assert recipe.warmup_epochs == warmup and recipe.why["max_epochs"] == "given"
    assert (recipe.random_rotate, recipe.random_scale, recipe.drop_path) == (FULL if epochs >= 20 else NONE)


def test_max_steps_sets_the_epochs() -> None:
    recipe = choose((28, 28), 55_000, 128, max_steps=1_000)  # 429 steps an epoch
    assert recipe.epochs == 3 and recipe.warmup_epochs == 0.3
    assert choose((28, 28), 55_000, 128, max_epochs=-1, max_steps=10_000).warmup_epochs == 2.4  # 24 epochs


def test_recorded_values_are_reused_where_nothing_is_given() -> None:
    recorded = {"patch_size": 4, "patch_stride": None, "max_epochs": 9, "warmup_epochs": 0.5, "drop_path": 0.3}
    recipe = choose((32, 32), 50_000, 64, max_epochs=12, random_scale=0.2, recorded=recorded)
    assert chosen(recipe) == (4, None, 12, 0.5, (0.0, 0.2, 0.3))  # rotation: the rule's, for 12 epochs
    assert recipe.why == {
        "patch_size": "recorded", "max_epochs": "given", "warmup_epochs": "recorded", "random_rotate": "rule",
        "random_scale": "given", "drop_path": "recorded",
    }  # fmt: skip


def test_the_line_says_what_was_chosen_and_how_to_choose() -> None:
    line = describe(choose((32, 32), 50_000, 64, seconds_per_step=0.057))
    assert line == (
        "recipe: 32x32 images, 50,000 training images -> 8x8 patches every 4 px (8x8 grid, 64 tokens), 14 epochs "
        "(10,934 steps of 64: 14.0 min at 57 ms/step measured, budget 15 min), warm-up 1.4 epochs (a tenth of the "
        "run, at most 5), no rotation, zoom or drop-path (under 20 epochs); set model.patch_size, trainer.max_epochs, "
        "task.warmup_epochs, task.random_rotate, task.random_scale, model.drop_path to choose yourself"
    )
    capped = describe(choose((8, 8), 1_257, 64, seconds_per_step=0.0123, budget_minutes=20))
    assert "150 epochs (2,850 steps of 64: the cap, 1.4 min at 12 ms/step measured, budget 20 min)" in capped
    given = dict(patch_size=2, max_epochs=3, warmup_epochs=1.0, random_rotate=5.0, random_scale=0.0, drop_path=0.0)
    line = describe(choose((8, 8), 1_257, 64, **given))
    assert line == (
        "recipe: 8x8 images, 1,257 training images -> 2x2 patches (4x4 grid, 16 tokens) as given, 3 epochs (57 steps "
        "of 64) as given, warm-up 1 epochs as given, rotation ±5°, zoom ±0%, drop-path 0 (as given, as given, as "
        "given)"
    )


# --- in the task: the main job's recipe, the command line's values, the run's record ----------------------------

TODAY = (  # the digits recipe as conf/task/vit.yaml and VitTask gave it before the rule
    "model.patch_size=4",
    "model.patch_stride=2",
    "model.drop_path=0.1",
    "trainer.max_epochs=150",
    "task.warmup_epochs=5.0",
    "task.random_rotate=10.0",
    "task.random_scale=0.1",
)


@pytest.fixture
def timings(monkeypatch):
    """The step timings the task asks for (each call's model), answered with `timings.seconds` (None: measured)."""

    class Timings(list):
        seconds: float | None = None

    calls = Timings()
    measure = vit_task.seconds_per_step

    def counted(model, batch, **options):
        calls.append(model)
        return measure(model, batch, **options) if calls.seconds is None else calls.seconds

    monkeypatch.setattr(vit_task, "seconds_per_step", counted)
    return calls


def test_the_main_job_gets_exactly_the_digits_recipe_and_says_so(capsys, timings) -> None:
    cfg = compose("task=vit", "heads=8")
    assert all(cfg[key.split(".")[0]][key.split(".")[1].split("=")[0]] is None for key in TODAY)
    resolved, _, _ = make_task(cfg).prepare(cfg)
    assert resolved == compose("task=vit", "heads=8", *TODAY)
    assert len(timings) == 1 and timings[0].patch_embed.grid == (4, 4)  # the model it trains, timed once
    (line,) = capsys.readouterr().out.splitlines()
    assert re.fullmatch(
        r"recipe: 8x8 images, 1,257 training images -> 4x4 patches every 2 px \(4x4 grid, 16 tokens\), 150 epochs "
        r"\(2,850 steps of 64: the cap, [\d.]+ min at [\d.]+ ms/step measured, budget 15 min\), warm-up 5 epochs \(a "
        r"tenth of the run, at most 5\), rotation ±10°, zoom ±10%, drop-path 0.1 \(at least 20 epochs\); set "
        r"model.patch_size, trainer.max_epochs, task.warmup_epochs, task.random_rotate, task.random_scale, "
        r"model.drop_path to choose yourself",
        line,
    ), line


def test_the_timing_changes_nothing_of_the_run_but_its_epochs(timings) -> None:
    """The same initial weights and random state after the resolve step, timed or not."""
    runs = {}
    for given in ((), ("trainer.max_epochs=150",)):
        cfg = compose("task=vit", "heads=8", *given)
        resolved, _, setup = make_task(cfg).prepare(cfg)
        runs[given] = resolved, setup.net.state_dict(), torch.get_rng_state(), len(timings)
    (timed, weights, state, calls), (kept, given_weights, given_state, more) = runs.values()
    assert (calls, more) == (1, 1) and timed == kept  # no timing when the epochs are given
    assert all(torch.equal(weights[k], given_weights[k]) for k in weights) and torch.equal(state, given_state)


@pytest.mark.parametrize(
    ("args", "epochs"),
    [
        (("task.budget_minutes=1",), 9),  # 19 steps x (0.2 s x 1.15 + 10 ms) = 4.6 s an epoch: 9 fit 60 s less 15
        (("task.budget_minutes=0.05",), 1),  # under one epoch: one
        (("task.budget_minutes=1", "trainer.max_epochs=4"), 4),  # given: kept, nothing timed
        (("+trainer.max_steps=100",), 6),  # epochs to reach the steps, nothing timed
    ],
)
def test_the_budget_plans_the_epochs_at_the_timed_speed(args, epochs, timings, capsys) -> None:
    timings.seconds = 0.2
    cfg = compose("task=vit", *TINY, *args)
    resolved, task, _ = make_task(cfg).prepare(cfg)
    assert resolved["trainer"]["max_epochs"] == epochs and task.budget_minutes == cfg["task"]["budget_minutes"]
    timed = not any(a.lstrip("+").startswith("trainer.") for a in args)
    assert len(timings) == int(timed) and ("200 ms/step measured" in capsys.readouterr().out) == timed


def test_only_training_times_steps(timings, capsys) -> None:
    """mode=info answers without the seconds a timing takes (and the optimizer it builds imports): it shows the
    rest of the recipe and says the epochs are planned when training starts."""
    cfg = compose("task=vit", "heads=8", "mode=info")
    resolved, _, _ = make_task(cfg).prepare(cfg)
    assert not timings and resolved["trainer"]["max_epochs"] == MAX_EPOCHS
    assert "at most; not timed: mode=train times a few steps" in capsys.readouterr().out


def test_a_run_on_several_processes_is_told_to_give_its_epochs(timings) -> None:
    """Each process of a DDP run runs the command and would time its own steps: the epochs must be given."""
    cfg = compose("task=vit", *TINY, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2")
    with pytest.raises(ConfigError) as exc:
        make_task(cfg).prepare(cfg)
    assert "trainer.devices=2" in one_line(exc) and one_line(exc).endswith(
        "give trainer.max_epochs (or trainer.max_steps)"
    )
    cfg = compose(
        "task=vit", *TINY, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_epochs=2"
    )
    assert make_task(cfg).prepare(cfg)[0]["trainer"]["max_epochs"] == 2 and not timings


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("0", "task.budget_minutes=0 must be a number > 0 (minutes of wall time for the run)"),
        ("-5", "task.budget_minutes=-5 must be a number > 0"),
        ("abc", "task.budget_minutes='abc' must be a number > 0, not a string"),
    ],
)
def test_a_budget_that_is_not_a_positive_number_is_one_line(value, line) -> None:
    with pytest.raises(ConfigError) as exc:
        check_config(compose("task=vit", f"task.budget_minutes={value}"))
    assert one_line(exc).startswith(line), one_line(exc)


def test_command_line_values_win_and_reach_the_module(capsys) -> None:
    cfg = compose("task=vit", *TINY, "model.patch_size=2", "trainer.max_epochs=3", "task.random_scale=0.2")
    resolved, task, setup = make_task(cfg).prepare(cfg)
    module, _ = task.lightning(resolved, setup, None)
    assert module.hparams["model"]["patch_size"] == 2 and module.hparams["model"]["patch_stride"] is None
    assert module.hparams["model"]["drop_path"] == 0.0 and resolved["trainer"]["max_epochs"] == 3
    assert {k: module.hparams["task"][k] for k in ("warmup_epochs", "random_rotate", "random_scale")} == {
        "warmup_epochs": 0.3, "random_rotate": 0.0, "random_scale": 0.2,
    }  # fmt: skip
    assert module.recipe.random_scale == 0.2 and module.model.patch_embed.grid == (4, 4)
    out = capsys.readouterr().out
    assert "2x2 patches (4x4 grid, 16 tokens) as given, 3 epochs (57 steps of 64) as given" in out
    assert "(under 20 epochs, as given); set trainer" not in out and "task.random_scale" not in out.split("set ")[1]


@pytest.fixture(scope="module")
def icons(tmp_path_factory):
    """A folder of 32x32 colour images in three classes."""
    root = tmp_path_factory.mktemp("icons") / "pics"
    rng = np.random.default_rng(0)
    for c, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(14):
            pixels = (rng.random((32, 32, 3)) * 90).astype(np.uint8)
            pixels[..., c] += 150
            Image.fromarray(pixels, mode="RGB").save(root / name / f"{i}.png")
    return root


def test_a_trained_run_records_the_choices_for_test_and_resume(icons, tmp_path, capsys, timings) -> None:
    run_dir = tmp_path / "run"
    args = ("task=vit", "data=image_folder", f"data.path={icons}", *TINY, "trainer.max_epochs=1")
    metrics = attnkit.fit(compose(*args), run_dir)
    assert "recipe: 32x32 images, 30 training images -> 8x8 patches every 4 px" in capsys.readouterr().out
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (saved["model"]["patch_size"], saved["model"]["patch_stride"]) == (8, 4)
    assert saved["trainer"]["max_epochs"] == 1 and saved["task"]["warmup_epochs"] == 0.1
    last = run_dir / "checkpoints" / "last.ckpt"
    payload = torch.load(last, map_location="cpu", weights_only=True)
    assert payload["hyper_parameters"]["model"]["patch_size"] == 8 and payload["attnkit"]["config"] == saved
    assert attnkit.load(run_dir).model.patch_embed.proj.kernel_size == (8, 8)  # predict's model

    cfg = compose("mode=test", f"ckpt_path={last}", *args)
    tested = make_task(cfg).test(cfg, run_dir=tmp_path / "test", overrides=[])
    assert tested["test/acc"] == pytest.approx(metrics["test/acc"])

    resumed = compose(*args[:-1], f"resume={last}")  # max_epochs left to the rule: the run's own is recorded
    task = make_task(resumed)
    given = Given(resumed=torch.load(last, map_location="cpu", weights_only=True))
    recipe = task.resolve(resumed, task.load(resumed, given), given).recipe
    assert chosen(recipe) == (8, 4, 1, 0.1, NONE) and set(recipe.why.values()) == {"recorded"}
    assert not timings  # the recorded epochs are kept, not planned again
