"""task=segment end to end on tiny generated shapes: the run's scores, files and checkpoint, mode=test, mode=predict
and the Python API's predict, and data checked against the checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from checks import one_line
from PIL import Image

import attnkit
from attnkit import ConfigError

TINY = (
    "task=segment",
    "data.image_size=16",
    "data.train_size=24",
    "data.val_size=10",
    "data.test_size=10",
    "data.batch_size=8",
    "model.patch_size=4",
    "model.patch_stride=4",
    "model.dim=16",
    "model.depth=1",
    "heads=2",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("segment") / "run"
    cfg = attnkit.compose(*TINY, "task.crop_size=[8,12]", "task.plot_images=2")
    return run_dir, attnkit.fit(cfg, run_dir)


def test_a_run_scores_every_class_beside_the_majority_class(trained) -> None:
    run_dir, metrics = trained
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["primary_metric"] == "test/miou"
    for key in ("test/miou", "test/pixel_acc", "test/class_acc", "test/loss"):
        assert 0 <= saved[key] <= max(1.0, saved["test/loss"]), key
    names = ["background", "disc", "square", "triangle", "ring", "cross"]
    assert sorted(saved["per_class_iou"]) == sorted(names) == sorted(saved["per_class_acc"])
    majority = saved["majority_class"]
    assert set(majority) == {"miou", "pixel_acc", "class_acc"} and majority["pixel_acc"] > 0.3
    assert (run_dir / "segmentation.png").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    with Image.open(run_dir / "segmentation.png") as image:
        assert image.height > image.width / 3  # two rows of three panels and a legend


def test_the_model_takes_the_crop_and_evaluation_windows_cover_the_image(trained) -> None:
    run_dir, _ = trained
    run = attnkit.load(run_dir)
    assert run.model(torch.randn(1, 3, 8, 12)).shape == (1, 6, 8, 12)
    assert run.config["task"]["crop_size"] == [8, 12]


@pytest.mark.parametrize("size", [(16, 16), (30, 21)])
def test_predict_writes_a_label_map_of_the_image_size_and_an_overlay(trained, tmp_path, size) -> None:
    run_dir, _ = trained
    path = tmp_path / "street.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    result = attnkit.load(run_dir).predict(str(path))
    assert result["label_map"].shape == (size[1], size[0]) and result["label_map"].dtype == torch.int64
    assert abs(sum(result["class_shares"].values()) - 1) < 1e-3
    from attnkit.cli import main  # the command line writes the PNGs into its run directory

    out = tmp_path / "predicted"
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    main(["mode=predict", f"ckpt_path={ckpt}", f"input={path}", f"hydra.run.dir={out}"])
    with Image.open(out / "prediction_mask.png") as mask, Image.open(out / "prediction_overlay.png") as overlay:
        assert mask.size == size and overlay.size == size and overlay.mode == "RGB"
        assert np.array_equal(np.asarray(mask), result["label_map"].numpy())


def test_mode_test_scores_the_checkpoint_again(trained, tmp_path) -> None:
    run_dir, metrics = trained
    from attnkit.api import load

    run = load(run_dir)
    cfg = {**run.config, "mode": "test", "ckpt_path": str(run_dir / "checkpoints" / "last.ckpt")}
    again = run.task.test(cfg, run_dir=tmp_path / "test", overrides=[])
    assert again["test/miou"] == pytest.approx(metrics["test/miou"], abs=1e-6)


def test_other_classes_are_refused_by_the_checkpoint(trained, tmp_path) -> None:
    run_dir, _ = trained
    from attnkit.api import load

    run = load(run_dir)
    cfg = {
        **run.config,
        "mode": "test",
        "ckpt_path": str(run_dir / "checkpoints" / "last.ckpt"),
        "data": {**run.config["data"], "image_size": 20},
    }
    with pytest.raises(ConfigError) as exc:
        run.task.test(cfg, run_dir=tmp_path / "test", overrides=["data.image_size=20"])
    assert "image_size" in one_line(exc)


@pytest.mark.parametrize(
    "overrides",
    [
        (
            "seg_decoder=mask_transformer",
            "seg_decoder.layers=1",
            "attention=linear",
            "task.class_weights=median_frequency",
        ),
        ("model.layers=[gla]", "pos_enc=learned", "task.ema_decay=0.9"),
    ],
    ids=["mask-transformer-linear", "mixer"],
)
def test_decoders_attentions_and_mixers_train_through_the_task(tmp_path, overrides) -> None:
    metrics = attnkit.fit(attnkit.compose(*TINY, *overrides), tmp_path / "run")
    assert np.isfinite(metrics["test/miou"])
