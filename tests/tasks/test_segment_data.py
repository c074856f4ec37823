"""Segmentation data sources of the segment task: shapes (checked against a reference rasteriser), mask_folder (every
layout, index and colour masks, every error) and hf_masks (local files only)."""

from __future__ import annotations

import os

os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import attnkit
from attnkit.errors import ConfigError, DataError
from attnkit.tasks.segment.data import (
    IGNORE,
    HFMaskData,
    MaskFolderData,
    SegmentData,
    SegmentSplits,
    ShapesData,
)
from attnkit.tasks.segment.data.masks import resize_labels
from attnkit.tasks.segment.data.shapes import CLASSES, Scenes, render

SOURCES = {"shapes": ShapesData, "mask_folder": MaskFolderData, "hf_masks": HFMaskData}


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


def check_splits(splits: SegmentSplits) -> None:
    """What every source promises: uint8 images and int16 masks of one size, labels in range, stats per channel."""
    assert len(splits.class_names) == len(splits.palette) == len(splits.class_pixels) == splits.num_classes
    assert len(splits.mean) == len(splits.std) == splits.in_channels
    for dataset in (splits.train, splits.val, splits.test):
        assert dataset.images.dtype == torch.uint8 and dataset.masks.dtype == torch.int16
        assert tuple(dataset.images.shape[1:]) == (splits.in_channels, *splits.image_size)
        assert tuple(dataset.masks.shape[1:]) == splits.image_size
        labelled = dataset.masks[dataset.masks != IGNORE]
        assert labelled.numel() == 0 or (labelled.min() >= 0 and labelled.max() < splits.num_classes)
        image, mask = dataset[0]
        assert image.dtype == torch.float32 and mask.dtype == torch.int64
    labelled = splits.train.masks[splits.train.masks != IGNORE]
    assert splits.class_pixels == torch.bincount(labelled.long(), minlength=splits.num_classes).tolist()


def every_mask(splits: SegmentSplits) -> list[bytes]:
    """The masks of all three splits, as a sorted list (a random split changes only their order)."""
    return sorted(bytes(m) for s in (splits.train, splits.val, splits.test) for m in s.masks.numpy())


def as_masks(labels: list[np.ndarray]) -> list[bytes]:
    """Class ids `[H, W]` as `every_mask` lists them."""
    return sorted(bytes(np.ascontiguousarray(m, dtype=np.int16)) for m in labels)


# ------------------------------------------------------------------------------------------------ registry


def test_every_source_is_registered_with_batch_size_16():
    from attnkit.registry import defaults

    for name, cls in SOURCES.items():
        assert attnkit.get("data", name) is cls and issubclass(cls, SegmentData)
        node = defaults("data", name)
        assert node["name"] == name and node["batch_size"] == 16


