"""Generation for text-to-text tasks: greedy or beam search (attnkit.nn.decoding) from batches to token lists and
texts. Plain PyTorch: used by the Lightning module for validation and test, and by `mode=predict`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn.decoding import beam_search, greedy
from attnkit.tasks.seq2seq.batches import collate, encode_sources, source_limit
from attnkit.text.pairs import OnLong
from attnkit.text.tokenizer import TextTokenizer, Tokenizers
from attnkit.text.words import WordConstraint

UNITS = ("word", "piece")
WORDS = ("real", "free")
WORD_MARKS = {"Metaspace": "▁", "ByteLevel": "Ġ"}  # decoders whose pieces mark the start of a word


def digit_pieces(tokenizer: TextTokenizer) -> Tensor:
    """`[V]` bool: the pieces made of digits (after a word mark), which may follow themselves ("1 00 00")."""
    marks = "".join(WORD_MARKS.values()) + "#"
    digits = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
    for token, index in tokenizer.tokenizer.get_vocab(with_added_tokens=True).items():
        if index < digits.numel():
            digits[index] = token.lstrip(marks).isdigit()
    return digits


def word_starts(tokenizer: TextTokenizer) -> Tensor:
    """`[V]` bool: the pieces that begin a word (`▁x` / `Ġx` pieces of BPE, all but `##x` of WordPiece, spaces of
    a character tokenizer, every token of a word tokenizer); special tokens count as words of their own."""
    inner = tokenizer.tokenizer
    kind = type(inner.decoder).__name__ if inner.decoder is not None else ""
    starts = torch.ones(tokenizer.vocab_size, dtype=torch.bool)
    special = {tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id}
    for token, index in inner.get_vocab(with_added_tokens=True).items():
        if index >= starts.numel() or index in special:
            continue
        if kind in WORD_MARKS:
            starts[index] = token.startswith(WORD_MARKS[kind])
        elif kind == "WordPiece":
            starts[index] = not token.startswith("##")
        elif kind == "Fuse":  # characters: a word begins at a space
            starts[index] = token.isspace()
    return starts


@dataclass(frozen=True)
class DecodeOptions:
    """How to search: `beam` 1 is greedy; at least `min_len` and at most `max_len_a` · source length + `max_len_b`
    target tokens (and at most `max_len`, when set); `no_repeat_ngram` n > 0 forbids repeating any n-gram of
    `no_repeat_unit`s: `word` (the tokenizer's words, whatever pieces they are made of) or `piece` (tokens);
    `repetition_penalty` p > 1 makes tokens already written less likely (1 = off); `words`: `real` lets a hypothesis
    finish a word only if it is a word of the training text or of its source (`attnkit.text.words`), `free` lets it
    write any string of pieces."""

    beam: int = 5
    length_penalty: float = 1.0
    max_len_a: float = 1.5
    max_len_b: int = 10
    no_repeat_ngram: int = 0
    no_repeat_unit: str = "word"
    repetition_penalty: float = 1.0
    min_len: int = 0
    max_len: int | None = None
    words: str = "real"

    def __post_init__(self) -> None:
        if self.words not in WORDS:
            raise ConfigError(
                f"task.words={self.words!r} must be real (only words of the training text or the source) or free"
            )
        if isinstance(self.beam, bool) or not isinstance(self.beam, int) or self.beam < 1:
            raise ConfigError(f"task.beam={self.beam!r} must be an int >= 1 (1 = greedy search)")
        if self.max_len_a < 0 or self.max_len_b < 0:
            raise ConfigError(
                f"task.max_len_a={self.max_len_a} and task.max_len_b={self.max_len_b} must be >= 0 "
                f"(at most a · source length + b target tokens)"
            )
        ngram = self.no_repeat_ngram
        if isinstance(ngram, bool) or not isinstance(ngram, int) or ngram < 0:
            raise ConfigError(f"task.no_repeat_ngram={self.no_repeat_ngram!r} must be an int >= 0 (0 = off)")
        if self.no_repeat_unit not in UNITS:
            raise ConfigError(
                f"task.no_repeat_unit={self.no_repeat_unit!r} must be one of {', '.join(UNITS)} (what an n-gram counts)"
            )
        penalty = self.repetition_penalty
        if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or penalty <= 0:
            raise ConfigError(f"task.repetition_penalty={penalty!r} must be a number > 0 (1 = off, 1.2 is common)")
        if isinstance(self.min_len, bool) or not isinstance(self.min_len, int) or self.min_len < 0:
            raise ConfigError(f"task.min_len={self.min_len!r} must be an int >= 0 (target tokens)")
        if self.max_len is not None and (
            isinstance(self.max_len, bool) or not isinstance(self.max_len, int) or self.max_len < 1
        ):
            raise ConfigError(f"task.max_len={self.max_len!r} must be an int >= 1 (target tokens), or null")
        if self.max_len is not None and self.min_len > self.max_len:
            raise ConfigError(
                f"task.min_len={self.min_len} is above task.max_len={self.max_len}; lower task.min_len or raise "
                f"task.max_len"
            )
        if self.max_len_a == 0 and self.min_len > self.max_len_b:
            raise ConfigError(
                f"task.min_len={self.min_len} is above the maximum length task.max_len_b={self.max_len_b} "
                f"(task.max_len_a=0); lower task.min_len or raise task.max_len_b"
            )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def of(cls, recipe: Mapping[str, Any]) -> DecodeOptions:
        """The decoding options among a task's recipe keys."""
        return cls(**{f.name: recipe[f.name] for f in fields(cls) if f.name in recipe})


def generate_ids(
    model: nn.Module,
    src: Tensor,
    src_mask: Tensor,
    tokenizers: Tokenizers,
    options: DecodeOptions,
    words: WordConstraint | None = None,
) -> list[list[int]]:
    """Token ids of the output for each source row of src `[B, Ns]` (src_mask True = padding), EOS dropped; with
    `options.words=real`, only real words (`words`, the constraint of the run's lexicon), a last word cut by the
    length limit dropped."""
    tgt = tokenizers.tgt
    if options.words == "real" and words is None:
        raise ConfigError("task.words=real needs the words of the training text; set task.words=free")
    allowed = words if options.words == "real" else None
    common = {
        "bos_id": tgt.bos_id,
        "eos_id": tgt.eos_id,
        "pad_id": tgt.pad_id,
        "max_len_a": options.max_len_a,
        "max_len_b": options.max_len_b,
        "max_len": options.max_len,
        "min_len": options.min_len,
        "use_cache": bool(getattr(model, "supports_cache", True)),
        **({"allowed": allowed} if allowed is not None else {}),
    }
    if options.beam == 1 and options.no_repeat_ngram == 0 and options.repetition_penalty == 1.0:
        out = greedy(model, src, src_mask, **common)
    else:
        by_words = options.no_repeat_ngram > 0 and options.no_repeat_unit == "word"
        out = beam_search(
            model,
            src,
            src_mask,
            beam=options.beam,
            length_penalty=options.length_penalty,
            no_repeat_ngram=options.no_repeat_ngram,
            **(_word_marks(tgt) if by_words else {}),
            repetition_penalty=options.repetition_penalty,
            **common,
        )
    rows = [strip(row, tgt.eos_id, tgt.pad_id) for row in out.tolist()]
    if allowed is None:
        return rows
    return [allowed.trim(row, source) for row, source in zip(rows, src.tolist(), strict=True)]


def _word_marks(tokenizer: TextTokenizer) -> dict[str, Tensor]:
    """beam_search's `word_starts` and `stutter_free` for the tokenizer, computed once per tokenizer."""
    cached = getattr(tokenizer, "_word_marks", None)
    if cached is None:
        cached = tokenizer._word_marks = {
            "word_starts": word_starts(tokenizer),
            "stutter_free": digit_pieces(tokenizer),
        }
    return cached


def strip(ids: list[int], eos_id: int, pad_id: int) -> list[int]:
    """The tokens before the first EOS (or padding)."""
    for i, token in enumerate(ids):
        if token in (eos_id, pad_id):
            return ids[:i]
    return ids


def translate(
    model: nn.Module,
    texts: Sequence[str],
    tokenizers: Tokenizers,
    options: DecodeOptions,
    *,
    on_long: OnLong = "truncate",
    max_source_len: int | None = None,
    batch_size: int = 32,
    words: WordConstraint | None = None,
) -> tuple[list[str], int]:
    """Output texts for `texts` (empty text in, empty text out), and how many sources were truncated (to
    `max_source_len`, else the model's `max_len`); `words`: the constraint `options.words=real` decodes with."""
    max_len, limit = source_limit(getattr(model, "max_len", None), max_source_len)
    keep = [i for i, t in enumerate(texts) if t.strip()]
    sources = [texts[i].strip() for i in keep]
    src, cut = encode_sources(sources, tokenizers, max_len=max_len, on_long=on_long, limit=limit)
    order = sorted(range(len(src)), key=lambda i: len(src[i]))
    outputs: list[str] = [""] * len(texts)
    tok = tokenizers.tgt
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = collate([(i, src[i], []) for i in chunk], pad_id=tok.pad_id, bos_id=tok.bos_id, eos_id=tok.eos_id)
        device = next(model.parameters()).device
        with torch.no_grad():
            ids = generate_ids(model, batch["src"].to(device), batch["src_mask"].to(device), tokenizers, options, words)
        for i, text in zip(chunk, tok.decode(ids), strict=True):
            outputs[keep[i]] = text
    return outputs, cut
