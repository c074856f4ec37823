"""Windows of a token stream for a language model: items (input [context], target [context]), target the input
shifted by one token.

- `CoveringWindows` (evaluation): consecutive windows from the first token; the last one ends at the last token, and
  its positions that the window before it already scored are ignored (target -100), so every token after the first is
  scored exactly once, each with as much context as its window gives.
- `RandomWindows` (training): as many windows as fit in the stream once (an epoch reads the text once), each at a
  random offset, drawn anew by `set_epoch(epoch)` from (seed, epoch) alone: the same seed gives the same epochs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

IGNORE = -100  # target of a position that is not scored (cross-entropy's ignore_index)


class CoveringWindows(Dataset):
    """Fixed windows that score every token of `tokens` [N] but the first exactly once; needs N > context."""

    def __init__(self, tokens: torch.Tensor, context: int) -> None:
        if len(tokens) <= context:
            raise ValueError(f"{len(tokens)} tokens do not fill one window of {context} + 1")
        self.tokens, self.context = tokens, context
        self.scored = len(tokens) - 1  # every token but the first is a target

    def __len__(self) -> int:
        return -(-self.scored // self.context)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        first = index * self.context  # the first target position (minus one) this window scores
        start = min(first, self.scored - self.context)
        window = self.tokens[start : start + self.context + 1].long()
        x, y = window[:-1], window[1:].clone()
        y[: first - start] = IGNORE  # scored by the window before
        return x, y


class RandomWindows(Dataset):
    """(N - 1) // context windows of `tokens` [N] at random offsets, drawn per epoch from (`seed`, epoch)."""

    def __init__(self, tokens: torch.Tensor, context: int, seed: int) -> None:
        if len(tokens) <= context:
            raise ValueError(f"{len(tokens)} tokens do not fill one window of {context} + 1")
        self.tokens, self.context, self.seed = tokens, context, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw the offsets of `epoch` (the same for the same seed and epoch, in any process)."""
        rng = np.random.default_rng([abs(self.seed), int(self.seed < 0), epoch])
        count = (len(self.tokens) - 1) // self.context
        self.starts = torch.from_numpy(rng.integers(0, len(self.tokens) - self.context, size=count))
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = int(self.starts[index])
        window = self.tokens[start : start + self.context + 1].long()
        return window[:-1], window[1:]
