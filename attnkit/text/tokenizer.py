"""Tokenizers trained with Hugging Face `tokenizers` on the training split, cached, or loaded by path.

`kind` (`task.tokenizer.kind`) says what a token is:

- `bpe` (default): subwords. Text is NFKC-normalised (optionally lower-cased), split at spaces (kept as "▁", so
  decoding restores them), punctuation and digit runs, then merged by BPE.
- `words`: whitespace-separated words (right for symbol sequences such as ListOps); decoding joins them with single
  spaces.
- `chars`: one token per character, spaces included, so decoding restores the text exactly.

`words` and `chars` keep the `vocab_size` - 5 most frequent units seen at least `min_frequency` times (ties in
code-point order); the rest read as `<unk>`. They change nothing but the case (`lowercase`). Every trained
tokenizer puts the special tokens first: `<pad>` = 0, `<bos>` = 1, `<eos>` = 2, `<unk>` = 3, `<mask>` = 4 (what
denoising pretraining, `task.objective=denoise`, puts in place of a masked span), and is cached under a key made of
the training data's digest (and of any extra texts it was trained on) and the tokenizer options, and reused by the
next run on the same data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from attnkit.data.messages import one_line
from attnkit.errors import ConfigError, DataError
from attnkit.ranges import PositiveInt
from attnkit.registry import did_you_mean
from attnkit.text.pairs import TextPairs

if TYPE_CHECKING:  # `tokenizers` is imported where it is used: the CLI imports every text task at start-up
    from tokenizers import Tokenizer

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>", "<mask>")  # appended ones keep the older ids
Kind = Literal["bpe", "words", "chars"]
KINDS: tuple[str, ...] = get_args(Kind)
# special token names accepted in a tokenizer.json given by path, by role
ALIASES = {
    "pad": ("<pad>", "[PAD]"),
    "bos": ("<bos>", "<s>", "[BOS]", "[CLS]"),
    "eos": ("<eos>", "</s>", "[EOS]", "[SEP]"),
    "unk": ("<unk>", "[UNK]"),
}
MASK_ALIASES = ("<mask>", "[MASK]")  # optional: only denoising needs it
CACHE_VERSION = 2  # 2: <mask> added


class TextTokenizer:
    """A `tokenizers.Tokenizer` with the ids of its pad, bos, eos and unk tokens (and of its mask token, None when it
    has none: a tokenizer.json given by path, or one trained before attnkit added `<mask>`)."""

    def __init__(self, tokenizer: Tokenizer, origin: str = "trained") -> None:
        self.tokenizer, self.origin = tokenizer, origin
        ids = {}
        for role, names in ALIASES.items():
            found = [tokenizer.token_to_id(n) for n in names if tokenizer.token_to_id(n) is not None]
            if not found:
                raise DataError(
                    f"tokenizer {origin} has no {role} token (one of {', '.join(names)}); add it, or let attnkit "
                    f"train one (task.tokenizer.path=null)"
                )
            ids[role] = found[0]
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = ids["pad"], ids["bos"], ids["eos"], ids["unk"]
        masks = [tokenizer.token_to_id(n) for n in MASK_ALIASES if tokenizer.token_to_id(n) is not None]
        self.mask_id: int | None = masks[0] if masks else None

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens (the same ids as `encode_batch`, which also tracks offsets:
        `encode_batch_fast`, tokenizers >= 0.20, is twice as fast on long texts)."""
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        return [e.ids for e in encode(list(texts), add_special_tokens=False)]

    def decode(self, ids: list[list[int]]) -> list[str]:
        """Texts from token ids; special tokens are dropped."""
        return [t.strip() for t in self.tokenizer.decode_batch([list(map(int, x)) for x in ids])]

    def to_json(self) -> str:
        return self.tokenizer.to_str()

    @classmethod
    def from_json(cls, text: str, origin: str = "checkpoint") -> TextTokenizer:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_str(text), origin)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TextTokenizer:
        """A tokenizer.json written by `tokenizers` (or transformers' fast tokenizers)."""
        from tokenizers import Tokenizer

        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise DataError(f"tokenizer file {str(path)!r} does not exist; give a tokenizer.json path")
        try:
            return cls(Tokenizer.from_file(str(path)), str(path))
        except Exception as exc:  # the Rust side raises plain Exceptions
            raise DataError(f"cannot read tokenizer {str(path)!r}: {one_line(exc)}; give a tokenizer.json") from exc


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2, lowercase: bool = False) -> TextTokenizer:
    """A BPE tokenizer with at most `vocab_size` tokens (special tokens first), trained on `texts`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation(), pre_tokenizers.Digits(individual_digits=False)]
    )
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return TextTokenizer(tokenizer)


def train_units(
    texts: Iterable[str], kind: str, vocab_size: int, min_frequency: int = 2, lowercase: bool = False
) -> TextTokenizer:
    """A word-level tokenizer over words (`kind="words"`) or characters (`"chars"`) with at most `vocab_size`
    tokens, special tokens first, then the most frequent units of `texts` seen at least `min_frequency` times."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    normalizer = normalizers.Lowercase() if lowercase else None
    counts: Counter[str] = Counter()
    for text in texts:
        text = normalizer.normalize_str(text) if normalizer is not None else text
        counts.update(text.split() if kind == "words" else text)
    ranked = sorted(
        (unit for unit, n in counts.items() if n >= min_frequency and unit not in SPECIAL_TOKENS),
        key=lambda unit: (-counts[unit], unit),
    )
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *ranked[: vocab_size - len(SPECIAL_TOKENS)]])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    if kind == "words":
        tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # decoding joins tokens with single spaces
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        tokenizer.decoder = decoders.Fuse()
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))  # kept whole in text, dropped when decoding
    return TextTokenizer(tokenizer)


