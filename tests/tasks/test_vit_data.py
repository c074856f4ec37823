"""Image-classification data sources of the vit task: digits, fashion_mnist, image_folder, hf (offline)."""

from __future__ import annotations

import os

os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import gzip
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

import attnkit
from attnkit.errors import ConfigError, DataError
from attnkit.tasks.vit.data import (
    DigitsData,
    FashionMNISTData,
    HFImageData,
    ImageData,
    ImageFolderData,
    ImageSplits,
    stratified_split,
)
from attnkit.tasks.vit.data.images import read_image

SOURCES = {
    "digits": DigitsData,
    "fashion_mnist": FashionMNISTData,
    "image_folder": ImageFolderData,
    "hf": HFImageData,
}


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


def all_items(dataset: torch.utils.data.Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
    return torch.stack(images), torch.as_tensor([int(y) for y in labels])


def check_items(splits: ImageSplits) -> None:
    for dataset in (splits.train, splits.val, splits.test):
        image, label = dataset[0]
        assert image.dtype == torch.float32
        assert tuple(image.shape) == (splits.in_channels, *splits.image_size)
        assert 0 <= int(label) < splits.num_classes
    assert len(splits.class_names) == splits.num_classes
    assert len(splits.mean) == len(splits.std) == splits.in_channels


def read_like(path: Path, splits: ImageSplits) -> torch.Tensor:
    """`path` read as `mode=predict` reads it for a model trained on `splits`."""
    return read_image(
        path, in_channels=splits.in_channels, image_size=splits.image_size, mean=splits.mean, std=splits.std
    )


# ------------------------------------------------------------------------------------------------ registry


def test_every_source_is_registered():
    names = attnkit.available("data")
    for name, cls in SOURCES.items():
        assert name in names
        assert attnkit.get("data", name) is cls
        assert issubclass(cls, ImageData)


def test_config_nodes_have_batch_size():
    from attnkit.registry import defaults

    for name in SOURCES:
        node = defaults("data", name)
        assert node["name"] == name  # no constructor argument may shadow the component's name
        assert node["batch_size"] == 64


def test_importing_the_package_stays_light():
    """The data package alone (without the task) imports all its modules and no heavy library: the CLI imports it
    at start-up.
    """
    code = (
        "import sys, types\n"
        "import attnkit.tasks\n"
        "vit = sys.modules['attnkit.tasks.vit'] = types.ModuleType('attnkit.tasks.vit')\n"
        "vit.__path__ = [sys.argv[1]]  # the vit package without its __init__, which imports the task\n"
        "import attnkit.tasks.vit.data\n"
        "heavy = ['sklearn', 'PIL', 'torchvision', 'datasets', 'lightning', 'pytorch_lightning', 'hydra']\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "print(sorted(m for m in sys.modules if m.startswith('attnkit.tasks.vit.')))\n"
    )
    vit_dir = Path(sys.modules[DigitsData.__module__].__file__).parents[1]
    out = subprocess.run([sys.executable, "-c", code, str(vit_dir)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    heavy, loaded = out.stdout.strip().splitlines()
    assert heavy == "[]"
    modules = ["base", "digits", "fashion_mnist", "hf", "image_folder", "images"]
    assert loaded == str(["attnkit.tasks.vit.data"] + [f"attnkit.tasks.vit.data.{m}" for m in modules])


def test_wrong_option_types_are_config_errors():
    with pytest.raises(ConfigError):
        attnkit.build("data", "digits", batch_size="big")
    with pytest.raises(ConfigError):
        DigitsData(batch_size=0)
    with pytest.raises(ConfigError):
        DigitsData(test_size=1000, val_size=900)
    with pytest.raises(ConfigError):
        ImageFolderData(path="x", channels=2)
    with pytest.raises(ConfigError):
        ImageFolderData(path="x", val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ConfigError):
        ImageFolderData(path="x", mean=[0.5, 0.5], std=[0.2, 0.2])


# ---------------------------------------------------------------------------------------- stratified split


def test_stratified_split_exact_disjoint_proportional_deterministic():
    labels = [0] * 50 + [1] * 30 + [2] * 20
    kept, taken = stratified_split(labels, 20, seed=3)
    assert len(taken) == 20 and len(kept) == 80
    assert sorted(kept + taken) == list(range(100))
    assert Counter(labels[i] for i in taken) == {0: 10, 1: 6, 2: 4}
    assert stratified_split(labels, 20, seed=3) == (kept, taken)
    assert stratified_split(labels, 20, seed=4) != (kept, taken)


def test_stratified_split_keeps_one_of_each_class_when_it_can():
    labels = [0, 0, 0, 0, 0, 0, 0, 1, 2, 2]
    kept, taken = stratified_split(labels, 5, seed=0)
    assert len(taken) == 5
    assert {labels[i] for i in kept} == {0, 1, 2}


# ------------------------------------------------------------------------------ read_image (mode=predict)


def save(image, path: Path) -> Path:
    image.save(path)
    return path


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize(
    "mode, colour",
    [("L", 100), ("RGB", (200, 30, 60)), ("RGBA", (200, 30, 60, 128)), ("P", 7)],
)
def test_read_image_converts_to_grey_or_rgb(tmp_path, mode, colour, in_channels):
    from PIL import Image

    image = Image.new(mode, (5, 4), colour)
    path = save(image, tmp_path / "in.png")
    x = read_image(path, in_channels=in_channels, image_size=(4, 5), mean=[0.0], std=[1.0])
    assert x.shape == (in_channels, 4, 5) and x.dtype == torch.float32
    reference = image.convert("RGBA" if mode == "P" else mode).convert("L" if in_channels == 1 else "RGB")
    expected = torch.tensor(reference.getpixel((0, 0)), dtype=torch.float32).reshape(-1) / 255
    assert torch.allclose(x, expected.view(-1, 1, 1).expand_as(x), atol=1e-6)
    if in_channels == 3 and mode == "L":
        assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])


def test_read_image_resizes_to_height_and_width(tmp_path):
    from PIL import Image

    image = Image.new("L", (20, 10), 0)  # width 20, height 10: left half white, right half black
    image.paste(255, (0, 0, 10, 10))
    path = save(image, tmp_path / "halves.png")
    x = read_image(path, in_channels=1, image_size=(4, 8), mean=[0.0], std=[1.0])
    assert x.shape == (1, 4, 8)
    assert torch.allclose(x[..., :2], torch.ones(1, 4, 2), atol=1e-6)
    assert torch.allclose(x[..., -2:], torch.zeros(1, 4, 2), atol=1e-6)
    same = read_image(path, in_channels=1, image_size=[10, 20], mean=[0.0], std=[1.0])  # a list, as in checkpoints
    assert torch.equal(same[0], torch.as_tensor(list(image.getdata()), dtype=torch.float32).view(10, 20) / 255)


def test_read_image_normalises_per_channel(tmp_path):
    from PIL import Image

    path = save(Image.new("RGB", (3, 3), (255, 0, 51)), tmp_path / "in.png")
    x = read_image(path, in_channels=3, image_size=(3, 3), mean=[0.5, 0.0, 0.2], std=[0.5, 1.0, 0.1])
    assert torch.allclose(x, torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 3, 3), atol=1e-5)
    grey = read_image(path, in_channels=1, image_size=(3, 3), mean=[0.25], std=[0.5])
    level = Image.open(path).convert("L").getpixel((0, 0)) / 255
    assert torch.allclose(grey, torch.full((1, 3, 3), (level - 0.25) / 0.5), atol=1e-5)


