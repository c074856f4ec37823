"""From text pairs to an encoder-decoder's padded batches: encoding with length limits, and collation.

A source is its tokens then EOS; a target is fed as BOS + tokens (decoder input) and scored as tokens + EOS
(labels). Batches group pairs of similar length (attnkit.text.batching), so that little compute goes to padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

from attnkit.data.warning import warn
from attnkit.errors import ConfigError, DataError
from attnkit.text.pairs import OnLong, Pair
from attnkit.text.tokenizer import Tokenizers


@dataclass
class EncodedPairs(Dataset):
    """Token ids of one split with the texts they came from; item i is `(i, source ids, target ids)`."""

    src: list[list[int]]  # tokens + EOS
    tgt: list[list[int]]  # tokens (no BOS/EOS)
    sources: list[str]
    references: list[str]

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[int, list[int], list[int]]:
        return i, self.src[i], self.tgt[i]

    def lengths(self) -> list[int]:
        """The padded cost of each pair: the longer of source and decoder input."""
        return [max(len(s), len(t) + 1) for s, t in zip(self.src, self.tgt, strict=True)]


def encode_sources(
    texts: Sequence[str],
    tokenizers: Tokenizers,
    *,
    max_len: int | None,
    on_long: OnLong,
    where: str = "input",
    limit: str = "model.max_len",
) -> tuple[list[list[int]], int]:
    """Source ids (tokens + EOS) of each text, cut to `max_len`; returns them and how many were cut.

    With `on_long="error"` a source over the limit is a DataError naming it and the `limit` key.
    """
    eos = tokenizers.src.eos_id
    out, cut = [], 0
    for i, ids in enumerate(tokenizers.src.encode(list(texts))):
        if max_len is not None and len(ids) + 1 > max_len:
            if on_long == "error":
                raise DataError(
                    f"{where} source {i} has {len(ids) + 1} tokens (with EOS), more than {limit}={max_len}; "
                    f"raise {limit}, shorten it, or set data.on_long=truncate"
                )
            ids, cut = ids[: max_len - 1], cut + 1
        out.append([*ids, eos])
    return out, cut


def source_limit(model_max_len: int | None, max_source_len: int | None) -> tuple[int | None, str]:
    """The most source tokens and the key that sets it: `data.max_source_len` when set, else `model.max_len`."""
    if max_source_len is None:
        return model_max_len, "model.max_len"
    if model_max_len is not None and max_source_len > model_max_len:
        raise ConfigError(
            f"data.max_source_len={max_source_len} is above model.max_len={model_max_len}, the model's positions; "
            f"raise model.max_len to at least {max_source_len} or lower data.max_source_len"
        )
    return max_source_len, "data.max_source_len"


def encode_splits(
    splits: dict[str, list[Pair]],
    tokenizers: Tokenizers,
    *,
    max_len: int | None,
    on_long: OnLong,
    max_source_len: int | None = None,
) -> dict[str, EncodedPairs]:
    """Encode every split; sources are cut to `max_source_len` (else `max_len`), targets to `max_len`. What was
    truncated is counted in one DataWarning for all splits."""
    src_max, limit = source_limit(max_len, max_source_len)
    encoded, counts = {}, []
    for name, pairs in splits.items():
        sources, references = [s for s, _ in pairs], [t for _, t in pairs]
        src, src_cut = encode_sources(sources, tokenizers, max_len=src_max, on_long=on_long, where=name, limit=limit)
        tgt, tgt_cut = [], 0
        for i, ids in enumerate(tokenizers.tgt.encode(references)):
            if max_len is not None and len(ids) + 1 > max_len:
                if on_long == "error":
                    raise DataError(
                        f"{name} target {i} has {len(ids) + 1} tokens (with BOS), more than model.max_len={max_len}; "
                        f"raise model.max_len, or set data.on_long=truncate"
                    )
                ids, tgt_cut = ids[: max_len - 1], tgt_cut + 1
            tgt.append(ids)
        encoded[name] = EncodedPairs(src, tgt, sources, references)
        if src_cut or tgt_cut:
            counts.append(f"{name}: {src_cut} of {len(pairs)} sources, {tgt_cut} targets")
    if counts:
        limits = f"{limit}={src_max}" + (f" (targets: model.max_len={max_len})" if limit != "model.max_len" else "")
        warn(
            f"truncated sequences longer than {limits} tokens ({'; '.join(counts)}); "
            f"raise the limit, or set data.on_long=error to refuse them"
        )
    return encoded


def collate(
    items: list[tuple[int, list[int], list[int]]], *, pad_id: int, bos_id: int, eos_id: int
) -> dict[str, Tensor]:
    """Pad a list of `(index, source ids, target ids)`.

    Returns index `[B]`, src `[B, Ns]`, src_mask `[B, Ns]` (True = padding), tgt_in `[B, Nt]` (BOS + tokens),
    tgt_out `[B, Nt]` (tokens + EOS, padding = pad_id).
    """
    b = len(items)
    ns = max(len(s) for _, s, _ in items)
    nt = max(len(t) for _, _, t in items) + 1
    src = torch.full((b, ns), pad_id, dtype=torch.long)
    tgt_in = torch.full((b, nt), pad_id, dtype=torch.long)
    tgt_out = torch.full((b, nt), pad_id, dtype=torch.long)
    for row, (_, s, t) in enumerate(items):
        src[row, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        tgt_in[row, : len(t) + 1] = torch.as_tensor([bos_id, *t], dtype=torch.long)
        tgt_out[row, : len(t) + 1] = torch.as_tensor([*t, eos_id], dtype=torch.long)
    index = torch.as_tensor([i for i, _, _ in items], dtype=torch.long)
    src_mask = torch.arange(ns) >= torch.as_tensor([len(s) for _, s, _ in items]).unsqueeze(1)
    return {"index": index, "src": src, "src_mask": src_mask, "tgt_in": tgt_in, "tgt_out": tgt_out}