def train_tokenizer(
    texts: Iterable[str], kind: str, vocab_size: int, min_frequency: int = 2, lowercase: bool = False
) -> TextTokenizer:
    """A tokenizer of `kind` (bpe, words, chars) trained on `texts`."""
    if kind == "bpe":
        return train_bpe(texts, vocab_size, min_frequency, lowercase)
    return train_units(texts, kind, vocab_size, min_frequency, lowercase)


@dataclass(frozen=True)
class TokenizerOptions:
    """`task.tokenizer`: what a token is (`kind`: bpe, words or chars), the vocabulary (`vocab_size` tokens at most,
    special tokens included; units seen fewer than `min_frequency` times left out; `joint`: one vocabulary for
    source and target; `lowercase`), and where tokenizers come from: `path` (and `tgt_path` for a separate target
    vocabulary) to a tokenizer.json instead of training one; `cache_dir` for trained ones.
    """

    kind: Kind = "bpe"
    vocab_size: PositiveInt | None = 8000  # None: chosen by the task from the data (the text tasks' recipe)
    joint: bool = True
    path: str | None = None
    tgt_path: str | None = None
    min_frequency: PositiveInt = 2
    lowercase: bool = False
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(
                f"task.tokenizer.kind={self.kind!r} is not a tokenizer kind{did_you_mean(str(self.kind), KINDS)}; "
                f"choose one of {', '.join(KINDS)}"
            )
        vocab_size, min_frequency = self.vocab_size, self.min_frequency
        if vocab_size is not None and (
            isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size <= len(SPECIAL_TOKENS)
        ):
            raise ConfigError(f"task.tokenizer.vocab_size={vocab_size!r} must be an int > {len(SPECIAL_TOKENS)}")
        if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
            raise ConfigError(f"task.tokenizer.min_frequency={min_frequency!r} must be an int >= 1")
        if self.tgt_path is not None and self.path is None:
            raise ConfigError("task.tokenizer.tgt_path needs task.tokenizer.path for the source side")

    @classmethod
    def of(cls, spec: TokenizerOptions | Mapping[str, Any] | None, **overrides: Any) -> TokenizerOptions:
        """Options from a config mapping (or None: the defaults), with `overrides`; an unknown key or a bad value is
        a one-line ConfigError."""
        if isinstance(spec, cls) and not overrides:
            return spec
        if isinstance(spec, cls):
            spec = dataclasses.asdict(spec)
        if spec is not None and not isinstance(spec, Mapping):
            raise ConfigError(
                f"task.tokenizer={spec!r} must be a mapping of options; options: {', '.join(tokenizer_options())}"
            )
        given = {str(key): value for key, value in {**(spec or {}), **overrides}.items()}
        options = tokenizer_options()
        for key in given:
            if key not in options:
                raise ConfigError(
                    f"task.tokenizer has no option {key!r}{did_you_mean(key, options)}; options: {', '.join(options)}"
                )
        return cls(**given)


@dataclass
class Tokenizers:
    """The source and target tokenizers (the same object when the vocabulary is joint) and how they were made."""

    src: TextTokenizer
    tgt: TextTokenizer
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def joint(self) -> bool:
        return self.src is self.tgt

    def to_state(self) -> dict[str, str | None]:
        """What a checkpoint stores: the tokenizer JSON text(s)."""
        return {"src": self.src.to_json(), "tgt": None if self.joint else self.tgt.to_json()}

    @classmethod
    def from_state(cls, state: dict[str, str | None]) -> Tokenizers:
        src = TextTokenizer.from_json(state["src"])
        tgt = src if state.get("tgt") is None else TextTokenizer.from_json(state["tgt"])
        return cls(src, tgt, {"origin": "checkpoint"})


