"""attnkit from Python: compose a config as the command line would, train from it, load a trained run and predict.

    cfg = attnkit.compose("task=vit", "heads=4", "trainer.max_epochs=3")     # a plain dict
    metrics = attnkit.fit(cfg, "runs/vit")                                     # the run directory, as the CLI's
    run = attnkit.load("runs/vit")                                             # or a .ckpt inside it
    run.model                                                                  # plain PyTorch, eval mode
    run.predict("digit.png")                                                   # what mode=predict prints, as data
    attnkit.load("runs/lm").generate("To be", max_new_tokens=100)              # a language model's continuation

Nothing here keeps Hydra's global state: a composed config is a plain dict, and loading needs no Hydra at all.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from attnkit.errors import ConfigError, DataError
from attnkit.plugins import load_plugins
from attnkit.registry import build_spec, kinds
from attnkit.train.checkpoints import model_from_checkpoint, read


def compose(*overrides: str, plugins: list[str] | None = None) -> dict[str, Any]:
    """The resolved run config of `python -m attnkit <overrides>`, as a plain dict (plugins loaded first)."""
    # lazy: Hydra and OmegaConf take ~0.2 s to import, and `import attnkit` (models in plain PyTorch) never needs them
    from omegaconf import OmegaConf

    from attnkit import config

    load_plugins(*(plugins or []))
    kinds()
    config.store_components()
    cfg = OmegaConf.to_container(config.compose(list(overrides)), resolve=True)
    if plugins:
        cfg["plugins"] = list(plugins)
    return cfg


def fit(cfg: dict[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """Train (and test) as `python -m attnkit` does with `cfg`, writing the run directory; returns its metrics."""
    return build_spec("task", cfg["task"]).train(cfg, run_dir=Path(run_dir), overrides=[])


@dataclass
class Loaded:
    """A trained run: its `model` (plain PyTorch, eval mode, the weights it evaluates with), its `config`, the
    `checkpoint` file, `predict`, and for a language model `generate`."""

    model: nn.Module
    config: dict[str, Any]
    checkpoint: Path
    task: Any

    def predict(self, input: Any = None, quiet: bool = True) -> dict[str, Any]:
        """What `mode=predict ckpt_path=<checkpoint> input=<input>` gives (the top classes of an image, the
        translation of a text, ...), as a dict; nothing is written. `quiet=False` also prints it."""
        cfg = {**self.config, "mode": "predict", "ckpt_path": str(self.checkpoint), "input": input}
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed) if quiet else contextlib.nullcontext():
            return self.task.predict(cfg, run_dir=None, overrides=[])

    def generate(self, prompt: str, quiet: bool = True, **settings: Any) -> str:
        """What `mode=generate ckpt_path=<checkpoint> input=<prompt>` continues the prompt with (task=lm), with the
        run's generation settings and `settings` on top (`max_new_tokens=100`, `temperature=0`, `top_k`, `top_p`,
        `repetition_penalty`, `seed`, `truncate`); nothing is written. `quiet=False` prints it as it comes."""
        with_settings = getattr(self.task, "with_settings", None)
        if with_settings is None:
            raise ConfigError(f"task={self.task.name} has no generate mode; generation is task=lm's")
        data = self.task.loaded_data(self.config)
        return with_settings(**settings).continue_text(self.model, data, prompt, echo=not quiet)


def load(path: str | Path) -> Loaded:
    """A trained run from its folder (its best checkpoint, else its last) or from a checkpoint file."""
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        found = [path / "checkpoints" / name for name in ("best.ckpt", "last.ckpt")]
        ckpt = next((p for p in found if p.is_file()), None)
        if ckpt is None:
            raise DataError(f"{str(path)!r} holds no checkpoints/best.ckpt or last.ckpt; give a run folder or a .ckpt")
    elif path.is_file():
        ckpt = path
    else:
        raise DataError(f"{str(path)!r} does not exist; give a run folder or a checkpoint file")
    payload = read(ckpt, "the run's")
    marker = payload.get("attnkit") if isinstance(payload, dict) else None
    if not isinstance(marker, dict) or "config" not in marker:
        raise DataError(f"{str(ckpt)!r} was not written by an attnkit training run")
    kinds()  # built-in tasks and installed plugins
    cfg = marker["config"]
    load_plugins(*_plugin_files(ckpt.parent.parent, cfg))
    task = build_spec("task", payload["hyper_parameters"]["task"])
    return Loaded(model_from_checkpoint(payload, ckpt), cfg, ckpt, task)


def _plugin_files(run_dir: Path, cfg: dict[str, Any]) -> list[str]:
    """The plugins the run loaded: their absolute paths from its provenance.json, else its config's `plugins`."""
    provenance = run_dir / "provenance.json"
    if provenance.is_file():
        files = [p["file"] for p in json.loads(provenance.read_text()).get("plugins", [])]
        if files:
            return files
    return [str(p) for p in cfg.get("plugins") or []]
