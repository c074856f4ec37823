"""Checkpoints: written whole or not at all, read without running code, refused in one line when not attnkit's."""

from __future__ import annotations

import pytest
import torch
from checks import one_line

from attnkit import ConfigError, DataError, registry
from attnkit.train.checkpoints import (
    finished,
    load_checkpoint,
    load_weights,
    model_from_checkpoint,
    resume_target,
    save_whole,
)


class Explodes:
    """Pickling this fails halfway through a save."""

    def __reduce__(self):
        raise RuntimeError("disk full")


def test_a_save_that_fails_midway_leaves_the_previous_file(tmp_path) -> None:
    path = tmp_path / "last.ckpt"
    save_whole({"state_dict": {"w": torch.ones(3)}, "epoch": 1}, path)
    with pytest.raises(RuntimeError, match="disk full"):
        save_whole({"state_dict": {"w": torch.zeros(1000)}, "later": Explodes()}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left


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


def test_truncated_and_foreign_files_are_one_line(tmp_path) -> None:
    good = tmp_path / "good.ckpt"
    save_whole({"state_dict": {"w": torch.ones(1000)}, "hyper_parameters": {}, "attnkit": {"task": "vit"}}, good)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good.read_bytes()[:200])
    text = tmp_path / "text.ckpt"
    text.write_text("not a checkpoint")
    for path in (cut, text):
        with pytest.raises(DataError) as exc:
            load_checkpoint(path, "vit")
        assert "cannot read checkpoint" in one_line(exc)


def test_weights_of_another_model_size_are_one_line() -> None:
    context = {"image_size": 8, "in_channels": 1, "num_classes": 3}
    small = registry.build_spec("model", {"name": "vit", "dim": 16, "depth": 1, "heads": 2}, **context)
    large = registry.build_spec("model", {"name": "vit", "dim": 32, "depth": 1, "heads": 2}, **context)
    with pytest.raises(ConfigError) as exc:
        load_weights(small, large.state_dict(), "big.ckpt")
    assert "does not fit the model" in one_line(exc) and "size mismatch" in one_line(exc)


def test_resume_target(tmp_path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text("- task=vit\n")
    with pytest.raises(DataError) as exc:
        resume_target(run)
    assert "nothing to resume" in one_line(exc)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert resume_target(run) == (run.resolve(), (run / "checkpoints" / "last.ckpt").resolve())
    assert resume_target(run / "checkpoints" / "last.ckpt")[0] == run.resolve()
    elsewhere = tmp_path / "elsewhere.ckpt"
    elsewhere.write_bytes(b"x")
    with pytest.raises(DataError) as exc:
        resume_target(elsewhere)
    assert "not an attnkit run directory" in one_line(exc)


def test_a_run_is_finished_when_its_epochs_or_steps_are_reached() -> None:
    after_two_epochs = {"global_step": 8, "loops": {"fit_loop": {"epoch_progress": {"current": {"processed": 2}}}}}
    assert finished(after_two_epochs, {"max_epochs": 2, "max_steps": -1}) == ("max_epochs", 2)
    assert finished(after_two_epochs, {"max_epochs": 3, "max_steps": -1}) is None  # extended: it goes on
    assert finished(after_two_epochs, {"max_epochs": 10, "max_steps": 8}) == ("max_steps", 8)
    assert finished(after_two_epochs, {"max_epochs": -1, "max_steps": 20}) is None
    assert finished({"epoch": 0, "global_step": 3}, {"max_epochs": 1}) is None  # killed within its first epoch
    callback = "EarlyStopping{'monitor': 'val/acc', 'mode': 'max'}"
    stopped = {**after_two_epochs, "callbacks": {callback: {"stopped_epoch": 1, "stopping_reason": 3}}}
    assert finished(stopped, {"max_epochs": 100}) == ("early_stopping", 1)  # it ended by its own rule
    waiting = {**after_two_epochs, "callbacks": {callback: {"stopped_epoch": 0, "stopping_reason": 0}}}
    assert finished(waiting, {"max_epochs": 100}) is None