def test_read_image_rescales_16_bit_grey(tmp_path):
    from PIL import Image

    path = save(Image.new("I;16", (4, 4), 32768), tmp_path / "deep.png")  # half of 16-bit range, not clipped
    x = read_image(path, in_channels=1, image_size=(4, 4), mean=[0.0], std=[1.0])
    assert torch.allclose(x, torch.full((1, 4, 4), 127 / 255), atol=1e-6)


def test_read_image_unreadable_or_missing_file_is_one_line_data_error(tmp_path):
    (tmp_path / "x.png").write_text("not an image\n")
    for path in (tmp_path / "x.png", tmp_path / "absent.png"):
        with pytest.raises(DataError) as excinfo:
            read_image(path, in_channels=1, image_size=(8, 8), mean=[0.0], std=[1.0])
        message = one_line_error(excinfo)
        assert message.startswith("cannot read image") and str(path) in message


# ---------------------------------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits() -> DigitsData:
    source = attnkit.build("data", "digits")
    source.load()
    return source


def test_digits_read_without_importing_sklearn_equal_load_digits(monkeypatch):
    """The data file read directly (no scikit-learn import, seconds saved) gives what `load_digits` gives; where the
    file is not found, `load_digits` itself."""
    from sklearn.datasets import load_digits

    from attnkit.tasks.vit.data import digits as module

    reference = load_digits()
    expected = torch.as_tensor(reference.images, dtype=torch.float32), torch.as_tensor(reference.target)
    direct = module.read_digits()
    monkeypatch.setattr(module.importlib.util, "find_spec", lambda name: None)
    fallback = module.read_digits()
    for images, labels in (direct, fallback):
        assert torch.equal(images, expected[0]) and torch.equal(labels, expected[1])


