"""The Python API: compose a config, train from it, load the run, predict as mode=predict does."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from checks import one_line
from PIL import Image

import attnkit
from attnkit import ConfigError, DataError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("api") / "run"
    cfg = attnkit.compose(
        "task=vit",
        "model.dim=16",
        "model.depth=1",
        "heads=2",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
    )
    return run_dir, cfg, attnkit.fit(cfg, run_dir)


def test_compose_gives_a_plain_config_and_keeps_no_global_state() -> None:
    from hydra.core.global_hydra import GlobalHydra

    cfg = attnkit.compose("task=translation", "attention=linear")
    assert (
        isinstance(cfg, dict) and cfg["task"]["name"] == "translation" and cfg["model"]["attention"]["name"] == "linear"
    )
    assert not GlobalHydra.instance().is_initialized()
    with pytest.raises(ConfigError) as exc:
        attnkit.compose("attention=softmx")
    assert "did you mean 'softmax'" in one_line(exc)


def test_train_writes_the_run_and_load_gives_the_model(trained) -> None:
    run_dir, cfg, metrics = trained
    assert 0 <= metrics["test/acc"] <= 1 and (run_dir / "checkpoints" / "best.ckpt").is_file()
    run = attnkit.load(run_dir)
    assert run.checkpoint.name == "best.ckpt" and run.config["model"]["dim"] == 16
    assert not run.model.training and run.model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert attnkit.load(run_dir / "checkpoints" / "last.ckpt").checkpoint.name == "last.ckpt"


def test_predict_gives_what_the_cli_writes(trained, tmp_path) -> None:
    run_dir, cfg, _ = trained
    image = tmp_path / "digit.png"
    Image.fromarray((np.random.default_rng(0).random((8, 8)) * 255).astype(np.uint8), mode="L").save(image)
    run = attnkit.load(run_dir)
    result = run.predict(str(image))
    assert result["prediction"] in [str(d) for d in range(10)] and len(result["top"]) == 3
    task = attnkit.build_spec("task", cfg["task"])
    cli = {**cfg, "mode": "predict", "ckpt_path": str(run.checkpoint), "input": str(image)}
    task.predict(cli, run_dir=tmp_path / "p", overrides=[])
    assert json.loads((tmp_path / "p" / "prediction.json").read_text()) == json.loads(json.dumps(result))
    assert not (run_dir / "prediction.json").exists()  # the API writes nothing


def test_load_mistakes_are_one_line(tmp_path) -> None:
    with pytest.raises(DataError) as exc:
        attnkit.load(tmp_path / "nowhere")
    assert "does not exist" in one_line(exc)
    with pytest.raises(DataError) as exc:
        attnkit.load(tmp_path)
    assert "holds no checkpoints" in one_line(exc)
