"""A task in one file: name the most frequent symbol of a random sequence, with any attention and positions.

    python -m attnkit plugins=[examples/my_task.py] task=majority model=classifier attention=linear

The recipe is the dataclass's fields (task.lr=..., task.length=...); attnkit's Task base does the training,
testing, checkpoints, run directory and reports; this file only makes the data (`load`), the model (`setup`) and
picks the Lightning module (`lightning`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch.utils.data import DataLoader, TensorDataset

import attnkit
from attnkit.train.task import Given, LoadedData, Setup, Task


@attnkit.register("task", "majority")
@dataclass
class MajorityTask(Task):
    """The most frequent of `symbols` symbols in random sequences of `length` tokens (ties: the smallest)."""

    name: ClassVar[str] = "majority"
    title: ClassVar[str] = "majority symbol"

    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1
    label_smoothing: float = 0.0
    symbols: int = 4
    length: int = 24
    examples: int = 3000
    batch_size: int = 64

    def load(self, cfg: dict[str, Any], given: Given) -> LoadedData:
        generator = torch.Generator().manual_seed(cfg["seed"])
        tokens = torch.randint(1, self.symbols + 1, (self.examples, self.length), generator=generator)  # 0 = padding
        counts = torch.stack([(tokens == s).sum(1) for s in range(1, self.symbols + 1)], dim=1)
        data = TensorDataset(tokens, torch.zeros_like(tokens, dtype=torch.bool), counts.argmax(1))
        n = self.examples // 10
        parts = torch.utils.data.random_split(data, [n, n, len(data) - 2 * n])
        return LoadedData(None, dict(zip(("test", "val", "train"), parts, strict=True)), {"name": "random symbols"})

    def setup(self, cfg: dict[str, Any], loaded: LoadedData, given: Given) -> Setup:
        context = {"vocab_size": self.symbols + 1, "num_classes": self.symbols, "pad_id": 0}
        net, context = self.build_model(cfg, context, given.checkpoint)
        return Setup(loaded, context, net)

    def lightning(self, cfg: dict[str, Any], setup: Setup, checkpoint: dict[str, Any] | None) -> tuple[Any, Any]:
        from attnkit.train.classification import ClassifierModule
        from attnkit.train.datamodule import SplitsDataModule

        def loader(split: str, train: bool) -> DataLoader:
            return DataLoader(setup.data[split], batch_size=self.batch_size, shuffle=train)

        return self.make_module(ClassifierModule, cfg, setup, checkpoint), SplitsDataModule(loader)
