"""Labelled texts as text pairs (text, label): the class balance and the majority-class baseline."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from attnkit.text.pairs import Pair, TextPairs


@dataclass(frozen=True)
class Baseline:
    """Always answering `label` (the training split's most frequent) scores `share` on the split measured."""

    label: str
    share: float


def label_shares(pairs: list[Pair]) -> dict[str, float]:
    """label -> its share of the pairs, most frequent first (ties by label)."""
    counts = Counter(label for _, label in pairs)
    total = sum(counts.values()) or 1
    return {label: n / total for label, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))}


def majority_baseline(pairs: TextPairs, split: str = "test") -> Baseline:
    """The majority-class baseline: the most frequent training label and its share of `split`."""
    label = next(iter(label_shares(pairs.train)))
    measured = pairs.split(split)
    return Baseline(label, sum(1 for _, y in measured if y == label) / max(len(measured), 1))