def test_digits_split_sizes_and_shapes(digits):
    splits = digits.load()
    assert digits.load() is splits  # cached
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1257, 180, 360)
    assert splits.num_classes == 10 and splits.class_names == [str(d) for d in range(10)]
    assert splits.image_size == (8, 8) and splits.in_channels == 1
    check_items(splits)
    assert splits.train.tensors[1].dtype == torch.int64


def test_digits_split_is_stratified(digits):
    from sklearn.datasets import load_digits

    totals = Counter(load_digits().target.tolist())
    splits = digits.load()
    for dataset, size in ((splits.test, 360), (splits.val, 180)):
        counts = Counter(dataset.tensors[1].tolist())
        for label, total in totals.items():
            assert abs(counts[label] - size * total / 1797) <= 1.5


def test_digits_split_is_deterministic_and_seeded(digits):
    again = DigitsData().load()
    splits = digits.load()
    for a, b in ((splits.train, again.train), (splits.val, again.val), (splits.test, again.test)):
        assert torch.equal(a.tensors[0], b.tensors[0]) and torch.equal(a.tensors[1], b.tensors[1])
    other = DigitsData(split_seed=1).load()
    assert not torch.equal(other.test.tensors[0], splits.test.tensors[0])


def test_digits_normalised_with_train_statistics(digits):
    from sklearn.datasets import load_digits

    splits = digits.load()
    train = splits.train.tensors[0]
    assert abs(float(train.mean())) < 1e-5
    assert abs(float(train.std(unbiased=False)) - 1) < 1e-4
    raw = torch.as_tensor(load_digits().images, dtype=torch.float64) / 16
    assert 0.2 < splits.mean[0] < 0.4 and abs(splits.mean[0] - float(raw.mean())) < 0.02
    # the same affine map was applied to every split: un-normalising gives pixels in [0, 1] on the 1/16 grid
    restored = splits.test.tensors[0] * splits.std[0] + splits.mean[0]
    assert float(restored.min()) > -1e-4 and float(restored.max()) < 1 + 1e-4
    assert torch.allclose(restored * 16, (restored * 16).round(), atol=1e-3)


def test_digits_read_image(digits, tmp_path):
    from PIL import Image

    Image.new("RGB", (30, 20), (255, 255, 255)).save(tmp_path / "white.png")
    splits = digits.load()
    x = read_like(tmp_path / "white.png", splits)
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32
    expected = (1.0 - splits.mean[0]) / splits.std[0]
    assert torch.allclose(x, torch.full_like(x, expected), atol=1e-5)


# --------------------------------------------------------------------------------------------- fashion-mnist


def idx_bytes(tensor: torch.Tensor) -> bytes:
    header = bytes([0, 0, 0x08, tensor.dim()]) + b"".join(int(n).to_bytes(4, "big") for n in tensor.shape)
    return header + tensor.to(torch.uint8).numpy().tobytes()


def write_fashion(folder: Path, compressed: bool, n_train: int = 20, n_test: int = 6) -> dict[str, torch.Tensor]:
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    arrays = {
        "train-images-idx3-ubyte": torch.randint(0, 256, (n_train, 7, 5), generator=g),
        "train-labels-idx1-ubyte": torch.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": torch.randint(0, 256, (n_test, 7, 5), generator=g),
        "t10k-labels-idx1-ubyte": (torch.arange(n_test) * 3) % 10,
    }
    for name, tensor in arrays.items():
        data = idx_bytes(tensor)
        if compressed:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("layout", ["gzip", "raw", "torchvision"])
