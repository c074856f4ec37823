"""Lossless tokenizers of a language model's text: decoding the ids of a text gives the text back, exactly.

`data.tokenizer.kind` says what a token is:

- `chars` (default): one token per character; the vocabulary is the training split's characters, sorted (no special
  tokens: a language model's windows need no padding). A text with a character outside it cannot be encoded.
- `bytes`: one token per byte of the text's UTF-8 form; 256 tokens, so every text encodes.
- `bpe`: byte-level BPE (GPT-2's scheme) trained with Hugging Face `tokenizers` on the training split alone, at most
  `vocab_size` tokens (the 256 bytes included); every text encodes.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from attnkit.errors import ConfigError
from attnkit.ranges import PositiveInt
from attnkit.registry import did_you_mean

Kind = Literal["chars", "bytes", "bpe"]
KINDS: tuple[str, ...] = get_args(Kind)
UNITS = {"chars": "character", "bytes": "byte", "bpe": "character"}  # what bits per unit count in


@dataclass(frozen=True)
class LMTokenizerOptions:
    """`data.tokenizer`: what a token is (`kind`: chars, bytes or bpe) and, for bpe, the most tokens `vocab_size`
    and how often a pair must occur to be merged (`min_frequency`)."""

    kind: Kind = "chars"
    vocab_size: PositiveInt = 4096
    min_frequency: PositiveInt = 2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(
                f"data.tokenizer.kind={self.kind!r} is not a tokenizer kind{did_you_mean(str(self.kind), KINDS)}; "
                f"choose one of {', '.join(KINDS)}"
            )
        for key, low in (("vocab_size", 257), ("min_frequency", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"data.tokenizer.{key}={value!r} must be an int >= {low}")

    @classmethod
    def of(cls, spec: LMTokenizerOptions | Mapping[str, Any] | None) -> LMTokenizerOptions:
        """Options from a config mapping (None: the defaults); an unknown key is a one-line ConfigError."""
        if isinstance(spec, cls):
            return spec
        if spec is not None and not isinstance(spec, Mapping):
            raise ConfigError(f"data.tokenizer={spec!r} must be a mapping such as {{kind: chars}}")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in spec or {}:
            if key not in names:
                raise ConfigError(
                    f"data.tokenizer has no option {key!r}{did_you_mean(str(key), names)}; options: {', '.join(names)}"
                )
        return cls(**{str(k): v for k, v in (spec or {}).items()})


class LMTokenizer:
    """Text <-> token ids, losslessly; `kind`, `vocab_size` and `unit` (what a bit per unit counts in)."""

    kind: str = ""

    @property
    def unit(self) -> str:
        return UNITS[self.kind]

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def ids(self, text: str) -> np.ndarray:
        """The token ids of `text`, int32 [tokens]; call `unknown` first where symbols may be missing."""
        raise NotImplementedError

    def unknown(self, text: str) -> Counter[str]:
        """The symbols of `text` this tokenizer cannot encode, with their counts (none for bytes and bpe)."""
        return Counter()

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """The ids of a prompt; a symbol outside the vocabulary is a one-line ConfigError."""
        missing = self.unknown(text)
        if missing:
            raise ConfigError(
                f"the prompt has {len(missing)} character(s) the vocabulary lacks: {counted(missing)}; use the "
                f"training text's characters, or train with data.tokenizer.kind=bytes, which encodes every text"
            )
        return self.ids(text).tolist()

    def units(self, text: str) -> int:
        """How many units (characters, or bytes) `text` holds."""
        return len(text.encode("utf-8")) if self.unit == "byte" else len(text)

    def to_state(self) -> dict[str, Any]:
        """What a checkpoint stores to decode and encode again without the data (`from_state`)."""
        raise NotImplementedError


def counted(symbols: Counter[str], shown: int = 10) -> str:
    """`'é' ×3, '\\x00' ×1`, most frequent first, at most `shown` of them."""
    items = [f"{symbol!r} ×{n}" for symbol, n in symbols.most_common(shown)]
    return ", ".join(items) + (", ..." if len(symbols) > shown else "")


def code_points(text: str) -> np.ndarray:
    """The code points of `text`, uint32 [characters]."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


class CharTokenizer(LMTokenizer):
    """One token per character of `chars` (the vocabulary, in id order)."""

    kind = "chars"

    def __init__(self, chars: str) -> None:
        self.chars = chars
        points = code_points(chars)
        self.table = np.full(int(points.max()) + 1 if len(points) else 1, -1, dtype=np.int32)
        self.table[points] = np.arange(len(points), dtype=np.int32)

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def _lookup(self, text: str) -> np.ndarray:
        points = code_points(text)
        inside = points < len(self.table)
        ids = np.full(len(points), -1, dtype=np.int32)
        ids[inside] = self.table[points[inside]]
        return ids

    def ids(self, text: str) -> np.ndarray:
        ids = self._lookup(text)
        if (ids < 0).any():
            raise ConfigError(f"the text has characters the vocabulary lacks: {counted(self.unknown(text))}")
        return ids

    def unknown(self, text: str) -> Counter[str]:
        ids = self._lookup(text)
        if not (ids < 0).any():
            return Counter()
        return Counter(text[i] for i in np.flatnonzero(ids < 0))

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "chars": self.chars}


class ByteTokenizer(LMTokenizer):
    """One token per byte of the text's UTF-8 form; decoding replaces a cut multi-byte character with U+FFFD."""

    kind = "bytes"

    @property
    def vocab_size(self) -> int:
        return 256

    def ids(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)

    def decode(self, ids: list[int]) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind}


class BPETokenizer(LMTokenizer):
    """Byte-level BPE (a `tokenizers.Tokenizer`): bytes are mapped to printable symbols, then merged."""

    kind = "bpe"

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, text: str, vocab_size: int, min_frequency: int) -> BPETokenizer:
        """Trained on `text` (the training split) alone."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator([text], trainer=trainer)
        return cls(tokenizer)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def ids(self, text: str) -> np.ndarray:
        return np.asarray(self.tokenizer.encode(text).ids, dtype=np.int32)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids])

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "tokenizer": self.tokenizer.to_str()}


def train_lm_tokenizer(text: str, options: LMTokenizerOptions) -> LMTokenizer:
    """The tokenizer `options` name, made from `text` (the training split)."""
    if options.kind == "chars":
        return CharTokenizer.train(text)
    if options.kind == "bytes":
        return ByteTokenizer()
    return BPETokenizer.train(text, options.vocab_size, options.min_frequency)


def from_state(state: Mapping[str, Any]) -> LMTokenizer:
    """The tokenizer a checkpoint stored with `to_state`."""
    kind = state["kind"]
    if kind == "chars":
        return CharTokenizer(state["chars"])
    if kind == "bytes":
        return ByteTokenizer()
    from tokenizers import Tokenizer

    return BPETokenizer(Tokenizer.from_str(state["tokenizer"]))
