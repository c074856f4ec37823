"""`data=hf`: a Hugging Face image dataset, from the hub or from local files (`imagefolder`, `parquet`, ...)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attnkit
from attnkit.data.hf import builder_for, first_file, load_splits
from attnkit.data.paths import resolve, resolve_files
from attnkit.data.splits import find_split
from attnkit.errors import ConfigError, DataError
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
        batch_size: int = 64,
        dataset: str | None = None,
        config_name: str | None = None,
        data_dir: str | None = None,
        data_files: str | list[str] | dict[str, str] | None = None,
        image_column: str = "image",
        label_column: str = "label",
        train_split: str = "train",
        val_split: str | None = "validation",
        test_split: str | None = "test",
        image_size: int = 32,
        channels: int = 3,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        in_memory: bool | None = None,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size)
        check_image_args(image_size, channels, val_fraction, test_fraction)
        if data_files is not None and not isinstance(data_files, (str, Sequence, Mapping)):
            raise ConfigError(
                f"data.data_files={data_files!r} must be a path or glob, a list of them, or a mapping split -> path"
            )
        self.dataset = dataset
        self.config_name = config_name
        self.data_dir = None if data_dir is None else resolve(data_dir)
        self.data_files = resolve_files(data_files)
        self.image_column = image_column
        self.label_column = label_column
        self.train_split = train_split
        self.val_split = val_split
        self.test_split = test_split
        self.image_size = (image_size, image_size)
        self.in_channels = channels
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.mean, self.std = check_norm(mean, std, channels)
        self.in_memory = in_memory
        self.cache_dir = None if cache_dir is None else resolve(cache_dir)

    def _builder(self) -> str:
        if self.dataset:
            return self.dataset
        if self.data_dir is not None and self.data_files is None:
            return "imagefolder"
        if self.data_files is not None:
            builder = builder_for(self.data_files, BUILDERS)
            if builder is not None:
                return builder
            first = first_file(self.data_files)
            if first.lower().endswith(IMAGE_EXTENSIONS) or first.endswith("*"):
                return "imagefolder"
            raise DataError(
                f"cannot tell the format of data.data_files={first!r}; "
                f"set data.dataset=parquet, json, csv or imagefolder"
            )
        raise DataError(
            "data source hf needs a dataset: set data.dataset=<hub name or builder> "
            "or data.data_dir=/path/to/images or data.data_files=/path/to/files"
        )

    def _load(self) -> ImageSplits:
        builder = self._builder()
        loaded = load_splits(
            builder,
            config_name=self.config_name,
            data_dir=self.data_dir,
            data_files=self.data_files,
            cache_dir=self.cache_dir,
            train_split=self.train_split,
        )
        train = loaded[self.train_split]
        columns = list(train.column_names)
        for key, column in (("image_column", self.image_column), ("label_column", self.label_column)):
            if column not in columns:
                raise DataError(
                    f"dataset {builder!r} has no column {column!r}; columns: {', '.join(columns)}; set data.{key}=..."
                )
        chosen = {"train": train}
        for split, wanted in (("val", self.val_split), ("test", self.test_split)):
            found = find_split(loaded, wanted, split)
            if found is not None:
                chosen[split] = loaded[found]
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
                import io

                return open_image(io.BytesIO(value["bytes"]), name=value.get("path") or f"row {index}")
            if value.get("path"):
                return open_image(value["path"])
        if isinstance(value, str):
            return open_image(value)
        try:
            import numpy as np

            array = np.asarray(value)
            if array.dtype != np.uint8:
                array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
            return Image.fromarray(array)
        except Exception as exc:
            raise DataError(
                f"row {index} of column {self.column!r} is not an image ({type(value).__name__}); "
                f"set data.image_column=..."
            ) from exc
