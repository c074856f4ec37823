"""The data contract of `task=lm`: what a language-model data source's `load()` gives the task.

A source (`data=mqar`, `data=text`, a plugin) returns an object with these members; the task reads nothing else.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch.utils.data


@runtime_checkable
class LMData(Protocol):
    """What a language-model data source's `load()` gives task=lm."""

    vocab_size: int
    unit: str  # "character" | "byte" | "token": what bits-per-unit is counted in

    def dataset(self, role: str, context: int, *, seed: int, epoch_offsets: bool) -> torch.utils.data.Dataset:
        """Windows of one split, items (input [context] int64, target [context] int64).

        `role` is "train", "val" or "test"; target is -100 where a position is not scored (MQAR: everything but the
        answers). `epoch_offsets=True` (training): windows at random offsets drawn anew each epoch (the dataset has
        `set_epoch(epoch)`); False: fixed windows that cover the split exactly once.
        """
        ...

    def decode(self, ids: list[int]) -> str:
        """The text of token ids, for samples and generation."""
        ...

    def encode(self, text: str) -> list[int]:
        """The token ids of a prompt; raises `attnkit.errors.ConfigError` on symbols the vocabulary lacks."""
        ...

    def units_per_token(self, role: str) -> float:
        """Characters (or bytes) per token of a split, for bits per unit (1.0 where unit is "token")."""
        ...
