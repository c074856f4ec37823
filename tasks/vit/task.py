"""The `vit` task: train, test and predict with a Vision Transformer on a registered image data source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import torch
from torch.utils.data import DataLoader, default_collate

from attnkit.errors import ConfigError
from attnkit.ranges import Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat, Range, Rate
from attnkit.registry import build_spec, register
from attnkit.tasks.vit.data.base import ImageData
from attnkit.tasks.vit.data.images import read_image
from attnkit.tasks.vit.plots import plot_attention_maps
from attnkit.tasks.vit.recipe import BUDGET_MINUTES, KEYS, Recipe, choose, describe
from attnkit.tasks.vit.views import mean_log_probs, view_logits
from attnkit.train import run
from attnkit.train.checkpoints import model_from_checkpoint
from attnkit.train.reports import print_summary
from attnkit.train.step_time import seconds_per_step
from attnkit.train.task import Given, LoadedData, Resolved, Setup, Task, failed_training
from attnkit.train.trainer import single_process, trainer_device

CHOICES = {**KEYS, "patch_stride": "model.patch_stride"}  # what the size rule chooses -> where the config has it


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


def model_context(splits: Any) -> dict[str, Any]:
    """What the data fixes of the model: image size, channels, classes."""
    return {"image_size": splits.image_size, "in_channels": splits.in_channels, "num_classes": splits.num_classes}


@register("task", "vit")
@dataclass
class VitTask(Task):
    """ViT image classification: accuracy, learning curves and attention maps.

    AdamW (`lr`, `weight_decay`) with linear warm-up over `warmup_epochs` then cosine decay to `min_lr_ratio`; label
    smoothing; random affine augmentation (`random_shift` pixels, `random_rotate` degrees, `random_scale` zoom
    fraction); test and predict average the probabilities of five views, the image and its copies moved `test_shift`
    pixels down, up, right and left (0: the image alone; validation always sees the image alone); evaluation with a
    moving average of the weights (`ema_decay`, 0 = off; `ema_warmup`: null = only in runs too short to forget their
    initial weights); `test_checkpoint`: the final weights (`last`) or the best
    validation accuracy (`best`); `attention_maps`: images in the PNG. `warmup_epochs`, `random_rotate` and
    `random_scale` null (the default): chosen from the data when training starts, with the patches and epochs (see
    recipe.py). `budget_minutes`: the wall time the whole run (training, validation, test) should fit when
    `trainer.max_epochs` is left to the rule, which times a few training steps on this machine and plans the epochs
    that fit (at least 1, at most 150)."""

    name: ClassVar[str] = "vit"
    title: ClassVar[str] = "ViT"
    evaluation_keys: ClassVar[tuple[str, ...]] = ("task.attention_maps", "task.test_shift")

    lr: PositiveFloat = 3e-3
    weight_decay: NonNegativeFloat = 0.1
    warmup_epochs: NonNegativeFloat | None = None
    min_lr_ratio: Fraction = 0.01
    label_smoothing: Rate = 0.1
    random_shift: Annotated[float, Range(0), "pixels of random shift"] = 1.0
    random_rotate: Annotated[float, Range(0, 180), "degrees of random rotation"] | None = None
    random_scale: Annotated[float, Range(0, 1, high_open=True), "the random zoom, a fraction"] | None = None
    test_shift: Annotated[int, Range(0), "pixels each test view is moved by"] = 1
    ema_decay: Rate = 0.998
    ema_warmup: bool | None = None
    attention_maps: NonNegativeInt = 4
    test_checkpoint: Literal["last", "best"] = "last"
    budget_minutes: Annotated[float, Range(0, low_open=True), "minutes of wall time for the run"] = BUDGET_MINUTES

    def load(self, cfg: dict[str, Any], given: Given) -> LoadedData:
        """The image source of the data config (a test's: the checkpoint's, with its normalisation) and its splits."""
        saved = given.checkpoint["attnkit"] if given.checkpoint is not None else None
        data_cfg = self.data_config(cfg, given)
        source = build_spec("data", data_cfg)
        if not isinstance(source, ImageData):
            raise ConfigError(
                f"data={data_cfg['name']} is not an image source, which task=vit needs; choose data=digits, "
                f"fashion_mnist, image_folder or hf"
            )
        if saved is not None:  # the checkpoint's normalisation, not the new data's
            source.mean, source.std = list(saved["data_info"]["mean"]), list(saved["data_info"]["std"])
        splits = source.load()
        if saved is not None:
            check_compatible(saved["data_info"], data_info(splits))
        elif splits.num_classes < 2:
            raise ConfigError(
                f"data={data_cfg['name']} has {splits.num_classes} class ({', '.join(splits.class_names)}); a "
                f"classifier needs at least two: check the folder layout (one subfolder per class) or data.label_column"
            )
        return LoadedData(source, splits, data_cfg)

    def resolve(self, cfg: dict[str, Any], loaded: LoadedData, given: Given) -> Resolved:
        """Patches, epochs, warm-up and regularisation for this data (recipe.py): the config's values where it gives
        them, those of the run being resumed where it recorded them, else the rule's; epochs left to the rule are
        planned with the measured time of a training step (`time_step`)."""
        recorded = None
        if given.resumed is not None:
            saved = given.resumed["attnkit"].get("config", {})
            recorded = {name: run.value(saved, key) for name, key in CHOICES.items()}
        max_steps = run.value(cfg, "trainer.max_steps")
        max_steps = max_steps if isinstance(max_steps, int) and max_steps > 0 else None
        options = {
            "max_steps": max_steps,
            "recorded": recorded,
            "budget_minutes": self.budget_minutes,
            **{name: run.value(cfg, key) for name, key in CHOICES.items()},
        }
        data = loaded.data
        recipe = choose(data.image_size, len(data.train), int(loaded.source.batch_size), **options)
        # epochs from the time a step takes here, when training (mode=info shows the rest without the seconds; a
        # fast_dev_run runs one step)
        training = cfg.get("mode", "train") == "train" and not run.value(cfg, "trainer.fast_dev_run")
        if recipe.why["max_epochs"] == "rule" and max_steps is None and training:
            if not single_process(cfg["trainer"]):
                raise ConfigError(
                    f"trainer.max_epochs=null plans the epochs by timing training steps, which each process of a run "
                    f"on several devices (trainer.devices={run.value(cfg, 'trainer.devices')}, trainer.num_nodes="
                    f"{run.value(cfg, 'trainer.num_nodes') or 1}) would do on its own and could plan differently; give "
                    f"trainer.max_epochs (or trainer.max_steps)"
                )
            timed = self.time_step(chosen(cfg, recipe), loaded)
            recipe = choose(
                data.image_size, len(data.train), int(loaded.source.batch_size), **options, seconds_per_step=timed
            )
        return Resolved(chosen(cfg, recipe), recipe, [describe(recipe)])

    def time_step(self, cfg: dict[str, Any], loaded: LoadedData) -> float:
        """Seconds per training step of the model `cfg` builds, on batches of the training split at the run's batch
        size, on the device it trains on (attnkit/train/step_time.py); the run's initial weights and random numbers
        are those it would have without this."""
        splits = loaded.data
        with torch.random.fork_rng(devices=[]):  # the model built next, the run's, starts from the same numbers
            net, _ = self.build_model(cfg, model_context(splits), None)
        size, batch = len(splits.train), min(int(loaded.source.batch_size), len(splits.train))

        def batches(i: int) -> Any:
            return default_collate([splits.train[(i * batch + j) % size] for j in range(batch)])

        try:
            return seconds_per_step(net, batches, device=trainer_device(cfg["trainer"]))
        except Exception as exc:  # the first training step, run early: the same one line as when training fails
            raise failed_training(exc, 0) from exc

    def setup(self, cfg: dict[str, Any], loaded: LoadedData, given: Given) -> Setup:
        splits = loaded.data
        net, context = self.build_model(cfg, model_context(splits), given.checkpoint)
        return Setup(loaded, context, net, extras={"data": loaded.cfg, "data_info": data_info(splits)})

    def example(self, setup: Setup) -> Any:
        image = setup.data.train[0][0][None].clone()  # [1, C, H, W], not a view of the whole split
        return lambda: setup.net(image)

    def lightning(self, cfg: dict[str, Any], setup: Setup, checkpoint: dict[str, Any] | None) -> tuple[Any, Any]:
        # Lightning is imported only when a run starts: it takes seconds, which --help and mode=list do not pay
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

        return self.make_module(ImageClassifier, cfg, setup, checkpoint), SplitsDataModule(loader)

    def predict(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        """Classify one image file: print the top classes with their probabilities."""
        ckpt, payload = self.checkpoint(cfg, overrides)
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
        shift = int(self.saved_recipe(payload, overrides).get("test_shift") or 0)  # the views the test used
        with torch.no_grad():
            probs = mean_log_probs(view_logits(model, image[None], shift)).exp()[0]
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
        model = module.eval_model.cpu().eval()
        last = model.blocks[-1].attn if hasattr(model, "blocks") else None
        attn = getattr(last, "attention", last)  # a token mixer other than attention has no kernel
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


def chosen(cfg: dict[str, Any], recipe: Recipe) -> dict[str, Any]:
    """The config with what the recipe chose (or kept) at its keys."""
    values = {key: getattr(recipe, "epochs" if name == "max_epochs" else name) for name, key in CHOICES.items()}
    return run.with_values(cfg, values)


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
