"""The Task base: one recipe per task (config node = YAML defaults = module hyperparameters), safe checkpoints."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from checks import compose, make_task

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
