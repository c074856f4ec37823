"""The `segment` task: label every pixel with a ViT encoder and a registered decoder (model=segmenter)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from attnkit.errors import ConfigError
from attnkit.ranges import Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Range, Rate
from attnkit.registry import build_spec, register
from attnkit.tasks.segment.data.base import SegmentData
from attnkit.tasks.segment.metrics import majority_baseline, median_frequency_weights
from attnkit.tasks.segment.plots import plot_segmentation, save_label_map, save_overlay
from attnkit.tasks.segment.window import sliding_window
from attnkit.tasks.vit.data.images import open_image, pil_to_uint8
from attnkit.tasks.vit.task import check_compatible
from attnkit.train import run
from attnkit.train.checkpoints import model_from_checkpoint
from attnkit.train.reports import print_summary
from attnkit.train.task import Given, LoadedData, Setup, Task

SCORES = ("miou", "pixel_acc", "class_acc")


def data_info(splits: Any) -> dict[str, Any]:
    """What a checkpoint must know of its data to label a new image: sizes, classes, colours, normalisation."""
    return {
        "num_classes": splits.num_classes,
        "image_size": list(splits.image_size),
        "in_channels": splits.in_channels,
        "class_names": list(splits.class_names),
        "palette": [list(c) for c in splits.palette],
        "mean": list(splits.mean),
        "std": list(splits.std),
        "class_pixels": list(splits.class_pixels),
    }


@register("task", "segment")
@dataclass
class SegmentTask(Task):
    """Semantic segmentation: mean IoU, per-class IoU, pixel and class-average accuracy, beside the majority class's.

    Training takes crops of `crop_size` (null: the data's image size; also the model's input size) from images
    scaled at random by [`min_scale`, `max_scale`] and mirrored (`flip`); evaluation labels whole images at the data's
    size with overlapping windows of the crop size (`window_overlap` of a window shared). Per-pixel cross-entropy over
    labelled pixels, with `label_smoothing` and `class_weights` (`none`, `median_frequency` from the training split,
    or one number per class). AdamW (`lr`, `weight_decay`), linear warm-up over `warmup_fraction` of the steps, cosine
    decay to `min_lr_ratio`; `ema_decay`: evaluate a moving average of the weights (0 = off). `plot_images`: test
    images in segmentation.png."""

    name: ClassVar[str] = "segment"
    title: ClassVar[str] = "Segmentation"
    monitor: ClassVar[str] = "val/miou"
    classes_need_examples: ClassVar[bool] = False
    evaluation_keys: ClassVar[tuple[str, ...]] = ("task.window_overlap", "task.plot_images")

    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.05
    warmup_fraction: Fraction = 0.05
    min_lr_ratio: Fraction = 0.01
    label_smoothing: Rate = 0.0
    class_weights: Literal["none", "median_frequency"] | list[float] = "none"
    crop_size: PositiveInt | list[int] | None = None
    min_scale: Annotated[float, Range(0.05, 20), "the smallest random scale of an image"] = 0.5
    max_scale: Annotated[float, Range(0.05, 20), "the largest random scale of an image"] = 2.0
    flip: bool = True
    window_overlap: Annotated[float, Range(0, 1, high_open=True), "the share of a window its neighbour covers"] = 1 / 3
    ema_decay: Rate = 0.0
    ema_warmup: bool | None = None
    plot_images: NonNegativeInt = 4
    test_checkpoint: Literal["last", "best"] = "last"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_scale > self.max_scale:
            raise ConfigError(
                f"task.min_scale={self.min_scale} is above task.max_scale={self.max_scale}; swap them (equal: no "
                f"random scaling)"
            )

    def load(self, cfg: dict[str, Any], given: Given) -> LoadedData:
        """The segmentation source of the data config (a test's: the checkpoint's, with its normalisation)."""
        saved = given.checkpoint["attnkit"] if given.checkpoint is not None else None
        data_cfg = self.data_config(cfg, given)
        source = build_spec("data", data_cfg)
        if not isinstance(source, SegmentData):
            raise ConfigError(
                f"data={data_cfg['name']} is not a segmentation source (images with label maps), which task=segment "
                f"needs; choose data=shapes, mask_folder or hf_masks"
            )
        if saved is not None:  # the checkpoint's normalisation, not the new data's
            source.mean, source.std = list(saved["data_info"]["mean"]), list(saved["data_info"]["std"])
        splits = source.load()
        if saved is not None:
            check_compatible(saved["data_info"], data_info(splits))
        elif splits.num_classes < 2:
            raise ConfigError(
                f"data={data_cfg['name']} has {splits.num_classes} class; segmentation needs at least two: give "
                f"data.classes"
            )
        return LoadedData(source, splits, data_cfg)

    def crop(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """The training crop (the model's input size): `crop_size`, or the data's image size; refused if larger."""
        if self.crop_size is None:
            return (int(image_size[0]), int(image_size[1]))
        size = [self.crop_size] * 2 if isinstance(self.crop_size, int) else list(self.crop_size)
        if len(size) != 2 or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in size):
            raise ConfigError(f"task.crop_size={self.crop_size!r} must be a positive int or [height, width]")
        if size[0] > image_size[0] or size[1] > image_size[1]:
            raise ConfigError(
                f"task.crop_size={size[0]}x{size[1]} is larger than the images ({image_size[0]}x{image_size[1]}, "
                f"data.image_size); choose a crop at most that size, or null for whole images"
            )
        return (size[0], size[1])

    def weights(self, class_pixels: list[int]) -> list[float] | None:
        """The loss's class weights: None (`none`), median-frequency weights, or the given list (one per class)."""
        if self.class_weights == "none":
            return None
        if self.class_weights == "median_frequency":
            return median_frequency_weights(class_pixels)
        weights = [float(w) for w in self.class_weights]
        if len(weights) != len(class_pixels) or any(w < 0 for w in weights):
            raise ConfigError(
                f"task.class_weights has {len(weights)} numbers for {len(class_pixels)} classes; give one "
                f"non-negative weight per class, or none / median_frequency"
            )
        return weights

    def setup(self, cfg: dict[str, Any], loaded: LoadedData, given: Given) -> Setup:
        splits = loaded.data
        crop = self.crop(splits.image_size)
        model = cfg["model"]
        stride = model.get("patch_stride") or model.get("patch_size")
        if given.checkpoint is None and isinstance(stride, int) and (crop[0] % stride or crop[1] % stride):
            raise ConfigError(
                f"the model's input ({crop[0]}x{crop[1]}: task.crop_size, else data.image_size) is not a whole number "
                f"of patches of stride {stride} (model.patch_stride, else model.patch_size); choose sizes that "
                f"{stride} divides"
            )
        context = {
            "image_size": crop,
            "in_channels": splits.in_channels,
            "num_classes": splits.num_classes,
            "class_names": list(splits.class_names),
            "class_weights": self.weights(list(splits.class_pixels)),
        }
        net, context = self.build_model(cfg, context, given.checkpoint)
        return Setup(loaded, context, net, extras={"data": loaded.cfg, "data_info": data_info(splits)})

    def example(self, setup: Setup) -> Any:
        crop = setup.context["image_size"]
        image = setup.data.train[0][0][None, :, : crop[0], : crop[1]].clone()  # [1, C, h, w]: one training input
        return lambda: setup.net(image)

    def lightning(self, cfg: dict[str, Any], setup: Setup, checkpoint: dict[str, Any] | None) -> tuple[Any, Any]:
        from attnkit.tasks.segment.module import SegmentModule
        from attnkit.train.datamodule import SplitsDataModule

        batch_size = int(setup.source.batch_size)

        def loader(split: str, train: bool) -> DataLoader:
            dataset = getattr(setup.data, split)
            return DataLoader(
                dataset, batch_size=batch_size, shuffle=train, drop_last=train and len(dataset) > batch_size
            )

        return self.make_module(SegmentModule, cfg, setup, checkpoint), SplitsDataModule(loader)

    def metrics(self, setup: Setup, module: Any) -> dict[str, Any]:
        """Per-class IoU and accuracy of the test split, and the majority class's scores on it."""
        tested = getattr(module, "tested", None) or {}
        if "confusion" not in tested:
            return {}
        baseline = majority_baseline(list(setup.data.class_pixels), tested["confusion"], setup.data.class_names)
        return {
            "primary_metric": "test/miou",
            "per_class_iou": tested["per_class_iou"],
            "per_class_acc": tested["per_class_acc"],
            "majority_class": {key: baseline[key] for key in SCORES},
        }

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        named = {f"test/{k}": f"test {k.replace('_', ' ')}" for k in SCORES}
        rows = {named.get(k, k): v for k, v in super().summary(metrics).items()}
        for key in SCORES:
            if key in metrics.get("majority_class", {}):
                rows[f"majority class: {key.replace('_', ' ')}"] = metrics["majority_class"][key]
        for name, iou in (metrics.get("per_class_iou") or {}).items():
            rows[f"IoU {name}"] = "absent" if iou is None else round(iou, 4)
        return rows

    def artifacts(self, cfg: dict[str, Any], run_dir: Path, module: Any, setup: Setup, metrics: dict) -> dict:
        """segmentation.png: a few test images (spread over the split), their ground truth and the prediction."""
        n = min(self.plot_images, len(setup.data.test))
        if n <= 0:
            return {}
        spread = [i * (len(setup.data.test) - 1) // max(1, n - 1) for i in range(n)]  # across the split, not one scene
        images, masks = zip(*(setup.data.test[i] for i in spread), strict=True)
        batch = torch.stack(images)
        model = module.eval_model.cpu().eval()
        with torch.no_grad():
            predicted = sliding_window(model, batch, tuple(setup.context["image_size"]), self.window_overlap).argmax(1)
        mean = torch.tensor(setup.data.mean).view(1, -1, 1, 1)
        std = torch.tensor(setup.data.std).view(1, -1, 1, 1)
        plot_segmentation(
            (batch * std + mean).clamp(0, 1),
            torch.stack(masks),
            predicted,
            setup.data.palette,
            setup.data.class_names,
            run_dir / "segmentation.png",
            title="test images: image, ground truth, prediction",
        )
        return {}

    def predict(self, cfg: dict[str, Any], *, run_dir: Path | None, overrides: list[str] | None = None) -> dict:
        """Label one image file: the label map at the image's own size (`label_map`, int64 [H, W]); in a run
        directory also prediction_mask.png (class ids) and prediction_overlay.png (the classes' colours on it)."""
        ckpt, payload = self.checkpoint(cfg, overrides)
        image_path = run.user_path(cfg.get("input"), "input", "give input=path/to/image.png")
        info = payload["attnkit"]["data_info"]
        model = model_from_checkpoint(payload).eval()
        crop = tuple(payload["hyper_parameters"]["context"]["image_size"])
        overlap = float(payload["hyper_parameters"]["task"].get("window_overlap", 1 / 3))
        with open_image(image_path, fix="give a PNG, JPEG or other image file") as image:
            original = pil_to_uint8(image, info["in_channels"], (image.height, image.width))
        size = tuple(info["image_size"])
        x = F.interpolate(original[None].float() / 255.0, size=size, mode="bilinear", align_corners=False)
        x = (x - torch.tensor(info["mean"]).view(1, -1, 1, 1)) / torch.tensor(info["std"]).view(1, -1, 1, 1)
        with torch.no_grad():
            scores = sliding_window(model, x, crop, overlap)
            scores = F.interpolate(scores, size=original.shape[-2:], mode="bilinear", align_corners=False)
        label_map = scores.argmax(1)[0]
        names = info["class_names"]
        counts = torch.bincount(label_map.flatten(), minlength=len(names)).tolist()
        shares = {names[i]: round(c / label_map.numel(), 4) for i, c in enumerate(counts) if c}
        result: dict[str, Any] = {
            "input": str(image_path),
            "checkpoint": str(ckpt),
            "size": list(label_map.shape),
            "class_shares": shares,
        }
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            mask_png, overlay_png = run_dir / "prediction_mask.png", run_dir / "prediction_overlay.png"
            save_label_map(label_map, mask_png, num_classes=len(names))
            save_overlay(original.permute(1, 2, 0), label_map, info["palette"], overlay_png)
            result.update(label_map_png=str(mask_png), overlay_png=str(overlay_png))
        print_summary(f"{image_path.name}: share of pixels per class", shares)
        self.write_prediction(run_dir, result)
        return {**result, "label_map": label_map}
