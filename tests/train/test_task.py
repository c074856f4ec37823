"""The Task base: one recipe per task (config node = YAML defaults = module hyperparameters), safe checkpoints."""

from __future__ import annotations

import pytest
import torch
from checks import compose, make_task, one_line

import attnkit
from attnkit import ConfigError, DataError, registry
from attnkit.train.task import PeakMemory, Task, load_checkpoint, model_from_checkpoint

SMALL = {  # keep each task's data small: the recipe does not depend on it
    "vit": [],
    "translation": ["data.train_size=60", "data.val_size=8", "data.test_size=8"],
    "summarization": ["data.train_size=40", "data.val_size=4", "data.test_size=4"],
    "classify": ["data.train_size=40", "data.val_size=8", "data.test_size=8", "data.max_length=520"],
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
    setup = task.setup(cfg, [], None)
    module, _ = task.lightning(cfg, setup, None)
    assert module.hparams["task"] == cfg["task"]
    assert module.hparams["model"] == cfg["model"] and module.hparams["context"] == setup.context


def test_a_command_line_change_reaches_the_module(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ATTNKIT_CACHE", str(tmp_path / "cache"))
    cfg = compose("task=vit", "task.lr=0.5", "task.random_rotate=0")
    module, _ = make_task(cfg).lightning(cfg, make_task(cfg).setup(cfg, [], None), None)
    assert module.recipe.lr == 0.5 and module.recipe.random_rotate == 0


class Payload:
    """Unpickling this runs code: a checkpoint received from someone else must never be unpickled freely."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path(__import__('os').environ['PWNED']).write_text('ran')",))


def test_checkpoints_are_read_without_running_code(tmp_path, monkeypatch) -> None:
    flag = tmp_path / "pwned"
    monkeypatch.setenv("PWNED", str(flag))
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "attnkit": {"task": "vit"}, "x": Payload()}, evil)
    with pytest.raises(DataError) as exc:
        load_checkpoint(evil, "vit")
    assert "cannot read checkpoint" in one_line(exc) and not flag.exists()


def test_checkpoints_of_other_writers_are_refused(tmp_path) -> None:
    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {}}, plain)
    with pytest.raises(ConfigError) as exc:
        load_checkpoint(plain, "vit")
    assert "not written by an attnkit training run" in one_line(exc)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "attnkit": {"task": "translation"}}, other)
    with pytest.raises(ConfigError) as exc:
        load_checkpoint(other, "vit")
    assert "written by task=translation, not task=vit; run it with task=translation" in one_line(exc)


def test_model_from_checkpoint_takes_the_moving_average_when_kept() -> None:
    context = {"image_size": 8, "in_channels": 1, "num_classes": 3}
    spec = {"name": "vit", "dim": 16, "depth": 1, "heads": 2, "patch_size": 4}
    model = registry.build_spec("model", spec, **context)
    average = registry.build_spec("model", spec, **context)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    state.update({f"ema.module.{k}": v for k, v in average.state_dict().items()})
    payload = {"hyper_parameters": {"model": spec, "context": context}, "state_dict": state}
    loaded = model_from_checkpoint(payload)
    images = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(loaded(images), average.eval()(images))
    payload["state_dict"] = {k: v for k, v in state.items() if k.startswith("model.")}
    torch.testing.assert_close(model_from_checkpoint(payload)(images), model.eval()(images))


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
