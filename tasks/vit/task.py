"""The `vit` task: train, test and predict with a Vision Transformer on a registered image data source."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from attnkit.errors import ConfigError
from attnkit.registry import build_spec, register
from attnkit.tasks.vit.data.base import ImageData
from attnkit.tasks.vit.recipe import Recipe, choose, describe
from attnkit.train import run
from attnkit.train.task import Setup, Task


def data_info(splits: Any) -> dict[str, Any]:
    """What a checkpoint must know of its data to classify a new image: shape, classes, normalisation."""
    return {
        "num_classes": splits.num_classes,
        "image_size": list(splits.image_size),
        "in_channels": splits.in_channels,
        "class_names": list(splits.class_names),
        "mean": list(splits.mean),
        "std": list(splits.std),
    }


@register("task", "vit")
@dataclass
class VitTask(Task):
    """ViT image classification: accuracy, learning curves and attention maps.

    AdamW (`lr`, `weight_decay`) with linear warm-up over `warmup_epochs` then cosine decay to `min_lr_ratio`; label
    smoothing; random affine augmentation (`random_shift` pixels, `random_rotate` degrees, `random_scale` zoom
    fraction); evaluation with a moving average of the weights (`ema_decay`, 0 = off; `ema_warmup`: null = only in
    runs too short to forget their initial weights); `test_checkpoint`: the final weights (`last`) or the best
    validation accuracy (`best`); `attention_maps`: images in the PNG. `warmup_epochs`, `random_rotate` and
    `random_scale` null (the default): chosen from the data when training starts, with the patches and epochs (see
    recipe.py)."""

    name: ClassVar[str] = "vit"
    title: ClassVar[str] = "ViT"

    lr: float = 3e-3
    weight_decay: float = 0.1
    warmup_epochs: float | None = None
    min_lr_ratio: float = 0.01
    label_smoothing: float = 0.1
    random_shift: float = 1.0
    random_rotate: float | None = None
    random_scale: float | None = None
    ema_decay: float = 0.998
    ema_warmup: bool | None = None
    attention_maps: int = 4
    test_checkpoint: Literal["last", "best"] = "last"

    def setup(self, cfg: dict[str, Any], overrides: list[str] | None, checkpoint: dict[str, Any] | None) -> Setup:
        saved = checkpoint["attnkit"] if checkpoint is not None else None
        data_cfg = saved["data"] if saved is not None and not run.overridden(overrides, "data") else cfg["data"]
        source = build_spec("data", data_cfg)
        if not isinstance(source, ImageData):
            raise ConfigError(
                f"data={data_cfg['name']} is not an image source, which task=vit needs; choose data=digits, "
                f"fashion_mnist, image_folder or hf"
            )
        if saved is not None:  # the checkpoint's normalisation, not the new data's
            source.mean, source.std = list(saved["data_info"]["mean"]), list(saved["data_info"]["std"])
        splits = source.load()
        info = data_info(splits)
        if saved is not None:
            check_compatible(saved["data_info"], info)
        elif splits.num_classes < 2:
            raise ConfigError(
                f"data={data_cfg['name']} has {splits.num_classes} class ({', '.join(splits.class_names)}); a "
                f"classifier needs at least two: check the folder layout (one subfolder per class) or data.label_column"
            )
        context = {
            "image_size": splits.image_size,
            "in_channels": splits.in_channels,
            "num_classes": splits.num_classes,
        }
        resolved = None
        if checkpoint is None:  # training: what the config leaves to the data (null), chosen now and recorded
            chosen = self.size_recipe(cfg, splits, int(source.batch_size))
            print(describe(chosen), flush=True)
            model = {
                "patch_size": chosen.patch_size,
                "patch_stride": chosen.patch_stride,
                "drop_path": chosen.drop_path,
            }
            task = {key: getattr(chosen, key) for key in ("warmup_epochs", "random_rotate", "random_scale")}
            resolved = {
                **cfg,
                "model": {**cfg["model"], **model},
                "trainer": {**cfg["trainer"], "max_epochs": chosen.epochs},
                "task": {**cfg.get("task", self.recipe()), **task},
            }
        net, context = self.build_model(resolved or cfg, context, checkpoint)
        extras = {"data": data_cfg, "data_info": info}
        return Setup(source, splits, data_cfg, context, net, extras=extras, config=resolved)

    def size_recipe(self, cfg: dict[str, Any], splits: Any, batch_size: int) -> Recipe:
        """Patches, epochs, warm-up and regularisation for this data (recipe.py): the config's values where it gives
        them, those of the run being resumed where it recorded them, else the rule's."""
        model, trainer = cfg["model"], cfg["trainer"]
        recorded = None
        if cfg.get("resume"):
            from attnkit.train.checkpoints import load_checkpoint

            payload = load_checkpoint(cfg["resume"], self.name)
            hparams, config = payload["hyper_parameters"], payload["attnkit"].get("config", {})
            recorded = {
                **{key: hparams["model"].get(key) for key in ("patch_size", "patch_stride", "drop_path")},
                **{key: hparams["task"].get(key) for key in ("warmup_epochs", "random_rotate", "random_scale")},
                "max_epochs": config.get("trainer", {}).get("max_epochs"),
            }
        max_steps = trainer.get("max_steps")
        return choose(
            splits.image_size,
            len(splits.train),
            batch_size,
            patch_size=model.get("patch_size"),
            patch_stride=model.get("patch_stride"),
            max_epochs=trainer.get("max_epochs"),
            max_steps=max_steps if isinstance(max_steps, int) and max_steps > 0 else None,
            warmup_epochs=self.warmup_epochs,
            random_rotate=self.random_rotate,
            random_scale=self.random_scale,
            drop_path=model.get("drop_path"),
            recorded=recorded,
        )

    def example(self, setup: Setup) -> Any:
        image = setup.data.train[0][0][None].clone()  # [1, C, H, W], not a view of the whole split
        return lambda: setup.net(image)

    def lightning(self, cfg: dict[str, Any], setup: Setup, checkpoint: dict[str, Any] | None) -> tuple[Any, Any]:
        from torch.utils.data import DataLoader

        from attnkit.tasks.vit.module import ImageClassifier
        from attnkit.train.datamodule import SplitsDataModule

        batch_size = int(setup.source.batch_size)

        def loader(split: str, train: bool) -> DataLoader:
            dataset = getattr(setup.data, split)
            return DataLoader(
                dataset,
                batch_size=batch_size if train else 2 * batch_size,
                shuffle=train,
                drop_last=train and len(dataset) > batch_size,
                num_workers=0,
            )

        task = self
        if setup.config is not None:  # what setup chose for this data (Task.train passes it already)
            cfg = {**cfg, **{key: setup.config[key] for key in ("model", "trainer", "task")}}
            chosen = {key: setup.config["task"][key] for key in ("warmup_epochs", "random_rotate", "random_scale")}
            task = dataclasses.replace(self, **chosen)
        return task.make_module(ImageClassifier, cfg, setup, checkpoint), SplitsDataModule(loader)

    def predict(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        """Classify one image file: print the top classes with their probabilities."""
        from attnkit.tasks.vit.data.images import read_image
        from attnkit.train.checkpoints import model_from_checkpoint
        from attnkit.train.reports import print_summary

        ckpt, payload = self.checkpoint(cfg)
        image_path = run.user_path(cfg.get("input"), "input", "give input=path/to/image.png")
        info = payload["attnkit"]["data_info"]
        model = model_from_checkpoint(payload)
        image = read_image(
            image_path,
            in_channels=info["in_channels"],
            image_size=info["image_size"],
            mean=info["mean"],
            std=info["std"],
        )
        with torch.no_grad():
            probs = torch.softmax(model(image[None]), dim=-1)[0]
        top = torch.topk(probs, k=min(3, probs.numel()))
        names = info["class_names"]
        ranked = [
            {"class": names[i], "index": int(i), "probability": round(float(p), 4)}
            for p, i in zip(top.values, top.indices, strict=True)
        ]
        print_summary(f"{image_path.name}: {ranked[0]['class']}", {r["class"]: r["probability"] for r in ranked})
        result = {"input": str(image_path), "checkpoint": str(ckpt), "prediction": ranked[0]["class"], "top": ranked}
        self.write_prediction(run_dir, result)
        return result

    def artifacts(self, cfg: dict[str, Any], run_dir: Path, module: Any, setup: Setup, metrics: dict) -> dict:
        """attention_maps.png: the class token's attention to each patch for a few test images."""
        if self._attention_maps(module, setup.data, run_dir / "attention_maps.png") is None:
            return {"attention maps": "skipped: this attention variant cannot return weights"}
        return {}

    def _attention_maps(self, module: Any, splits: Any, path: Path) -> Path | None:
        from attnkit.tasks.vit.plots import plot_attention_maps

        model = module.eval_model.cpu().eval()
        attn = model.blocks[-1].attn.attention if hasattr(model, "blocks") else None
        if self.attention_maps <= 0 or attn is None or not getattr(attn, "supports_weights", False):
            return None
        n = min(self.attention_maps, len(splits.test))
        images, labels = zip(*(splits.test[i] for i in range(n)), strict=True)
        batch = torch.stack(images)
        with torch.no_grad():
            maps = model.attention_maps(batch)
            predicted = model(batch).argmax(-1).tolist()
        mean = torch.tensor(splits.mean).view(1, -1, 1, 1)
        std = torch.tensor(splits.std).view(1, -1, 1, 1)
        names = splits.class_names
        captions = [f"true {names[int(t)]} / pred {names[p]}" for t, p in zip(labels, predicted, strict=True)]
        plot_attention_maps(
            batch * std + mean, maps, captions, path, title="class-token attention per head (last block)"
        )
        return path


def check_compatible(trained: dict[str, Any], data: dict[str, Any]) -> None:
    """Refuse data whose shape or number of classes differs from what the checkpoint was trained on."""
    for key in ("num_classes", "in_channels", "image_size"):
        if _ints(trained[key]) != _ints(data[key]):
            raise ConfigError(
                f"the checkpoint expects {key}={trained[key]} but the data has {data[key]}; "
                f"evaluate it on the data it was trained on (data=...)"
            )
    if list(trained["class_names"]) != list(data["class_names"]):
        differ = [f"{a}≠{b}" for a, b in zip(trained["class_names"], data["class_names"], strict=True) if a != b]
        raise ConfigError(
            f"the data's classes are not the checkpoint's ({', '.join(differ[:4])}): its label indices would mean "
            f"other classes; evaluate on data with the classes it was trained on"
        )


def _ints(value: Any) -> list[int]:
    return [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
