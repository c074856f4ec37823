"""The `vit` task: train, test and predict with a Vision Transformer on a registered image data source.

Data and model are built before Lightning is imported, so that bad data paths and bad model options fail in
seconds, with one line.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import torch

from attnkit.errors import ConfigError, DataError
from attnkit.registry import build_spec, register
from attnkit.train import run


def _data_info(splits: Any) -> dict[str, Any]:
    return {
        "num_classes": splits.num_classes,
        "image_size": list(splits.image_size),
        "in_channels": splits.in_channels,
        "class_names": list(splits.class_names),
        "mean": list(splits.mean),
        "std": list(splits.std),
    }


@register("task", "vit")
class VitTask:
    """ViT image classification: accuracy, learning curves and attention maps."""

    def __init__(
        self,
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        warmup_epochs: float = 5.0,
        min_lr_ratio: float = 0.01,
        label_smoothing: float = 0.1,
        random_shift: float = 1.0,
        random_rotate: float = 0.0,
        random_scale: float = 0.0,
        ema_decay: float = 0.0,
        attention_maps: int = 4,
        test_checkpoint: Literal["last", "best"] = "last",
    ) -> None:
        self.recipe = {
            "lr": lr,
            "weight_decay": weight_decay,
            "warmup_epochs": warmup_epochs,
            "min_lr_ratio": min_lr_ratio,
            "label_smoothing": label_smoothing,
            "random_shift": random_shift,
            "random_rotate": random_rotate,
            "random_scale": random_scale,
            "ema_decay": ema_decay,
        }
        self.attention_maps = attention_maps
        self.test_checkpoint = test_checkpoint

    # -- modes -------------------------------------------------------------------------------------------------

    def train(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        """Fit on the train split (validating each epoch), test, write the reports.

        The test split scores the final weights (`test_checkpoint=last`, no selection on validation) or the
        checkpoint with the best validation accuracy (`test_checkpoint=best`).
        """
        run.seed(cfg["seed"])
        source = build_spec("data", cfg["data"])
        splits = source.load()
        info = _data_info(splits)
        net = build_spec(
            "model",
            cfg["model"],
            image_size=splits.image_size,
            in_channels=splits.in_channels,
            num_classes=splits.num_classes,
        )
        run.save_config(cfg, run_dir)

        from attnkit.tasks.vit.module import ImageClassifier, ImageDataModule
        from attnkit.train.trainer import make_trainer

        datamodule = ImageDataModule(source)
        module = ImageClassifier(model=cfg["model"], data_info=info, data_spec=cfg["data"], net=net, **self.recipe)
        trainer = make_trainer(cfg["trainer"], run_dir, monitor="val/acc")
        start = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        fit_s = time.perf_counter() - start
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        tested = best if self.test_checkpoint == "best" and best else None  # None: the weights as trained
        results = trainer.test(module, datamodule=datamodule, ckpt_path=tested, verbose=False)
        if not trainer.is_global_zero:
            return {}
        epochs = trainer.current_epoch if not trainer.fast_dev_run else 1
        metrics = {
            **{k: float(v) for k, v in (results[0] if results else {}).items()},
            "params": sum(p.numel() for p in module.model.parameters()),
            "train_time_s": round(fit_s, 2),
            "epochs": epochs,
            "train_images_per_s": round(len(splits.train) * max(1, epochs) / fit_s, 1) if fit_s > 0 else 0.0,
            "best_val_acc": float(trainer.checkpoint_callback.best_model_score or float("nan"))
            if trainer.checkpoint_callback
            else float("nan"),
            "best_checkpoint": str(best),
            "tested": "best" if tested else "last",
        }
        self._report(cfg, run_dir, module, splits, metrics, title="ViT — trained")
        return metrics

    def test(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        """Evaluate a checkpoint on the test split of its own data (or of `data=...` given on the command line)."""
        ckpt = run.user_path(
            cfg.get("ckpt_path"), "ckpt_path", "give ckpt_path=outputs/<date>/<time>/checkpoints/best.ckpt"
        )
        module = _load_module(ckpt)
        data_cfg = cfg["data"] if run.overridden(overrides, "data") else module.hparams.get("data_spec", cfg["data"])
        source = build_spec("data", data_cfg)
        splits = source.load()
        _check_compatible(module.hparams["data_info"], _data_info(splits), ckpt)

        from attnkit.tasks.vit.module import ImageDataModule
        from attnkit.train.trainer import make_trainer

        trainer = make_trainer({**cfg["trainer"], "max_epochs": 1}, run_dir, monitor="test/acc", checkpoints=False)
        results = trainer.test(module, datamodule=ImageDataModule(source), verbose=False)
        if not trainer.is_global_zero:
            return {}
        metrics = {
            **{k: float(v) for k, v in results[0].items()},
            "checkpoint": str(ckpt),
            "params": sum(p.numel() for p in module.model.parameters()),
        }
        run.save_config(cfg, run_dir)
        self._report(cfg, run_dir, module, splits, metrics, title="ViT — checkpoint evaluated")
        return metrics

    def predict(self, cfg: dict[str, Any], *, run_dir: Path, overrides: list[str] | None = None) -> dict[str, Any]:
        """Classify one image file: print the top classes with their probabilities."""
        ckpt = run.user_path(
            cfg.get("ckpt_path"), "ckpt_path", "give ckpt_path=outputs/<date>/<time>/checkpoints/best.ckpt"
        )
        image_path = run.user_path(cfg.get("input"), "input", "give input=path/to/image.png")
        module = _load_module(ckpt)
        info = module.hparams["data_info"]
        from attnkit.tasks.vit.data.base import read_image

        image = read_image(
            image_path,
            in_channels=info["in_channels"],
            image_size=info["image_size"],
            mean=info["mean"],
            std=info["std"],
        )
        with torch.no_grad():
            probs = torch.softmax(module.eval_model(image[None]), dim=-1)[0]
        top = torch.topk(probs, k=min(3, probs.numel()))
        names = info["class_names"]
        ranked = [
            {"class": names[i], "index": int(i), "probability": round(float(p), 4)}
            for p, i in zip(top.values, top.indices, strict=False)
        ]
        from attnkit.train.reports import print_summary, write_json

        print_summary(f"{image_path.name}: {ranked[0]['class']}", {r["class"]: r["probability"] for r in ranked})
        result = {
            "input": str(image_path),
            "checkpoint": str(ckpt),
            "prediction": ranked[0]["class"],
            "top": ranked,
        }
        write_json(run_dir / "prediction.json", result)
        return result

    # -- reports -----------------------------------------------------------------------------------------------

    def _report(
        self,
        cfg: dict[str, Any],
        run_dir: Path,
        module: Any,
        splits: Any,
        metrics: dict[str, Any],
        title: str,
    ) -> None:
        from attnkit.train.reports import plot_learning_curves, print_summary, read_metrics_csv, write_json

        write_json(run_dir / "metrics.json", metrics)
        plot_learning_curves(
            read_metrics_csv(run_dir / "metrics.csv"),
            run_dir / "learning_curve.png",
            title=f"{cfg['task']['name']} on {cfg['data']['name']}",
        )
        maps_png = self._attention_maps(module, splits, run_dir / "attention_maps.png")
        rows = {
            "test accuracy": metrics.get("test/acc", float("nan")),
            "test loss": metrics.get("test/loss"),
            "parameters": metrics.get("params"),
        }
        if "train_time_s" in metrics:
            rows.update(
                {
                    "training time (s)": metrics["train_time_s"],
                    "epochs": metrics["epochs"],
                    "throughput (train images/s)": metrics["train_images_per_s"],
                    "best val accuracy": metrics["best_val_acc"],
                }
            )
        rows["run directory"] = str(run_dir)
        if maps_png is None:
            rows["attention maps"] = "skipped: this attention variant cannot return weights"
        print_summary(title, rows)

    def _attention_maps(self, module: Any, splits: Any, path: Path) -> Path | None:
        from attnkit.tasks.vit.plots import plot_attention_maps

        model = module.eval_model.cpu().eval()
        attn = model.blocks[-1].attn.attention if hasattr(model, "blocks") else None
        if self.attention_maps <= 0 or attn is None or not getattr(attn, "supports_weights", False):
            return None
        n = min(self.attention_maps, len(splits.test))
        images, labels = zip(*(splits.test[i] for i in range(n)), strict=False)
        batch = torch.stack(images)
        with torch.no_grad():
            maps = model.attention_maps(batch)
            predicted = model(batch).argmax(-1).tolist()
        mean = torch.tensor(splits.mean).view(1, -1, 1, 1)
        std = torch.tensor(splits.std).view(1, -1, 1, 1)
        names = splits.class_names
        captions = [f"true {names[int(t)]} / pred {names[p]}" for t, p in zip(labels, predicted, strict=False)]
        plot_attention_maps(
            batch * std + mean, maps, captions, path, title="class-token attention per head (last block)"
        )
        return path


def _load_module(ckpt: Path) -> Any:
    from attnkit.tasks.vit.module import ImageClassifier

    try:
        payload = torch.load(ckpt, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise DataError(
            f"cannot read checkpoint {str(ckpt)!r} ({type(exc).__name__}); give a .ckpt file written by a training run"
        ) from exc
    hparams = payload.get("hyper_parameters", {}) if isinstance(payload, dict) else {}
    if "data_info" not in hparams or "state_dict" not in payload:
        raise ConfigError(
            f"checkpoint {str(ckpt)!r} was not written by task=vit; give a ViT checkpoint or the "
            f"task that wrote it (task=...)"
        )
    module = ImageClassifier(**hparams)
    module.load_state_dict(payload["state_dict"])
    return module.eval()


def _check_compatible(trained: dict[str, Any], data: dict[str, Any], ckpt: Path) -> None:
    for key in ("num_classes", "in_channels", "image_size"):
        if list(map(int, _as_list(trained[key]))) != list(map(int, _as_list(data[key]))):
            raise ConfigError(
                f"checkpoint {ckpt.name} expects {key}={trained[key]} but the data has {data[key]}; "
                f"evaluate it on the data it was trained on (data=...)"
            )


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]
