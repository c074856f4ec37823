"""From labelled texts to batches: label indices, token ids cut to a length limit, padded batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

from attnkit.data.warning import warn
from attnkit.errors import DataError
from attnkit.text.pairs import OnLong, Pair
from attnkit.text.tokenizer import TextTokenizer


def label_names(labels: Sequence[str]) -> list[str]:
    """The classes, sorted: numerically when every label is an integer ("2" before "10"), else as text."""
    names = sorted(set(labels))
    if all(_is_int(n) for n in names):
        names.sort(key=int)
    return names


def _is_int(text: str) -> bool:
    return text.lstrip("+-").isdigit()


@dataclass
class LabelledSequences(Dataset):
    """Token ids and label indices of one split; item i is `(ids, label)`."""

    ids: list[list[int]]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        return self.ids[i], self.labels[i]

    def lengths(self) -> list[int]:
        return [len(x) for x in self.ids]


def encode_labelled(
    splits: dict[str, list[Pair]],
    tokenizer: TextTokenizer,
    classes: Sequence[str],
    *,
    max_len: int | None,
    on_long: OnLong = "truncate",
    limit_key: str = "model.max_len",
) -> dict[str, LabelledSequences]:
    """Each split's texts as token ids (cut to `max_len`, counted in one warning, or refused when `on_long=error`)
    and its labels as indices into `classes`; a label outside `classes` is refused with one line."""
    index = {name: i for i, name in enumerate(classes)}
    out: dict[str, LabelledSequences] = {}
    cut: dict[str, int] = {}
    for split, pairs in splits.items():
        unknown = sorted({label for _, label in pairs if label not in index})
        if unknown:
            raise DataError(
                f"the {split} split has labels the training split lacks: {', '.join(unknown[:5])}; every class "
                f"needs training examples (labels seen in train: {', '.join(classes[:10])})"
            )
        ids = tokenizer.encode([text for text, _ in pairs])
        if max_len is not None:
            long = [i for i, x in enumerate(ids) if len(x) > max_len]
            if long and on_long == "error":
                raise DataError(
                    f"{split} text {long[0]} has {len(ids[long[0]])} tokens, more than {limit_key}={max_len}; "
                    f"raise {limit_key}, or set data.on_long=truncate"
                )
            if long:
                cut[split] = len(long)
                ids = [x[:max_len] for x in ids]
        empty = [i for i, x in enumerate(ids) if not x]
        if empty:
            raise DataError(f"{split} text {empty[0]} has no tokens; remove empty texts from the data")
        out[split] = LabelledSequences(ids, [index[label] for _, label in pairs])
    if cut:
        counts = ", ".join(f"{n} {split}" for split, n in cut.items())
        warn(f"truncated texts longer than {limit_key}={max_len} tokens ({counts}); raise it or set data.on_long=error")
    return out


def collate(items: list[tuple[list[int], int]], pad_id: int) -> tuple[Tensor, Tensor, Tensor]:
    """(tokens `[B, N]` right-padded, padding mask `[B, N]` True = padding, labels `[B]`)."""
    width = max(len(ids) for ids, _ in items)
    tokens = torch.full((len(items), width), pad_id, dtype=torch.long)
    for row, (ids, _) in enumerate(items):
        tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    lengths = torch.tensor([len(ids) for ids, _ in items])
    mask = torch.arange(width)[None, :] >= lengths[:, None]
    return tokens, mask, torch.tensor([label for _, label in items], dtype=torch.long)
