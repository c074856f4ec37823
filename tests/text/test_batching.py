"""Length-bucketed batches (attnkit/text/batching.py): coverage, limits, epochs, processes."""

from __future__ import annotations

import torch

from attnkit.text import LengthBatchSampler


def test_length_batches_cover_every_pair_once_within_limits():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 40, (500,), generator=g).tolist()
    for kwargs in ({"batch_size": 16}, {"batch_size": 64, "max_tokens": 300}):
        for shuffle in (False, True):
            sampler = LengthBatchSampler(lengths, shuffle=shuffle, **kwargs)
            batches = list(sampler)
            assert len(batches) == len(sampler)
            assert sorted(i for b in batches for i in b) == list(range(500))
            assert all(len(b) <= kwargs["batch_size"] for b in batches)
            if "max_tokens" in kwargs:
                assert all(max(lengths[i] for i in b) * len(b) <= 300 for b in batches)
    ordered = [i for b in LengthBatchSampler(lengths, batch_size=16) for i in b]
    assert [lengths[i] for i in ordered] == sorted(lengths)  # evaluation: sorted by length


def test_length_batches_reshuffle_per_epoch_deterministically():
    lengths = list(range(1, 201))
    sampler = LengthBatchSampler(lengths, batch_size=10, shuffle=True, seed=1)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert list(LengthBatchSampler(lengths, batch_size=10, shuffle=True, seed=1)) == first
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in first]
    assert max(spread) < 20  # batches of similar lengths


def test_length_batches_share_pairs_between_processes(monkeypatch):
    import attnkit.text.batching as batches

    lengths = [1 + (i * 7) % 30 for i in range(101)]
    for shuffle in (False, True):
        shares = []
        for rank in range(3):
            monkeypatch.setattr(batches, "_world", lambda rank=rank: (3, rank))
            shares.append(list(LengthBatchSampler(lengths, batch_size=8, max_tokens=100, shuffle=shuffle)))
        seen = [i for share in shares for b in share for i in b]
        assert len(seen) == len(set(seen))
        if shuffle:  # training: the same number of steps in every process
            assert len({len(share) for share in shares}) == 1
        else:  # evaluation: every pair exactly once
            assert sorted(seen) == list(range(101))
    monkeypatch.setattr(batches, "_world", lambda: (2, 1))
    assert list(LengthBatchSampler([3, 4], batch_size=8)) == [[1]]  # fewer batches than processes: still one each