def test_importing_the_package_stays_light():
    """The data package alone (without the segment task) imports no heavy library: the CLI imports it at start-up."""
    code = (
        "import sys, types\n"
        "import attnkit.tasks\n"
        "seg = sys.modules['attnkit.tasks.segment'] = types.ModuleType('attnkit.tasks.segment')\n"
        "seg.__path__ = [sys.argv[1]]  # the segment package without its __init__, which imports the task\n"
        "import attnkit.tasks.segment.data\n"
        "heavy = ['sklearn', 'PIL', 'torchvision', 'datasets', 'lightning', 'pytorch_lightning', 'hydra']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    segment_dir = Path(sys.modules[ShapesData.__module__].__file__).parents[1]
    out = subprocess.run([sys.executable, "-c", code, str(segment_dir)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_bad_options_are_one_line_config_errors(tmp_path):
    bad = [
        ("shapes", {"image_size": 0}),
        ("shapes", {"max_shapes": 0}),
        ("mask_folder", {"image_size": [8, 8, 8]}),
        ("mask_folder", {"image_size": [0, 8]}),
        ("mask_folder", {"channels": 2}),
        ("mask_folder", {"val_fraction": 0.6, "test_fraction": 0.5}),
        ("mask_folder", {"palette": [[0, 0, 300]]}),
        ("mask_folder", {"palette": [[0, 0]]}),
        ("mask_folder", {"palette": [[1, 2, 3], [1, 2, 3]]}),
        ("mask_folder", {"classes": ["a", "a"]}),
        ("mask_folder", {"classes": ["a", "b"], "ignore_index": 1}),  # an ignore index that is a class
        ("mask_folder", {"ignore_color": [0, 0, 0]}),  # needs a palette
        ("mask_folder", {"palette": [[0, 0, 0], [9, 9, 9]], "ignore_color": [9, 9, 9]}),
        ("mask_folder", {"mean": [0.5], "std": None}),
        ("hf_masks", {"image_size": "big"}),
    ]
    for name, options in bad:
        with pytest.raises(ConfigError) as excinfo:
            attnkit.build("data", name, **options)
        one_line_error(excinfo)


def test_palette_length_must_match_classes():
    with pytest.raises(ConfigError) as excinfo:
        MaskFolderData(path="x", classes=["sky", "road", "car"], palette=[[0, 0, 255], [128, 128, 128]])
    message = one_line_error(excinfo)
    assert "2 colours for 3 classes" in message and "data.palette" in message


# ------------------------------------------------------------------------------------------------ shapes


def outlines(cls: int, cy: float, cx: float, r: float, angle: float) -> tuple[list, list]:
    """Polygons (x, y) of a shape and of its hole, from the geometry ShapesData documents (circles as 360-gons)."""

    def place(points):
        c, s = math.cos(angle), math.sin(angle)
        return [(cx + r * (u * c - v * s), cy + r * (u * s + v * c)) for u, v in points]

    def circle(radius):
        return [(radius * math.cos(a), radius * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 360, endpoint=False)]

    h, w, t = 0.85, 0.33, 1.3
    shapes = {
        1: ([circle(1.0)], []),
        2: ([[(-h, -h), (h, -h), (h, h), (-h, h)]], []),
        3: ([[(t * math.cos(math.radians(a)), t * math.sin(math.radians(a))) for a in (90, 210, 330)]], []),
        4: ([circle(1.0)], [circle(0.55)]),
        5: ([[(-1, -w), (1, -w), (1, w), (-1, w)], [(-w, -1), (w, -1), (w, 1), (-w, 1)]], []),
    }
    fills, holes = shapes[cls]
    return [place(p) for p in fills], [place(p) for p in holes]


def reference_layers(scenes: Scenes, i: int, scale: int = 8) -> list[tuple[int, np.ndarray]]:
    """(class, bool [H, W]) of each shape of scene `i`, in drawing order: PIL polygons drawn at `scale` times the
    resolution, read at each pixel's centre."""
    from PIL import Image, ImageDraw

    side = scenes.size * scale
    layers = []
    for j in range(scenes.classes.shape[1]):
        cls = int(scenes.classes[i, j])
        if cls == 0:
            continue
        layer = Image.new("L", (side, side), 0)
        draw = ImageDraw.Draw(layer)
        cy, cx = scenes.centres[i, j]
        fills, holes = outlines(cls, cy * scale, cx * scale, scenes.sizes[i, j] * scale, scenes.angles[i, j])
        for polygon in fills:
            draw.polygon(polygon, fill=255)
        for polygon in holes:
            draw.polygon(polygon, fill=0)
        layers.append((cls, np.asarray(layer)[scale // 2 :: scale, scale // 2 :: scale] > 0))
    return layers


def test_shapes_masks_match_a_reference_rasteriser():
    """Masks agree with PIL polygons of the same scene descriptions, pasted in drawing order (the later shape wins),
    on all but boundary pixels; shapes do overlap, and where they do the later one is what the mask shows."""
    scenes = ShapesData(image_size=64, val_size=40, max_shapes=4, seed=5).scenes("val")
    _, masks = render(scenes)
    overlap_pixels = overlap_agree = 0
    for i in range(len(scenes)):
        layers = reference_layers(scenes, i)
        reference = np.zeros((scenes.size, scenes.size), dtype=np.int64)
        for cls, layer in layers:
            reference[layer] = cls
        mask = masks[i].numpy()
        differ = mask != reference
        assert differ.mean() <= 0.01, f"scene {i}: {differ.sum()} pixels differ"
        # a pixel that differs lies on a boundary: the reference changes label within one pixel of it
        padded = np.pad(reference, 1, mode="edge")
        boundary = np.zeros_like(differ)
        for dy in range(3):
            for dx in range(3):
                boundary |= padded[dy : dy + scenes.size, dx : dx + scenes.size] != reference
        assert boundary[differ].all(), f"scene {i}: a pixel away from any boundary differs"
        covered = np.sum([layer for _, layer in layers], axis=0)
        overlap = covered >= 2
        overlap_pixels += int(overlap.sum())
        overlap_agree += int((mask[overlap] == reference[overlap]).sum())
    assert overlap_pixels > 200  # shapes occlude one another
    assert overlap_agree >= 0.98 * overlap_pixels


def test_shapes_are_deterministic_per_seed_and_split():
    a = ShapesData(image_size=16, train_size=12, val_size=6, test_size=6, seed=3).load()
    b = ShapesData(image_size=16, train_size=12, val_size=6, test_size=6, seed=3).load()
    c = ShapesData(image_size=16, train_size=12, val_size=6, test_size=6, seed=4).load()
    for split in ("train", "val", "test"):
        x, y, z = (getattr(s, split) for s in (a, b, c))
        assert torch.equal(x.images, y.images) and torch.equal(x.masks, y.masks)
        assert not torch.equal(x.images, z.images) and not torch.equal(x.masks, z.masks)
    assert a.mean == b.mean and a.class_pixels == b.class_pixels
    assert not torch.equal(a.val.masks, a.test.masks[: len(a.val)])  # splits come from different seeds


def test_shapes_splits_classes_and_occlusion():
    source = attnkit.build("data", "shapes", image_size=32, train_size=60, val_size=10, test_size=12, max_shapes=5)
    splits = source.load()
    check_splits(splits)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (60, 10, 12)
    assert splits.class_names == CLASSES == ["background", "disc", "square", "triangle", "ring", "cross"]
    assert splits.image_size == (32, 32) and splits.in_channels == 3 and splits.num_classes == 6
    assert all(n > 0 for n in splits.class_pixels)  # every class appears
    assert splits.class_pixels[0] == max(splits.class_pixels)  # background is the majority
    assert set(torch.unique(splits.train.masks).tolist()) == set(range(6))
    scenes = source.scenes("train")
    assert scenes.classes.shape == (60, 5) and (scenes.classes > 0).sum(1).min() >= 1
    # a scene whose first shape is partly hidden: fewer pixels of its class than when drawn alone
    alone = Scenes(**{**vars(scenes), "classes": np.where(np.arange(5) == 0, scenes.classes, 0)})
    _, first_only = render(alone)
    first = torch.as_tensor(scenes.classes[:, 0]).view(-1, 1, 1)
    hidden = ((first_only == first) & (splits.train.masks != first)).flatten(1).sum(1)
    assert (hidden > 0).sum() >= 5


def test_shapes_colour_does_not_tell_the_class():
    """Mean colour of each shape class is that of the background (all drawn from one distribution)."""
    splits = ShapesData(image_size=32, train_size=300, val_size=1, test_size=1).load()
    images, masks = splits.train.images.float(), splits.train.masks
    means = torch.stack([images.permute(1, 0, 2, 3)[:, masks == c].mean(1) for c in range(6)])  # [class, RGB]
    assert (means - 127.5).abs().max() < 20


def test_given_mean_and_std_are_used():
    source = ShapesData(image_size=8, train_size=4, val_size=2, test_size=2)
    source.mean, source.std = [0.5, 0.25, 0.0], [0.5, 0.5, 2.0]
    splits = source.load()
    assert splits.mean == [0.5, 0.25, 0.0] and splits.std == [0.5, 0.5, 2.0]
    image, _ = splits.val[1]
    expected = (splits.val.images[1].float() / 255 - torch.tensor([0.5, 0.25, 0.0]).view(3, 1, 1)) / torch.tensor(
        [0.5, 0.5, 2.0]
    ).view(3, 1, 1)
    assert torch.allclose(image, expected)
    computed = ShapesData(image_size=8, train_size=4, val_size=2, test_size=2).load()
    pixels = computed.train.images.double() / 255
    assert torch.allclose(torch.tensor(computed.mean), pixels.mean((0, 2, 3)).float(), atol=1e-6)


# ------------------------------------------------------------------------------------------------ mask files


def write_image(path: Path, size: tuple[int, int], seed: int, mode: str = "RGB") -> None:
    """A random image of (height, width) `size`."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (*size, 3) if mode == "RGB" else size
    Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), mode).save(path)


def write_mask(path: Path, labels: np.ndarray, palette: list[list[int]] | None = None) -> None:
    """Class ids `[H, W]` as an index PNG (mode L), or as colours when a palette is given (mode RGB)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if palette is None:
        Image.fromarray(labels.astype(np.uint8), "L").save(path)
    else:
        Image.fromarray(np.asarray(palette, dtype=np.uint8)[labels], "RGB").save(path)


def labels_of(seed: int, size: tuple[int, int] = (12, 16), classes: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, classes, size=size)


def write_pool(root: Path, n: int, size: tuple[int, int] = (12, 16), classes: int = 3, mask_ext: str = ".png"):
    for i in range(n):
        write_image(root / "images" / f"{i:03d}.jpg", size, seed=i)
        write_mask(root / "masks" / f"{i:03d}{mask_ext}", labels_of(i, size, classes))


def test_mask_folder_pool_split_by_fractions(tmp_path):
    write_pool(tmp_path, 10)
    source = attnkit.build(
        "data", "mask_folder", path=str(tmp_path), classes=["a", "b", "c"], val_fraction=0.2, test_fraction=0.1,
        image_size=[6, 8],
    )  # fmt: skip
    splits = source.load()
    check_splits(splits)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (7, 2, 1)
    assert splits.image_size == (6, 8) and splits.class_names == ["a", "b", "c"]
    # the pairs stay pairs, and each mask is its file's label map resized with nearest neighbour
    assert every_mask(splits) == as_masks([resize_labels(labels_of(i).astype(np.int16), (6, 8)) for i in range(10)])
    again = MaskFolderData(path=str(tmp_path), val_fraction=0.2, test_fraction=0.1, image_size=[6, 8]).load()
    assert torch.equal(again.val.masks, splits.val.masks)  # seeded
    other = MaskFolderData(path=str(tmp_path), val_fraction=0.2, test_fraction=0.1, image_size=[6, 8], split_seed=1)
    assert not torch.equal(other.load().val.masks, splits.val.masks)


def test_mask_folder_native_size_and_classes_from_the_masks(tmp_path):
    write_pool(tmp_path, 6, classes=5)
    splits = MaskFolderData(path=str(tmp_path)).load()  # image_size null: the first training image's (12 x 16)
    assert splits.image_size == (12, 16)
    assert splits.class_names == [f"class_{i}" for i in range(5)]
    assert every_mask(splits) == as_masks([labels_of(i, classes=5) for i in range(6)])


def test_resizing_keeps_masks_exact(tmp_path):
    labels = labels_of(0, (12, 16), classes=4)
    labels[0, 0] = 255  # ignored
    write_image(tmp_path / "images" / "a.png", (12, 16), seed=0)
    write_mask(tmp_path / "masks" / "a.png", labels)
    for size in ([24, 32], [5, 7], [12, 16], 9):
        splits = MaskFolderData(path=str(tmp_path), val_fraction=0.0, test_fraction=0.0, image_size=size).load()
        values = set(torch.unique(splits.train.masks).tolist())
        assert values <= {IGNORE, 0, 1, 2, 3}  # no label invented between two others
    doubled = MaskFolderData(path=str(tmp_path), val_fraction=0.0, test_fraction=0.0, image_size=[24, 32]).load()
    expected = np.where(labels == 255, IGNORE, labels).repeat(2, 0).repeat(2, 1)
    assert np.array_equal(doubled.train.masks[0].numpy(), expected)


def test_mask_folder_split_folders_carve_the_missing_split(tmp_path):
    for split, n in (("train", 8), ("validation", 3)):
        for i in range(n):
            write_image(tmp_path / split / "images" / f"{split}{i}.png", (8, 8), seed=i)
            write_mask(tmp_path / split / "masks" / f"{split}{i}.png", labels_of(i, (8, 8)))
    splits = MaskFolderData(path=str(tmp_path), test_fraction=0.25).load()
    assert (len(splits.train), len(splits.val), len(splits.test)) == (6, 3, 2)
    check_splits(splits)


def test_camvid_style_list_files(tmp_path):
    """train.txt / val.txt of 'image mask' lines (paths relative to data.path), masks 0..10 with 11 = void."""
    names = ["sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car", "pedestrian", "bicyclist"]
    for split, n in (("train", 6), ("val", 2)):
        lines = []
        for i in range(n):
            labels = labels_of(i, (9, 12), classes=12)  # 11 is void
            write_image(tmp_path / split / f"0001TP_{i:04d}.png", (9, 12), seed=i)
            write_mask(tmp_path / f"{split}annot" / f"0001TP_{i:04d}.png", labels)
            lines.append(f"{split}/0001TP_{i:04d}.png {split}annot/0001TP_{i:04d}.png")
        (tmp_path / f"{split}.txt").write_text("\n".join(lines) + "\n")
    write_pool(tmp_path, 3)  # images/ + masks/ too: the list files take precedence
    splits = MaskFolderData(path=str(tmp_path), classes=names, ignore_index=11, test_fraction=0.2).load()
    check_splits(splits)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (5, 2, 1)
    assert splits.num_classes == 11 and splits.image_size == (9, 12)
    val_labels = np.stack([labels_of(i, (9, 12), classes=12) for i in range(2)])
    assert np.array_equal(splits.val.masks.numpy(), np.where(val_labels == 11, IGNORE, val_labels))
    assert (splits.train.masks == IGNORE).any()


def test_list_file_errors_name_the_line(tmp_path):
    write_pool(tmp_path, 2)
    (tmp_path / "train.txt").write_text("images/000.jpg masks/000.png\nimages/001.jpg\n")
    with pytest.raises(DataError) as excinfo:
        MaskFolderData(path=str(tmp_path)).load()
    message = one_line_error(excinfo)
    assert "line 2" in message and "train.txt" in message and "image_path mask_path" in message
    (tmp_path / "train.txt").write_text("images/000.jpg masks/000.png\nimages/001.jpg masks/none.png\n")
    with pytest.raises(DataError) as excinfo:
        MaskFolderData(path=str(tmp_path)).load()
    message = one_line_error(excinfo)
    assert "001.jpg has no mask" in message and "none.png" in message and "line 2" in message


def test_colour_masks_with_a_palette(tmp_path):
    palette = [[0, 0, 0], [128, 64, 128], [70, 130, 180]]
    void = [255, 255, 255]
    for i in range(5):
        labels = labels_of(i, (8, 10), classes=4)  # 3 = void
        write_image(tmp_path / "images" / f"{i}.png", (8, 10), seed=i)
        write_mask(tmp_path / "masks" / f"{i}.png", labels, palette=[*palette, void])
    source = MaskFolderData(
        path=str(tmp_path), classes=["other", "road", "sky"], palette=palette, ignore_color=void, val_fraction=0.2,
        test_fraction=0.2,
    )  # fmt: skip
    splits = source.load()
    check_splits(splits)
    assert splits.palette == [tuple(c) for c in palette]
    labels = [labels_of(i, (8, 10), classes=4) for i in range(5)]
    assert every_mask(splits) == as_masks([np.where(m == 3, IGNORE, m) for m in labels])
    with pytest.raises(DataError) as excinfo:  # white is no class and not the ignore colour
        MaskFolderData(path=str(tmp_path), classes=["other", "road", "sky"], palette=palette).load()
    message = one_line_error(excinfo)
    assert "[255, 255, 255]" in message and "masks" in message and ".png" in message and "data.palette" in message
    with pytest.raises(DataError) as excinfo:  # a colour mask read as an index mask
        MaskFolderData(path=str(tmp_path), classes=["other", "road", "sky"]).load()
    assert "colour image" in one_line_error(excinfo) and "data.palette" in str(excinfo.value)


def test_palette_and_grey_and_reduced_masks(tmp_path):
    """P-mode masks are class ids; a grey image source gives one channel; reduce_labels ignores 0."""
    from PIL import Image

    for i in range(4):
        labels = labels_of(i, (6, 6), classes=4)
        write_image(tmp_path / "images" / f"{i}.png", (6, 6), seed=i, mode="L")
        mask = Image.fromarray(labels.astype(np.uint8), "P")
        mask.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
        (tmp_path / "masks").mkdir(exist_ok=True)
        mask.save(tmp_path / "masks" / f"{i}.png")
    splits = MaskFolderData(path=str(tmp_path), channels=1, val_fraction=0.25, test_fraction=0.25).load()
    check_splits(splits)
    assert splits.in_channels == 1 and splits.num_classes == 4
    assert every_mask(splits) == as_masks([labels_of(i, (6, 6), 4) for i in range(4)])
    reduced = MaskFolderData(path=str(tmp_path), reduce_labels=True, classes=["a", "b", "c"], val_fraction=0.25,
                             test_fraction=0.25).load()  # fmt: skip
    every = torch.cat([reduced.train.masks, reduced.val.masks, reduced.test.masks])
    assert set(torch.unique(every).tolist()) == {IGNORE, 0, 1, 2}
    assert (every == IGNORE).sum() == sum((labels_of(i, (6, 6), 4) == 0).sum() for i in range(4))


def test_mask_suffix_in_one_folder(tmp_path):
    for i in range(3):
        write_image(tmp_path / "data" / f"{i}.jpg", (5, 5), seed=i)
        write_mask(tmp_path / "data" / f"{i}_mask.png", labels_of(i, (5, 5)))
    splits = MaskFolderData(
        path=str(tmp_path), images="data", masks="data", mask_suffix="_mask", val_fraction=0.34, test_fraction=0.3
    ).load()
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1, 1, 1)


# ------------------------------------------------------------------------------------------------ mask errors


def test_a_mask_of_another_size_is_refused(tmp_path):
    write_pool(tmp_path, 3)
    write_mask(tmp_path / "masks" / "001.png", labels_of(1, (12, 15)))
    with pytest.raises(DataError) as excinfo:
        MaskFolderData(path=str(tmp_path)).load()
    message = one_line_error(excinfo)
    assert "001.png is 15x12" in message and "001.jpg is 16x12" in message


def test_a_label_outside_the_classes_is_refused(tmp_path):
    write_pool(tmp_path, 3)
    labels = labels_of(2)
    labels[3, 4:6] = 7
    write_mask(tmp_path / "masks" / "002.png", labels)
    with pytest.raises(DataError) as excinfo:
        MaskFolderData(path=str(tmp_path), classes=["a", "b", "c"]).load()
    message = one_line_error(excinfo)
    assert "002.png has label 7 (2 pixels)" in message and "3 classes" in message
    assert "data.classes" in message and "data.ignore_index=7" in message
    splits = MaskFolderData(path=str(tmp_path), classes=["a", "b", "c"], ignore_index=7).load()  # the fix
    assert sum(int((s.masks == IGNORE).sum()) for s in (splits.train, splits.val, splits.test)) == 2


def test_binary_masks_saved_as_0_and_255_are_refused_with_the_fix(tmp_path):
    write_pool(tmp_path, 2, classes=2)
    for i in range(2):
        write_mask(tmp_path / "masks" / f"{i:03d}.png", labels_of(i, classes=2) * 255)
    with pytest.raises(DataError) as excinfo:  # 255 is the ignore index: nothing but background would be left
        MaskFolderData(path=str(tmp_path)).load()
    assert "only class id 0" in one_line_error(excinfo) and "0/255" in str(excinfo.value)


def test_unpaired_files_are_refused(tmp_path):
    write_pool(tmp_path, 3)
    (tmp_path / "masks" / "001.png").unlink()
    with pytest.raises(DataError) as excinfo:
        MaskFolderData(path=str(tmp_path)).load()
    message = one_line_error(excinfo)
    assert "001.jpg has no mask" in message and str(tmp_path / "masks" / "001") in message
    write_mask(tmp_path / "masks" / "001.png", labels_of(1))
    write_mask(tmp_path / "masks" / "extra.png", labels_of(1))
    with pytest.raises(DataError) as excinfo:
        MaskFolderData(path=str(tmp_path)).load()
    message = one_line_error(excinfo)
    assert "extra.png has no image" in message and str(tmp_path / "images" / "extra") in message


def test_missing_folders_no_images_and_unreadable_files(tmp_path):
    with pytest.raises(DataError) as excinfo:
        MaskFolderData().load()
    assert "data.path=" in one_line_error(excinfo)
    with pytest.raises(DataError) as excinfo:
        MaskFolderData(path=str(tmp_path / "absent")).load()
    assert "absent does not exist" in one_line_error(excinfo)
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError) as excinfo:
        MaskFolderData(path=str(tmp_path)).load()
    message = one_line_error(excinfo)
    assert str(tmp_path / "masks") in message and "does not exist" in message and "data.masks" in message
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError) as excinfo:
        MaskFolderData(path=str(tmp_path)).load()
    assert "no images found in" in one_line_error(excinfo)
    write_pool(tmp_path, 2)
    (tmp_path / "masks" / "001.png").write_bytes(b"not a png")
    with pytest.raises(DataError) as excinfo:
        MaskFolderData(path=str(tmp_path)).load()
    assert "cannot read image" in one_line_error(excinfo) and "001.png" in str(excinfo.value)


# ------------------------------------------------------------------------------------------------ hugging face


def write_parquet(path: Path, n: int, size: tuple[int, int] = (8, 10)) -> None:
    import datasets
    from PIL import Image

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)) for _ in range(n)]
    masks = [Image.fromarray(labels_of(i, size, classes=4).astype(np.uint8), "L") for i in range(n)]
    features = datasets.Features({"pixel_values": datasets.Image(), "label": datasets.Image()})
    table = datasets.Dataset.from_dict({"pixel_values": images, "label": masks}, features=features)
    table.to_parquet(str(path))