def test_fashion_mnist_reads_idx_files(tmp_path, layout):
    folder = tmp_path / "FashionMNIST" / "raw" if layout == "torchvision" else tmp_path
    arrays = write_fashion(folder, compressed=layout != "raw")
    source = attnkit.build("data", "fashion_mnist", path=str(tmp_path), val_size=4)
    splits = source.load()
    assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 4, 6)
    assert splits.image_size == (7, 5) and splits.in_channels == 1 and splits.num_classes == 10
    assert splits.class_names[0] == "T-shirt/top" and splits.class_names[9] == "Ankle boot"
    check_items(splits)
    train = arrays["train-images-idx3-ubyte"].float() / 255
    assert splits.mean[0] == pytest.approx(float(train[:16].mean()), abs=1e-6)
    # validation is the last val_size of the official training set, in order
    assert torch.equal(splits.val.tensors[1], arrays["train-labels-idx1-ubyte"][16:])
    expected = (train[16:].unsqueeze(1) - splits.mean[0]) / splits.std[0]
    assert torch.allclose(splits.val.tensors[0], expected, atol=1e-5)
    assert torch.equal(splits.test.tensors[1], arrays["t10k-labels-idx1-ubyte"])


def test_fashion_mnist_limit_train_is_deterministic(tmp_path):
    write_fashion(tmp_path, compressed=True)
    full = FashionMNISTData(path=str(tmp_path), val_size=4).load()
    small = FashionMNISTData(path=str(tmp_path), val_size=4, limit_train=5).load()
    assert len(small.train) == 5 and len(small.val) == 4
    assert torch.equal(small.train.tensors[0], full.train.tensors[0][:5])
    assert small.mean == full.mean  # normalisation does not depend on the limit


