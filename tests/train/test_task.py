"""The Task base: one recipe per task (config node = YAML defaults = module hyperparameters), safe checkpoints."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from checks import compose, make_task, one_line

import attnkit
from attnkit import registry
from attnkit.train.task import PeakMemory, Setup, Task, _flat

SMALL = {  # keep each task's data small: the recipe does not depend on it
    "vit": [],
    "translation": ["data.train_size=60", "data.val_size=8", "data.test_size=8"],
    "summarization": ["data.train_size=40", "data.val_size=4", "data.test_size=4"],
    "classify": ["data.train_size=40", "data.val_size=8", "data.test_size=8", "data.max_length=520"],
    "lm": ["data.train_size=40", "data.val_size=8", "data.test_size=8"],
}


@pytest.mark.parametrize("name", attnkit.available("task"))
def test_every_task_is_a_task(name) -> None:
    assert issubclass(attnkit.get("task", name), Task)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_recipe_is_declared_once(name, tmp_path, monkeypatch) -> None:
    """The composed `task` node (what the YAML preset pulls in), the registered defaults, the built task and the
    LightningModule's saved hyperparameters are one and the same recipe."""
    monkeypatch.setenv("ATTNKIT_CACHE", str(tmp_path / "cache"))
    cfg = compose(f"task={name}", *SMALL[name])
    assert cfg["task"] == registry.defaults("task", name)
    task = make_task(cfg)
    assert task.recipe() == cfg["task"]
    chosen, resolved, setup = task.prepare(cfg)  # the values a task chooses from the data filled in, as in train
    module, _ = resolved.lightning(chosen, setup, None)
    assert _flat(chosen["task"]).keys() == _flat(cfg["task"]).keys()  # values filled in, no key added or lost
    assert module.hparams["task"] == chosen["task"]
    assert module.hparams["model"] == chosen["model"] and module.hparams["context"] == setup.context


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_resolve_step_changes_nothing_it_is_given(name, tmp_path, monkeypatch) -> None:
    """`prepare` resolves the config once, for the data: the config and the task it was given are unchanged, the
    task it returns is built from the resolved `task` node, and the setup carries only the fields it declares."""
    monkeypatch.setenv("ATTNKIT_CACHE", str(tmp_path / "cache"))
    cfg = compose(f"task={name}", *SMALL[name])
    given, task = copy.deepcopy(cfg), make_task(cfg)
    recipe = copy.deepcopy(task.recipe())
    resolved, built, setup = task.prepare(cfg)
    assert cfg == given and task.recipe() == recipe
    assert built.recipe() == resolved["task"] and (built is task) == (resolved["task"] == recipe)
    assert resolved.keys() == cfg.keys()
    assert set(vars(setup)) == {f.name for f in dataclasses.fields(Setup)}


def test_a_command_line_change_reaches_the_module(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ATTNKIT_CACHE", str(tmp_path / "cache"))
    cfg = compose("task=vit", "task.lr=0.5", "task.random_rotate=0")
    cfg, task, setup = make_task(cfg).prepare(cfg)
    module, _ = task.lightning(cfg, setup, None)
    assert module.recipe.lr == 0.5 and module.recipe.random_rotate == 0


def test_peak_memory_sees_a_short_lived_allocation() -> None:
    """The peak of this run, not of the process: a 400 MB tensor that lives 0.2 s shows, a later run starts low."""
    import time

    with PeakMemory() as before:
        pass
    with PeakMemory() as during:
        big = torch.ones(100 * 2**20)  # 400 MiB
        time.sleep(0.2)
        del big
    with PeakMemory() as after:
        time.sleep(0.1)
    assert during.mb >= before.mb + 350 and after.mb < during.mb - 300


def test_splits_too_small_to_score_are_warned_and_too_small_to_train_refused(tmp_path, monkeypatch) -> None:
    """Task.prepare checks the sizes of the splits a mode uses, for every task: an image folder of four images (two
    classes) can train, with a warning for each scored split of one image; three images of three classes cannot."""
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    for name, layout in (("four", {"a": 2, "b": 2}), ("three", {"a": 1, "b": 1, "c": 1})):
        for label, n in layout.items():
            (tmp_path / name / label).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (8, 8), (i * 60, 0, 0)).save(tmp_path / name / label / f"{i}.png")
    cfg = compose("data=image_folder", "data.path=four", "data.image_size=8")
    _, _, setup = make_task(cfg).prepare(cfg)
    assert setup.warnings == [
        f"the {split} split has 1 example for 2 classes, fewer than 10: its score says little (one example more or "
        f"less moves it by 1); give more data, or a larger data.{split}_fraction"
        for split in ("val", "test")
    ]
    cfg = compose("data=image_folder", "data.path=three", "data.image_size=8")
    with pytest.raises(attnkit.DataError, match="the train split has 1 example for 3 classes"):
        make_task(cfg).prepare(cfg)
    cfg = compose("task=translation", "data.train_size=40", "data.val_size=10", "data.test_size=3")
    _, _, setup = make_task(cfg).prepare(cfg)
    assert setup.warnings == [
        "the test split has 3 examples, fewer than 10: its score says little (one example more or less moves it by "
        "0.33); give more data, or a larger data.test_size"
    ]