def test_hf_masks_parquet_files(tmp_path, offline):
    write_parquet(tmp_path / "train.parquet", 8)
    write_parquet(tmp_path / "test.parquet", 3)
    files = {"train": str(tmp_path / "train.parquet"), "test": str(tmp_path / "test.parquet")}
    source = attnkit.build(
        "data", "hf_masks", data_files=files, image_column="pixel_values", mask_column="label", ignore_index=3,
        classes=["a", "b", "c"], image_size=[4, 5], val_fraction=0.25, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    splits = source.load()
    check_splits(splits)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (6, 2, 3)
    assert splits.image_size == (4, 5) and splits.class_names == ["a", "b", "c"]
    expected = [np.where(labels_of(i, (8, 10), 4) == 3, IGNORE, labels_of(i, (8, 10), 4)) for i in range(3)]
    expected = torch.stack([resize_labels(e.astype(np.int16), (4, 5)) for e in expected])
    assert torch.equal(splits.test.masks, expected)
    with pytest.raises(DataError) as excinfo:  # label 3 is no class unless ignored
        HFMaskData(
            data_files=files, image_column="pixel_values", mask_column="label", classes=["a", "b", "c"],
            cache_dir=str(tmp_path / "cache"),
        ).load()  # fmt: skip
    message = one_line_error(excinfo)
    assert "has label 3" in message and "column 'label'" in message and "data.ignore_index=3" in message
    with pytest.raises(DataError) as excinfo:
        HFMaskData(data_files=files, image_column="pixel_values", cache_dir=str(tmp_path / "cache")).load()
    message = one_line_error(excinfo)
    assert "'mask'" in message and "pixel_values, label" in message and "data.mask_column=" in message


def test_hf_masks_imagefolder_with_metadata_and_array_masks(tmp_path, offline):
    """An imagefolder whose metadata.jsonl pairs image and mask files; and masks stored as arrays of class ids."""
    import datasets

    root = tmp_path / "data" / "train"
    lines = []
    for i in range(5):
        write_image(root / f"{i}.png", (6, 7), seed=i)
        write_mask(root / f"{i}_mask.png", labels_of(i, (6, 7)))
        lines.append(f'{{"image_file_name": "{i}.png", "mask_file_name": "{i}_mask.png"}}')
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    splits = HFMaskData(
        dataset="imagefolder", data_dir=str(tmp_path / "data"), val_fraction=0.2, test_fraction=0.2,
        cache_dir=str(tmp_path / "cache"),
    ).load()  # fmt: skip
    check_splits(splits)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (3, 1, 1)
    assert splits.num_classes == 3 and splits.image_size == (6, 7)

    from PIL import Image

    table = datasets.Dataset.from_dict(
        {
            "image": [Image.fromarray(np.full((4, 4, 3), 10 * i, np.uint8)) for i in range(4)],
            "mask": [labels_of(i, (4, 4)).tolist() for i in range(4)],
        },
        features=datasets.Features({"image": datasets.Image(), "mask": datasets.Sequence(datasets.Sequence(
            datasets.Value("int32")))}),
    )  # fmt: skip
    table.to_parquet(str(tmp_path / "arrays.parquet"))
    splits = HFMaskData(
        data_files=str(tmp_path / "arrays.parquet"), val_fraction=0.25, test_fraction=0.25,
        cache_dir=str(tmp_path / "cache"),
    ).load()  # fmt: skip
    assert every_mask(splits) == as_masks([labels_of(i, (4, 4)) for i in range(4)])