def test_fashion_mnist_missing_files_is_one_line_data_error(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as excinfo:
        attnkit.build("data", "fashion_mnist", path=str(missing)).load()
    message = one_line_error(excinfo)
    assert str(missing) in message and "data.path=" in message and "data.download=true" in message


def test_fashion_mnist_bad_file_is_data_error(tmp_path):
    write_fashion(tmp_path, compressed=False)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(DataError) as excinfo:
        FashionMNISTData(path=str(tmp_path), val_size=4).load()
    assert "t10k-images-idx3-ubyte" in one_line_error(excinfo)


def test_fashion_mnist_relative_path(tmp_path, monkeypatch):
    write_fashion(tmp_path / "fm", compressed=True)
    monkeypatch.chdir(tmp_path)
    source = FashionMNISTData(path="fm", val_size=4)
    monkeypatch.chdir("/")  # resolved against the launch directory when built, not later
    assert len(source.load().test) == 6


# ---------------------------------------------------------------------------------------------- image folder

COLOURS = {"apple": (200, 30, 30), "leaf": (30, 200, 30), "sky": (30, 30, 200)}


def write_tree(root: Path, per_class: int, size: tuple[int, int] = (12, 10), start: int = 0) -> None:
    from PIL import Image

    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(start, start + per_class):
            shade = tuple(min(255, c + 2 * i) for c in colour)
            Image.new("RGB", size, shade).save(root / name / f"{i:03d}.png")
    (root / "apple" / "notes.txt").write_text("not an image; ignored")


def test_image_folder_single_tree_split(tmp_path):
    write_tree(tmp_path / "tree", per_class=10)
    source = attnkit.build("data", "image_folder", path=str(tmp_path / "tree"), image_size=8)
    splits = source.load()
    assert (len(splits.train), len(splits.val), len(splits.test)) == (21, 3, 6)
    assert splits.class_names == ["apple", "leaf", "sky"] and splits.num_classes == 3
    assert splits.image_size == (8, 8) and splits.in_channels == 3
    check_items(splits)
    assert Counter(splits.test.tensors[1].tolist()) == {0: 2, 1: 2, 2: 2}
    assert Counter(splits.val.tensors[1].tolist()) == {0: 1, 1: 1, 2: 1}
    train = splits.train.tensors[0]
    assert torch.allclose(train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    # deterministic for a seed
    again = ImageFolderData(path=str(tmp_path / "tree"), image_size=8).load()
    assert torch.equal(again.test.tensors[0], splits.test.tensors[0])


def test_image_folder_split_subfolders_and_grayscale(tmp_path):
    write_tree(tmp_path / "train", per_class=4)
    write_tree(tmp_path / "validation", per_class=2, start=10)
    write_tree(tmp_path / "test", per_class=3, start=20)
    splits = ImageFolderData(path=str(tmp_path), image_size=6, channels=1).load()
    assert (len(splits.train), len(splits.val), len(splits.test)) == (12, 6, 9)
    assert splits.in_channels == 1 and len(splits.mean) == 1
    check_items(splits)
    assert splits.test.tensors[0].shape == (9, 1, 6, 6)


def test_image_folder_carves_missing_validation_split(tmp_path):
    write_tree(tmp_path / "train", per_class=10)
    write_tree(tmp_path / "test", per_class=2)
    splits = ImageFolderData(path=str(tmp_path), image_size=4, val_fraction=0.2).load()
    assert (len(splits.train), len(splits.val), len(splits.test)) == (24, 6, 6)


def test_image_folder_train_folder_alone(tmp_path):
    write_tree(tmp_path / "train", per_class=10)
    splits = ImageFolderData(path=str(tmp_path), image_size=4).load()
    assert splits.class_names == ["apple", "leaf", "sky"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (21, 3, 6)


def test_image_folder_unknown_class_in_test_is_data_error(tmp_path):
    write_tree(tmp_path / "train", per_class=2)
    write_tree(tmp_path / "test", per_class=1)
    (tmp_path / "test" / "zebra").mkdir()
    with pytest.raises(DataError) as excinfo:
        ImageFolderData(path=str(tmp_path)).load()
    assert "zebra" in one_line_error(excinfo)


def test_image_folder_lazy_matches_in_memory(tmp_path):
    write_tree(tmp_path, per_class=5)
    eager = ImageFolderData(path=str(tmp_path), image_size=5, in_memory=True).load()
    lazy = ImageFolderData(path=str(tmp_path), image_size=5, in_memory=False).load()
    assert not isinstance(lazy.train, torch.utils.data.TensorDataset)
    assert lazy.mean == pytest.approx(eager.mean) and lazy.std == pytest.approx(eager.std)
    for a, b in ((eager.train, lazy.train), (eager.test, lazy.test)):
        xa, ya = all_items(a)
        xb, yb = all_items(b)
        assert torch.allclose(xa, xb, atol=1e-5) and torch.equal(ya, yb)


def test_image_folder_given_normalisation(tmp_path):
    write_tree(tmp_path, per_class=3)
    splits = ImageFolderData(path=str(tmp_path), image_size=4, mean=[0.5], std=[0.25]).load()
    assert splits.mean == [0.5, 0.5, 0.5] and splits.std == [0.25, 0.25, 0.25]
    x, _ = splits.train[0]
    assert float(x.min()) >= -2.0 - 1e-6 and float(x.max()) <= 2.0 + 1e-6


def test_image_folder_relative_path(tmp_path, monkeypatch):
    write_tree(tmp_path / "pics", per_class=3)
    monkeypatch.chdir(tmp_path)
    source = attnkit.build("data", "image_folder", path="pics", image_size=4)
    assert source.load().num_classes == 3


def test_image_folder_unreadable_image_is_data_error(tmp_path):
    write_tree(tmp_path, per_class=3)
    bad = tmp_path / "leaf" / "broken.png"
    bad.write_bytes(b"\x89PNG but not really")
    for in_memory in (True, False):
        with pytest.raises(DataError) as excinfo:
            splits = ImageFolderData(path=str(tmp_path), in_memory=in_memory).load()
            for dataset in (splits.train, splits.val, splits.test):
                all_items(dataset)
        assert str(bad) in one_line_error(excinfo)


def test_image_folder_missing_path_is_data_error(tmp_path):
    with pytest.raises(DataError) as excinfo:
        ImageFolderData().load()
    assert "data.path=" in one_line_error(excinfo)
    with pytest.raises(DataError) as excinfo:
        ImageFolderData(path=str(tmp_path / "absent")).load()
    message = one_line_error(excinfo)
    assert str(tmp_path / "absent") in message and "data.path=" in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError):
        ImageFolderData(path=str(tmp_path / "empty")).load()


def test_image_folder_read_image_matches_the_data(tmp_path):
    from PIL import Image

    write_tree(tmp_path, per_class=2, size=(12, 10))
    for channels in (1, 3):
        splits = ImageFolderData(path=str(tmp_path), image_size=8, channels=channels, val_fraction=0.0).load()
        # every image of a class is a flat colour; the first apple image is in some split
        x = read_like(tmp_path / "apple" / "000.png", splits)
        assert x.shape == (channels, 8, 8) and x.dtype == torch.float32
        images, _ = all_items(torch.utils.data.ConcatDataset([splits.train, splits.test]))
        assert any(torch.allclose(x, img, atol=1e-5) for img in images)
        # any size and mode
        Image.new("RGBA", (40, 25), (1, 2, 3, 4)).save(tmp_path / "user.png")
        assert read_like(tmp_path / "user.png", splits).shape == (channels, 8, 8)


# ------------------------------------------------------------------------------------------ hugging face


def test_hf_imagefolder_local_dir(tmp_path, offline):
    write_tree(tmp_path / "data" / "train", per_class=6)
    write_tree(tmp_path / "data" / "test", per_class=2, start=10)
    source = attnkit.build(
        "data", "hf", dataset="imagefolder", data_dir=str(tmp_path / "data"), image_size=8,
        cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    splits = source.load()
    assert splits.class_names == ["apple", "leaf", "sky"]
    # test from test/, validation carved from train (10% of 18, stratified)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 2, 6)
    check_items(splits)
    assert read_like(tmp_path / "data" / "test" / "sky" / "010.png", splits).shape == (3, 8, 8)


def write_parquet(path: Path, string_labels: bool = False) -> None:
    import datasets
    from PIL import Image

    names = ["circle", "square", "star"]
    images = [Image.new("L", (6, 6), 20 * i) for i in range(15)]
    if string_labels:
        labels, label_feature = [names[i % 3] for i in range(15)], datasets.Value("string")
    else:
        labels, label_feature = [i % 3 for i in range(15)], datasets.ClassLabel(names=names)
    features = datasets.Features({"picture": datasets.Image(), "kind": label_feature, "extra": datasets.Value("int64")})
    table = datasets.Dataset.from_dict({"picture": images, "kind": labels, "extra": list(range(15))}, features=features)
    table.to_parquet(str(path))


@pytest.mark.parametrize("string_labels", [False, True])
def test_hf_parquet_custom_columns(tmp_path, string_labels, offline):
    write_parquet(tmp_path / "shapes.parquet", string_labels)
    source = HFImageData(
        data_files=str(tmp_path / "shapes.parquet"), image_column="picture", label_column="kind", channels=1,
        image_size=6, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    splits = source.load()
    assert splits.class_names == ["circle", "square", "star"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (10, 2, 3)  # val and test carved
    assert Counter(splits.test.tensors[1].tolist()) == {0: 1, 1: 1, 2: 1}
    check_items(splits)


def test_hf_data_files_mapping_split_to_path(tmp_path, offline):
    write_parquet(tmp_path / "a.parquet")
    write_parquet(tmp_path / "b.parquet")
    files = {"train": str(tmp_path / "a.parquet"), "test": str(tmp_path / "b.parquet")}
    source = attnkit.build(
        "data", "hf", dataset="parquet", data_files=files, image_column="picture", label_column="kind",
        image_size=4, val_fraction=0.2, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    splits = source.load()
    assert (len(splits.train), len(splits.val), len(splits.test)) == (12, 3, 15)
    with pytest.raises(DataError) as excinfo:
        HFImageData(
            data_files=files, image_column="picture", label_column="kind", test_split="holdout",
            cache_dir=str(tmp_path / "cache"),
        ).load()  # fmt: skip
    assert "'holdout'" in one_line_error(excinfo) and "train, test" in str(excinfo.value)


def test_hf_bad_column_is_data_error_listing_columns(tmp_path, offline):
    write_parquet(tmp_path / "shapes.parquet")
    source = HFImageData(
        dataset="parquet", data_files=str(tmp_path / "shapes.parquet"), cache_dir=str(tmp_path / "cache"),
        image_column="picture",
    )  # fmt: skip
    with pytest.raises(DataError) as excinfo:
        source.load()  # the label column is "kind", not the default "label"
    message = one_line_error(excinfo)
    assert "'label'" in message and "picture, kind, extra" in message and "data.label_column=" in message


def test_hf_needs_a_dataset_and_reports_load_errors_in_one_line(tmp_path, offline):
    with pytest.raises(DataError) as excinfo:
        HFImageData().load()
    assert "data.dataset=" in one_line_error(excinfo)
    with pytest.raises(DataError) as excinfo:
        HFImageData(data_dir=str(tmp_path / "absent")).load()
    assert str(tmp_path / "absent") in one_line_error(excinfo)
    with pytest.raises(DataError) as excinfo:  # offline: the hub is never reached
        HFImageData(dataset="someone/no-such-dataset", cache_dir=str(tmp_path / "cache")).load()
    assert "someone/no-such-dataset" in one_line_error(excinfo)
