"""`data=hf`: a Hugging Face image dataset, from the hub or from local files (`imagefolder`, `parquet`, ...)."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

import attnkit
from attnkit.data.hf import HFDataset
from attnkit.errors import DataError
from attnkit.ranges import PositiveInt, Rate, Seed
from attnkit.tasks.vit.data.base import ImageData, ImageSplits, build_splits, carve, check_image_args, check_norm
from attnkit.tasks.vit.data.images import IMAGE_EXTENSIONS, open_image

if TYPE_CHECKING:
    from PIL import Image

# data_files extension -> Hugging Face builder, when `dataset` is not given
BUILDERS = (
    (".parquet", "parquet"),
    (".jsonl", "json"),
    (".json", "json"),
    (".csv", "csv"),
    (".arrow", "arrow"),
)


@attnkit.register("data", "hf")
class HFImageData(ImageData):
    """A Hugging Face image dataset, from the hub (`dataset=cifar10`) or from local files (`data_dir=...`).

    `dataset` is a hub dataset or a builder (`imagefolder`, `parquet`, `json`, `csv`, `arrow`); the key is
    not `name`, which names the data source itself (`data=hf`). With only `data_dir` it defaults to
    `imagefolder`, with only `data_files` it follows their extension. `image_column` and `label_column` name
    the columns; class names come from a ClassLabel feature, else from the sorted distinct labels. Splits
    `train_split`, `val_split` and `test_split` are used when present; missing ones are carved from train
    (`val_fraction`, `test_fraction`, stratified, `split_seed`). Images are converted to `channels` and
    resized to `image_size`. Hub datasets need a network (or their local cache with HF_HUB_OFFLINE=1);
    `cache_dir` overrides the Hugging Face cache directory.
    """

    def __init__(
        self,
        batch_size: PositiveInt = 64,
        dataset: str | None = None,
        config_name: str | None = None,
        data_dir: str | None = None,
        data_files: str | list[str] | dict[str, str] | None = None,
        image_column: str = "image",
        label_column: str = "label",
        train_split: str = "train",
        val_split: str | None = "validation",
        test_split: str | None = "test",
        image_size: PositiveInt = 32,
        channels: PositiveInt = 3,
        val_fraction: Rate = 0.1,
        test_fraction: Rate = 0.2,
        split_seed: Seed = 0,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        in_memory: bool | None = None,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size)
        check_image_args(image_size, channels, val_fraction, test_fraction)
        self.hub = HFDataset(
            "hf",
            BUILDERS,
            dataset=dataset,
            config_name=config_name,
            data_dir=data_dir,
            data_files=data_files,
            train_split=train_split,
            val_split=val_split,
            test_split=test_split,
            cache_dir=cache_dir,
        )
        self.image_column = image_column
        self.label_column = label_column
        self.image_size = (image_size, image_size)
        self.in_channels = channels
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.mean, self.std = check_norm(mean, std, channels)
        self.in_memory = in_memory

    def _load(self) -> ImageSplits:
        builder = self.hub.builder(
            "data.dataset=<hub name or builder> or data.data_dir=/path/to/images or data.data_files=/path/to/files",
            formats="parquet, json, csv or imagefolder",
            dir_builder="imagefolder",
            guess=lambda first: (
                "imagefolder" if first.lower().endswith(IMAGE_EXTENSIONS) or first.endswith("*") else None
            ),
        )
        loaded, names = self.hub.load(builder)
        train = loaded[names["train"]]
        columns = list(train.column_names)
        for key, column in (("image_column", self.image_column), ("label_column", self.label_column)):
            if column not in columns:
                raise DataError(
                    f"dataset {builder!r} has no column {column!r}; columns: {', '.join(columns)}; set data.{key}=..."
                )
        chosen = {split: loaded[name] for split, name in names.items()}
        feature = train.features[self.label_column]
        raw_labels = {split: list(ds[self.label_column]) for split, ds in chosen.items()}
        if hasattr(feature, "names") and hasattr(feature, "num_classes"):
            classes = [str(n) for n in feature.names]
            to_index: Callable[[Any], int] = int
        else:
            distinct = sorted({v for labels in raw_labels.values() for v in labels}, key=lambda v: (str(type(v)), v))
            if (
                all(isinstance(v, int) and not isinstance(v, bool) for v in distinct)
                and distinct
                and min(distinct) >= 0
            ):
                classes = [str(i) for i in range(max(distinct) + 1)]
                to_index = int
            else:
                mapping = {v: i for i, v in enumerate(distinct)}
                classes = [str(v) for v in distinct]
                to_index = mapping.__getitem__
        parts = {}
        for split, ds in chosen.items():
            images = ds.select_columns([self.image_column])
            labels = [to_index(v) for v in raw_labels[split]]
            if any(y < 0 for y in labels):
                raise DataError(
                    f"dataset {builder!r} split {split} has unlabelled rows (label -1); choose labelled splits"
                )
            parts[split] = (list(range(len(ds))), labels)
            chosen[split] = images
        splits = carve(parts, self.val_fraction, self.test_fraction, self.split_seed)
        # carved splits point into the train table; remember which table each split reads from
        readers = {split: _HFReader(chosen.get(split, chosen["train"]), self.image_column) for split in splits}
        return build_splits(self, splits, readers, classes)


class _HFReader:
    """Reads row `i`'s image from a Hugging Face dataset (PIL image, {"bytes", "path"} dict, or an array)."""

    def __init__(self, dataset: Any, column: str) -> None:
        self.dataset, self.column = dataset, column

    def __call__(self, index: int) -> Image.Image:
        from PIL import Image

        value = self.dataset[int(index)][self.column]
        if isinstance(value, Image.Image):
            return value
        if isinstance(value, Mapping):
            if value.get("bytes"):
                return open_image(io.BytesIO(value["bytes"]), name=value.get("path") or f"row {index}")
            if value.get("path"):
                return open_image(value["path"])
        if isinstance(value, str):
            return open_image(value)
        try:
            array = np.asarray(value)
            if array.dtype != np.uint8:
                array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
            return Image.fromarray(array)
        except Exception as exc:
            raise DataError(
                f"row {index} of column {self.column!r} is not an image ({type(value).__name__}); "
                f"set data.image_column=..."
            ) from exc
