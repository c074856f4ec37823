"""Segmentation scores (hand-computed and against scikit-learn), the majority baseline, median-frequency weights,
and the pictures: colour masks, overlays, the segmentation figure and the label-map PNGs."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from attnkit.tasks.segment.data.base import IGNORE, default_palette
from attnkit.tasks.segment.metrics import confusion, majority_baseline, median_frequency_weights, scores
from attnkit.tasks.segment.plots import (
    DPI,
    colorize,
    overlay,
    plot_segmentation,
    save_label_map,
    save_overlay,
)

X = IGNORE
NAMES = ["road", "car", "tree", "sky"]
# 4x4 maps, 4 classes ("sky" = 3 occurs nowhere); three pixels ignored, whose predictions (0, 1, 2) must not count.
TARGET = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, X, X], [2, 2, 2, X]])
PRED = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 2], [2, 0, 0, 1], [2, 2, 1, 2]])


def test_hand_computed_scores():
    # Scored pixels: 16 - 3 ignored = 13.
    # road (truth 4 pixels): predicted 0, 1, 0, 0       -> 3 right, 1 as car
    # car  (truth 4 pixels): predicted 1, 1, 1, 2       -> 3 right, 1 as tree
    # tree (truth 5 pixels): predicted 2, 0, 2, 2, 1    -> 3 right, 1 as road, 1 as car
    conf = confusion(PRED, TARGET, 4)
    assert conf.tolist() == [[3, 1, 0, 0], [0, 3, 1, 0], [1, 1, 3, 0], [0, 0, 0, 0]]
    assert conf.dtype == torch.int64
    s = scores(conf, NAMES)
    # IoU = TP / (truth + predicted - TP): road 3 / (4 + 4 - 3) = 0.6, car 3 / (4 + 5 - 3) = 0.5,
    # tree 3 / (5 + 4 - 3) = 0.5, sky 0 / 0 undefined -> mIoU = (0.6 + 0.5 + 0.5) / 3.
    assert s["per_class_iou"] == pytest.approx({"road": 0.6, "car": 0.5, "tree": 0.5, "sky": None})
    assert s["miou"] == pytest.approx(1.6 / 3)
    # pixel accuracy = (3 + 3 + 3) / 13
    assert s["pixel_acc"] == pytest.approx(9 / 13)
    # recall: road 3/4, car 3/4, tree 3/5, sky undefined -> class accuracy (0.75 + 0.75 + 0.6) / 3 = 0.7
    assert s["per_class_acc"] == pytest.approx({"road": 0.75, "car": 0.75, "tree": 0.6, "sky": None})
    assert s["class_acc"] == pytest.approx(0.7)
    assert s["pixels"] == 13
    assert all(type(s[key]) is float for key in ("miou", "pixel_acc", "class_acc"))


def test_class_predicted_but_absent_from_truth_counts_as_zero_iou():
    target = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 2, 1, 1])  # one false alarm of class 2, which the truth never has
    s = scores(confusion(pred, target, 3), ["a", "b", "c"])
    # IoU a = 1 / 2, b = 2 / 2, c = 0 / 1 -> mean over the three (c counts, with 0); recall of c is undefined.
    assert s["per_class_iou"] == pytest.approx({"a": 0.5, "b": 1.0, "c": 0.0})
    assert s["miou"] == pytest.approx(0.5)
    assert s["per_class_acc"]["c"] is None
    assert s["class_acc"] == pytest.approx(0.75)


def test_against_sklearn():
    from sklearn.metrics import accuracy_score, confusion_matrix, jaccard_score, recall_score

    k = 7  # the truth holds classes 0..4 and IGNORE; predictions 0..5: 5 is a false alarm only, 6 never occurs
    target = torch.randint(0, 5, (3, 17, 23))
    target[torch.rand(target.shape) < 0.2] = IGNORE
    pred = torch.where(torch.rand(target.shape) < 0.6, target.clamp(min=0), torch.randint(0, 6, target.shape))
    conf = confusion(pred, target, k)
    scored = target != IGNORE
    y_true, y_pred = target[scored].numpy(), pred[scored].numpy()
    labels = list(range(k))
    assert conf.numpy().tolist() == confusion_matrix(y_true, y_pred, labels=labels).tolist()

    s = scores(conf, [f"c{c}" for c in labels])
    iou = jaccard_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    iou[~np.isin(labels, np.concatenate([y_true, y_pred]))] = np.nan  # jaccard_score has no NaN option
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=np.nan)
    assert [np.nan if v is None else v for v in s["per_class_iou"].values()] == pytest.approx(iou, nan_ok=True)
    assert [np.nan if v is None else v for v in s["per_class_acc"].values()] == pytest.approx(recall, nan_ok=True)
    assert s["per_class_iou"]["c5"] == 0.0 and s["per_class_iou"]["c6"] is None
    assert s["miou"] == pytest.approx(np.nanmean(iou))
    assert s["class_acc"] == pytest.approx(np.nanmean(recall))
    assert s["pixel_acc"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert s["pixels"] == int(scored.sum())


def test_ignored_pixels_never_count():
    ignored = TARGET == IGNORE
    garbage = torch.where(ignored, torch.full_like(PRED, 99), PRED)  # not even a class id: never read
    assert torch.equal(confusion(garbage, TARGET, 4), confusion(PRED, TARGET, 4))
    assert int(confusion(PRED, TARGET, 4).sum()) == int((~ignored).sum())

    empty = confusion(PRED, torch.full_like(TARGET, IGNORE), 4)
    assert empty.sum() == 0
    s = scores(empty, NAMES)
    assert s["pixels"] == 0 and math.isnan(s["miou"]) and math.isnan(s["pixel_acc"]) and math.isnan(s["class_acc"])
    assert set(s["per_class_iou"].values()) == {None}


def test_confusion_refuses_bad_ids():
    with pytest.raises(ValueError, match="pred holds class id 4"):
        confusion(torch.tensor([0, 4]), torch.tensor([0, 1]), 4)
    with pytest.raises(ValueError, match="pred holds class id -1"):
        confusion(torch.tensor([0, -1]), torch.tensor([0, 1]), 4)
    with pytest.raises(ValueError, match="target holds class id -2"):
        confusion(torch.tensor([0, 1]), torch.tensor([0, -2]), 4)
    with pytest.raises(ValueError, match="same shape"):
        confusion(torch.tensor([0, 1]), torch.tensor([[0, 1]]), 4)
    with pytest.raises(ValueError, match="integer class ids"):
        confusion(torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), 4)
    with pytest.raises(ValueError, match="does not match 3 class names"):
        scores(torch.zeros(4, 4, dtype=torch.int64), ["a", "b", "c"])


def test_majority_baseline():
    # Training pixels: car (1) is the most frequent. The evaluated truth has 4 road, 4 car, 5 tree, 0 sky pixels;
    # predicting car everywhere: IoU road 0 / 4, car 4 / 13, tree 0 / 5, sky undefined.
    conf = confusion(PRED, TARGET, 4)
    s = majority_baseline([10, 50, 5, 0], conf, NAMES)
    assert s["per_class_iou"] == pytest.approx({"road": 0.0, "car": 4 / 13, "tree": 0.0, "sky": None})
    assert s["miou"] == pytest.approx(4 / 13 / 3)
    assert s["pixel_acc"] == pytest.approx(4 / 13)
    assert s["class_acc"] == pytest.approx(1 / 3)
    assert s["pixels"] == 13
    assert s.keys() == scores(conf, NAMES).keys()
    # equals scoring a real all-car prediction; a tie goes to the lowest id; names default to the ids
    assert s == scores(confusion(torch.ones_like(TARGET), TARGET, 4), NAMES)
    assert majority_baseline([7, 7, 0, 0], conf)["per_class_iou"]["0"] == pytest.approx(4 / 13)
    with pytest.raises(ValueError, match="no labelled pixel"):
        majority_baseline([0, 0, 0, 0], conf)


def test_median_frequency_weights():
    # pixels 10, 0, 20, 40: median over the present classes is 20, so weights 20/10, 0 (absent), 20/20, 20/40
    assert median_frequency_weights([10, 0, 20, 40]) == pytest.approx([2.0, 0.0, 1.0, 0.5])
    # an even count: median (2 + 3) / 2 = 2.5
    assert median_frequency_weights([1, 2, 3, 4]) == pytest.approx([2.5, 1.25, 2.5 / 3, 0.625])
    with pytest.raises(ValueError, match="no labelled pixel"):
        median_frequency_weights([0, 0])


def test_colorize_and_overlay():
    palette = default_palette(4)
    colours = colorize(TARGET, palette)
    assert colours.dtype == np.uint8 and colours.shape == (4, 4, 3)
    assert (colours[TARGET.numpy() == IGNORE] == 0).all()
    for c in range(3):
        assert (colours[TARGET.numpy() == c] == palette[c]).all()
    with pytest.raises(ValueError, match="class id 4"):
        colorize(torch.tensor([[4]]), palette)

    image = np.full((4, 4, 3), 200, dtype=np.uint8)
    assert (overlay(image, TARGET, palette, alpha=0.0) == image).all()
    full = overlay(image, TARGET, palette, alpha=1.0)
    ignored = TARGET.numpy() == IGNORE
    assert (full[~ignored] == colours[~ignored]).all() and (full[ignored] == 200).all()
    half = overlay(torch.full((4, 4), 100, dtype=torch.uint8), TARGET, palette)  # grey image, as a tensor
    assert half.shape == (4, 4, 3) and (half[0, 0] == np.rint((100 + np.asarray(palette[0])) / 2)).all()


@pytest.mark.parametrize("channels", [1, 3])
def test_plot_segmentation_writes_one_row_per_image(tmp_path, channels):
    palette, names = default_palette(4), NAMES
    heights = {}
    for n in (1, 3):
        images = torch.rand(n, channels, 16, 24)
        targets = TARGET.repeat(n, 4, 6)[:, :16, :24]
        preds = PRED.repeat(n, 4, 6)[:, :16, :24]
        path = tmp_path / f"seg{n}.png"
        plot_segmentation(images, targets, preds, palette, names, path, title="val" if n == 3 else None)
        with Image.open(path) as png:
            width, heights[n] = png.size
            pixels = np.asarray(png.convert("RGB")).reshape(-1, 3)
        assert width > heights[1]
        for c in range(3):  # the class colours are drawn (nearest neighbour: exact colours)
            assert (pixels == palette[c]).all(1).any()
    # a row is a fixed height; the title adds 0.4 inch
    assert heights[3] == pytest.approx(3 * heights[1] + 0.4 * DPI, abs=2)


def test_plot_segmentation_refuses_mismatched_shapes(tmp_path):
    with pytest.raises(ValueError, match="do not pair up"):
        plot_segmentation(
            torch.rand(2, 3, 4, 4), TARGET[None], PRED[None], default_palette(4), NAMES, tmp_path / "x.png"
        )


def test_save_label_map_round_trips(tmp_path):
    save_label_map(TARGET, tmp_path / "mask.png")
    with Image.open(tmp_path / "mask.png") as png:
        assert png.mode == "L"
        back = torch.from_numpy(np.asarray(png).astype(np.int64))
    assert torch.equal(torch.where(back == 255, IGNORE, back), TARGET)

    wide = torch.where(TARGET == IGNORE, IGNORE, TARGET * 100)  # ids up to 200, but 300 classes: 16-bit
    save_label_map(wide, tmp_path / "wide.png", num_classes=300)
    with Image.open(tmp_path / "wide.png") as png:
        assert png.mode.startswith("I")
        back = torch.from_numpy(np.asarray(png).astype(np.int64))
    assert torch.equal(torch.where(back == 65535, IGNORE, back), wide)
    with pytest.raises(ValueError, match="class id 255"):
        save_label_map(torch.tensor([[255]]), tmp_path / "bad.png", num_classes=255)


def test_save_overlay(tmp_path):
    image = torch.randint(0, 256, (4, 4, 3), dtype=torch.uint8)
    save_overlay(image, PRED, default_palette(4), tmp_path / "overlay.png", alpha=0.3)
    with Image.open(tmp_path / "overlay.png") as png:
        assert png.mode == "RGB"
        assert (np.asarray(png) == overlay(image, PRED, default_palette(4), alpha=0.3)).all()