def checkpoint_of(*overrides: str) -> dict:
    """What test and predict read of a checkpoint trained with `overrides`: its recorded config and recipe."""
    trained = compose(*overrides)
    return {"attnkit": {"config": trained}, "hyper_parameters": {"task": trained["task"], "model": trained["model"]}}


def checked(payload: dict, mode: str, *overrides: str) -> None:
    cfg = compose(f"mode={mode}", *overrides)
    make_task(cfg).checked_overrides(cfg, payload, list(overrides))


def test_test_and_predict_take_what_they_apply_and_what_the_checkpoint_has() -> None:
    vit = checkpoint_of("model.depth=1", "heads=2", "task.lr=0.01")
    checked(vit, "test", "model.depth=1", "heads=2", "task.lr=0.01", "model=vit", "attention=softmax")  # as trained
    checked(vit, "test", "data.batch_size=8", "trainer.devices=1", "seed=3", "task.attention_maps=0")  # applied
    checked(vit, "predict", "input=digit.png", "task.attention_maps=0")
    translation = checkpoint_of("task=translation", "task.tokenizer.vocab_size=150")
    checked(translation, "predict", "task=translation", "task.beam=1", "task.max_len=9", "data.on_long=error")


@pytest.mark.parametrize(
    ("trained", "mode", "overrides", "named"),
    [
        ((), "test", ("model.depth=8", "attention=linear"), ("model.depth=8 (the checkpoint has 4)", "has softmax")),
        (("heads=2",), "predict", ("heads=4", "pos_enc=rope"), ("heads=4 (the checkpoint has 2)", "pos_enc=rope")),
        (("task.lr=0.01",), "test", ("task.lr=0.5",), ("task.lr=0.5 (the checkpoint has 0.01)",)),
        ((), "predict", ("data.batch_size=8", "seed=1"), ("data.batch_size=8", "seed=1 (the checkpoint has 0)")),
        (("task=translation",), "test", ("task=translation", "task.tokenizer.vocab_size=99"), ("vocab_size=99",)),
    ],
)
def test_test_and_predict_refuse_in_one_line_what_they_would_ignore(trained, mode, overrides, named) -> None:
    payload = checkpoint_of(*trained)
    with pytest.raises(attnkit.ConfigError) as exc:
        checked(payload, mode, *overrides)
    message = one_line(exc)
    assert message.startswith(f"mode={mode} uses the checkpoint as it was trained")
    assert all(fragment in message for fragment in named), message


def test_a_component_that_fails_while_training_is_one_line_naming_its_line(tmp_path) -> None:
    """An ffn plugin whose weight has the wrong shape fails at the first step: one line with the step, what was
    raised and where (the innermost line outside torch and Lightning: the plugin's), not a traceback."""
    from checks import restored_registry
    from torch import nn

    class Mismatched(nn.Module):
        def __init__(self, dim: int, **options) -> None:  # options: those of the ffn group's preset (mlp_ratio)
            super().__init__()
            self.w = nn.Parameter(torch.zeros(dim // 2, dim))  # [dim / 2, dim]: x @ w needs [dim, ...]

        def forward(self, x):
            return x @ self.w

    line = Mismatched.forward.__code__.co_firstlineno + 1
    with restored_registry():
        attnkit.register("ffn", "mismatched")(Mismatched)
        cfg = compose("ffn=mismatched", "model.dim=16", "model.depth=1", "heads=2", "trainer.fast_dev_run=true")
        with pytest.raises(attnkit.TrainingError) as exc:
            make_task(cfg).train(cfg, run_dir=tmp_path / "run", overrides=[])
    assert one_line(exc).startswith("training failed at step 0: RuntimeError: ")
    assert one_line(exc).endswith(f"(at test_task.py:{line}); HYDRA_FULL_ERROR=1 shows the traceback")