def load_tokenizers(
    pairs: TextPairs,
    options: TokenizerOptions | Mapping[str, Any] | None = None,
    *,
    extra_texts: Sequence[str] = (),
    **overrides: Any,
) -> Tokenizers:
    """Tokenizers for a data set, as `options` (or keywords: `load_tokenizers(pairs, kind="words")`) say: loaded
    from `path` (and `tgt_path` for a separate target vocabulary), or trained on the training split, joint or one
    per side, and cached in `cache_dir` (default `$ATTNKIT_CACHE/tokenizers`, else `~/.cache/attnkit/tokenizers`)
    under the data digest and the options. `extra_texts` (unlabelled documents, for denoising pretraining) are
    trained on too, on the source side.
    """
    opts = TokenizerOptions.of(options, **overrides)
    kind, vocab_size, joint, lowercase = opts.kind, opts.vocab_size, bool(opts.joint), opts.lowercase
    if opts.path is not None:
        src = TextTokenizer.from_file(opts.path)
        tgt = src if opts.tgt_path is None else TextTokenizer.from_file(opts.tgt_path)
        _check_same_pad(src, tgt)
        return Tokenizers(src, tgt, {"origin": "file", "path": str(src.origin)})
    options = {"vocab_size": vocab_size, "joint": joint, "min_frequency": opts.min_frequency, "lowercase": lowercase}
    keyed = options if kind == "bpe" else {"kind": kind, **options}  # BPE keeps the key it had before kinds
    data = {"data": pairs.fingerprint()}
    if extra_texts:
        data["extra"] = hashlib.sha256("\x00".join(extra_texts).encode()).hexdigest()
    blob = json.dumps({**data, "version": CACHE_VERSION, **keyed}, sort_keys=True).encode()
    key = hashlib.sha256(blob).hexdigest()[:20]
    folder = cache_root(opts.cache_dir) / f"{kind}-{vocab_size}-{'joint' if joint else 'separate'}-{key}"
    names = ("joint.json",) if joint else ("src.json", "tgt.json")
    info = {"origin": "cache", "cache": str(folder), "kind": kind, **options}
    if extra_texts:
        info["extra_texts"] = len(extra_texts)
    if all((folder / n).is_file() for n in names):
        try:
            loaded = [TextTokenizer.from_file(folder / n) for n in names]
            src, tgt = loaded[0], loaded[-1]
            return Tokenizers(src, tgt, info)
        except DataError:
            pass  # a damaged cache entry: train again and overwrite it
    start = time.perf_counter()
    sources, targets = [s for s, _ in pairs.train] + list(extra_texts), [t for _, t in pairs.train]
    if joint:
        src = tgt = train_tokenizer(sources + targets, kind, vocab_size, opts.min_frequency, lowercase)
    else:
        src = train_tokenizer(sources, kind, vocab_size, opts.min_frequency, lowercase)
        tgt = train_tokenizer(targets, kind, vocab_size, opts.min_frequency, lowercase)
    info = {**info, "origin": "trained", "train_s": round(time.perf_counter() - start, 2)}
    _save(folder, dict(zip(names, (src, tgt) if not joint else (src,), strict=True)), info)
    return Tokenizers(src, tgt, info)


def tokenizer_options() -> list[str]:
    """The keys `task.tokenizer` accepts."""
    return [f.name for f in dataclasses.fields(TokenizerOptions)]


def check_tokenizer_options(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """`task.tokenizer` as keyword arguments of `load_tokenizers`, every option filled in; an unknown key or a bad
    value (such as a `kind` that is not bpe, words or chars) is a one-line ConfigError."""
    return dataclasses.asdict(TokenizerOptions.of(spec))


def cache_root(cache_dir: str | None) -> Path:
    """Where trained tokenizers are kept: `cache_dir`, else $ATTNKIT_CACHE/tokenizers, else ~/.cache/attnkit."""
    if cache_dir:
        return Path(cache_dir).expanduser().resolve()
    base = os.environ.get("ATTNKIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "attnkit")
    return Path(base) / "tokenizers"


def _save(folder: Path, tokenizers: dict[str, TextTokenizer], info: dict[str, Any]) -> None:
    """Write the cache entry; files are renamed into place, so a concurrent run never reads half a file."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, tokenizer in tokenizers.items():
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            tmp.write_text(tokenizer.to_json())
            os.replace(tmp, folder / name)
        (folder / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise DataError(
            f"cannot write the tokenizer cache {folder}: {one_line(exc)}; set task.tokenizer.cache_dir=<writable dir>"
        ) from exc


def _check_same_pad(src: TextTokenizer, tgt: TextTokenizer) -> None:
    if src.pad_id != tgt.pad_id:
        raise DataError(
            f"the source and target tokenizers pad with different ids ({src.pad_id} and {tgt.pad_id}); "
            f"give tokenizers whose pad token has the same id"
        )
