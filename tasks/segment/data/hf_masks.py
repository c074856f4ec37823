"""`data=hf_masks`: a Hugging Face segmentation dataset (an image column and a mask column), from the hub or from
local files (`parquet`, `json`, ...)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np

import attnkit
from attnkit.data.hf import HFDataset
from attnkit.errors import DataError
from attnkit.ranges import NonNegativeInt, PositiveInt, Range, Rate, Seed
from attnkit.tasks.segment.data.base import SegmentData, SegmentSplits
from attnkit.tasks.segment.data.masks import mask_format
from attnkit.tasks.segment.data.pairs import Pair, check_channels_and_fractions, image_size_option, read_splits
from attnkit.tasks.vit.data.base import carve, check_norm
from attnkit.tasks.vit.data.hf import BUILDERS, _HFReader
from attnkit.tasks.vit.data.images import open_image

Byte = Annotated[int, Range(0, 255)]


@attnkit.register("data", "hf_masks")
class HFMaskData(SegmentData):
    """A Hugging Face segmentation dataset, from the hub (`dataset=scene_parse_150`) or local files
    (`data_files=...`).

    `dataset` is a hub dataset or a builder (`parquet`, `json`, `csv`, `arrow`, `imagefolder`); with only
    `data_files` it follows their extension. `image_column` and `mask_column` name the columns; a mask is an image
    (index or, with `palette`, colour) or an array of class ids. The label options are `data=mask_folder`'s:
    `classes`, `palette`, `ignore_index`, `ignore_color`, `reduce_labels`. Splits `train_split`, `val_split` and
    `test_split` are used when present; missing ones are carved from train (`val_fraction`, `test_fraction`,
    `split_seed`). Images are resized bilinearly, masks with nearest neighbour, to `image_size` (an int: square;
    [height, width]; null: the first training image's size). Hub datasets need a network (or their local cache with
    HF_HUB_OFFLINE=1); `cache_dir` overrides the Hugging Face cache directory.
    """

    def __init__(
        self,
        batch_size: PositiveInt = 16,
        dataset: str | None = None,
        config_name: str | None = None,
        data_dir: str | None = None,
        data_files: str | list[str] | dict[str, str] | None = None,
        image_column: str = "image",
        mask_column: str = "mask",
        train_split: str = "train",
        val_split: str | None = "validation",
        test_split: str | None = "test",
        classes: list[str] | None = None,
        palette: list[list[Byte]] | None = None,
        ignore_index: NonNegativeInt | None = 255,
        ignore_color: list[Byte] | None = None,
        reduce_labels: bool = False,
        image_size: PositiveInt | list[PositiveInt] | None = None,
        channels: PositiveInt = 3,
        val_fraction: Rate = 0.1,
        test_fraction: Rate = 0.1,
        split_seed: Seed = 0,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size)
        check_channels_and_fractions(channels, val_fraction, test_fraction)
        self.hub = HFDataset(
            "hf_masks",
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
        self.image_column, self.mask_column = image_column, mask_column
        self.format, self.class_names = mask_format(classes, palette, ignore_index, ignore_color, reduce_labels)
        self.image_size = image_size_option(image_size)
        self.in_channels = channels
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.mean, self.std = check_norm(mean, std, channels)

    def _load(self) -> SegmentSplits:
        builder = self.hub.builder(
            "data.dataset=<hub name or builder>, data.data_dir=/path/to/imagefolder or data.data_files=/path/to/files",
            formats="parquet, json, csv or arrow",
            dir_builder="imagefolder",
        )
        loaded, names = self.hub.load(builder)
        columns = list(loaded[names["train"]].column_names)
        for key, column in (("image_column", self.image_column), ("mask_column", self.mask_column)):
            if column not in columns:
                raise DataError(
                    f"dataset {builder!r} has no column {column!r}; columns: {', '.join(columns)}; set data.{key}=..."
                )
        tables = {split: loaded[name] for split, name in names.items()}
        parts = {split: (list(range(len(table))), [0] * len(table)) for split, table in tables.items()}
        splits = carve(parts, self.val_fraction, self.test_fraction, self.split_seed)
        # carved splits are rows of the train table
        readers = {
            split: _PairReader(tables.get(split, tables["train"]), names.get(split, names["train"]), self)
            for split in splits
        }
        return read_splits(
            self,
            {split: (rows, readers[split]) for split, (rows, _) in splits.items()},
            self.format,
            self.class_names,
            self.in_channels,
            self.image_size,
        )


class _PairReader:
    """Reads row `i` of a Hugging Face table as (image, mask, names): the image as `data=hf` reads it, the mask as a
    PIL image (decoded, or from {"bytes", "path"} or a path) or an array of class ids."""

    def __init__(self, table: Any, split: str, source: HFMaskData) -> None:
        self.split = split
        self.images = _HFReader(table.select_columns([source.image_column]), source.image_column)
        self.masks = table.select_columns([source.mask_column])
        self.mask_column = source.mask_column

    def __call__(self, index: int) -> Pair:
        from PIL import Image

        name = f"row {index} of split {self.split}"
        value = self.masks[int(index)][self.mask_column]
        if isinstance(value, Mapping) and (value.get("bytes") or value.get("path")):
            label = value.get("path") or name
            data = io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]
            mask: Image.Image | np.ndarray = open_image(data, name=label)
        elif isinstance(value, str):
            mask = open_image(value)
        elif isinstance(value, Image.Image):
            mask = value
        else:
            try:
                mask = np.asarray(value)
            except (TypeError, ValueError) as exc:
                raise DataError(
                    f"{name}, column {self.mask_column!r}, is not a mask ({type(value).__name__}); set "
                    f"data.mask_column=..."
                ) from exc
            if mask.dtype == object or mask.ndim not in (2, 3):
                raise DataError(
                    f"{name}, column {self.mask_column!r}, is not a mask (an image or a [height, width] array of class "
                    f"ids); set data.mask_column=..."
                )
        return (
            self.images(index),
            mask,
            f"{name}, column {self.images.column!r}",
            f"{name}, column {self.mask_column!r}",
        )
