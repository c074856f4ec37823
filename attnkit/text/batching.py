"""Length-bucketed batch sampling for token sequences of any text task: batches of similar length, little padding."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence

import torch
from torch.utils.data import Sampler


class LengthBatchSampler(Sampler[list[int]]):
    """Batches of pairs of similar length: at most `batch_size` pairs and, if set, `max_tokens` padded tokens.

    Training (`shuffle`) sorts pools of about 50 batches by length and shuffles the batches, reseeded every
    epoch (`set_epoch`, which Lightning calls); evaluation sorts everything by length. Under torch.distributed
    each process takes every world-size-th pair of that order; in training all take the same number of batches.
    `on_epoch(epoch)`, when given, is called by `set_epoch` too (a dataset that noises its items per epoch).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        *,
        batch_size: int,
        max_tokens: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
        pool: int = 50,
        on_epoch: Callable[[int], None] | None = None,
    ) -> None:
        self.lengths, self.batch_size, self.max_tokens = list(lengths), batch_size, max_tokens
        self.shuffle, self.seed, self.pool, self.epoch = shuffle, seed, pool, 0
        self.on_epoch = on_epoch
        self._cache: tuple[int, list[list[int]]] | None = None

    @property
    def sampler(self) -> LengthBatchSampler:
        """Lightning calls `set_epoch` on `dataloader.sampler` and `dataloader.batch_sampler.sampler`, never on the
        batch sampler itself: this makes it the batch sampler's own (without it every epoch had the same order)."""
        return self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.on_epoch is not None:
            self.on_epoch(epoch)

    def _batches(self) -> list[list[int]]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        order = list(range(len(self.lengths)))
        rng = random.Random(self.seed + self.epoch)
        if self.shuffle:
            rng.shuffle(order)
            size = self.pool * self.batch_size
            order = [i for k in range(0, len(order), size) for i in sorted(order[k : k + size], key=self._length)]
        else:
            order.sort(key=self._length)
        world, rank = _world()
        # every process packs every process's share (the same computation everywhere), so that training can give
        # each the same number of steps; evaluation keeps every pair
        shares = [self._pack(order[r::world]) for r in range(world)]
        if self.shuffle:
            for share in shares:
                rng.shuffle(share)
            steps = min(len(share) for share in shares)
            shares = [share[:steps] for share in shares]
        self._cache = (self.epoch, shares[rank])
        return shares[rank]

    def _pack(self, order: list[int]) -> list[list[int]]:
        """Consecutive runs of `order` as batches within `batch_size` and `max_tokens`."""
        batches: list[list[int]] = []
        batch: list[int] = []
        longest = 0
        for i in order:
            n = self.lengths[i]
            too_many = len(batch) >= self.batch_size
            too_long = self.max_tokens is not None and max(longest, n) * (len(batch) + 1) > self.max_tokens
            if batch and (too_many or too_long):
                batches.append(batch)
                batch, longest = [], 0
            batch.append(i)
            longest = max(longest, n)
        if batch:
            batches.append(batch)
        return batches

    def _length(self, i: int) -> int:
        return self.lengths[i]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0
