"""Denoising pretraining of an encoder-decoder on documents alone (`task.objective=denoise`), as in BART
(Lewis et al. 2020): the encoder reads a noised document, the decoder writes the original.

The noise, on token ids: **sentence permutation** (the sentences, split after tokens that end in `.`, `!` or `?`,
are shuffled) then **text infilling** (spans whose lengths are drawn from Poisson(`span_mean`) cover `mask_ratio` of
the tokens; each span becomes ONE mask token, so the model must also tell how many tokens are missing; a span of
length 0 inserts a mask). The functions here are pure: ids and a seeded `random.Random` in, ids out.
`DenoisingPairs` noises in `__getitem__` with a generator seeded by (seed, epoch, index): every epoch sees fresh
noise, the same in every run with that seed, so a resumed run goes on exactly as the uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from attnkit.data.warning import warn
from attnkit.errors import ConfigError, DataError
from attnkit.ranges import PositiveFloat, Rate
from attnkit.registry import did_you_mean
from attnkit.tasks.seq2seq.batches import source_limit
from attnkit.train import run
from attnkit.train.init_from import Start

SENTENCE_END = ".!?"


@dataclass(frozen=True)
class DenoiseOptions:
    """`task.denoise` (used with `task.objective=denoise`): `mask_ratio` of the tokens are masked, in spans of
    Poisson(`span_mean`) tokens, each span replaced by one `<mask>`; `permute_sentences` shuffles the sentences
    first; `texts` are extra text files (one document per non-empty line, paths from the launch directory) added to
    the training split's source documents."""

    mask_ratio: Rate = 0.3
    span_mean: PositiveFloat = 3.0
    permute_sentences: bool = True
    texts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        ratio, mean = self.mask_ratio, self.span_mean
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio < 1.0:
            raise ConfigError(f"task.denoise.mask_ratio={ratio!r} must be a number in [0, 1) (BART: 0.3)")
        if isinstance(mean, bool) or not isinstance(mean, (int, float)) or not 0.0 < mean <= 64.0:
            raise ConfigError(f"task.denoise.span_mean={mean!r} must be a number in (0, 64] (BART: 3)")
        if not isinstance(self.permute_sentences, bool):
            raise ConfigError(f"task.denoise.permute_sentences={self.permute_sentences!r} must be true or false")
        texts = self.texts
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise ConfigError(f"task.denoise.texts={texts!r} must be a list of text files, e.g. [a.txt,b.txt]")
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(f"task.denoise.texts holds {text!r}; give paths of text files, e.g. [a.txt,b.txt]")
        object.__setattr__(self, "texts", [str(t) for t in texts])

    @classmethod
    def of(cls, spec: DenoiseOptions | Mapping[str, Any] | None) -> DenoiseOptions:
        """Options from a config mapping (None: the defaults); an unknown key or a bad value is a one-line
        ConfigError."""
        if isinstance(spec, cls):
            return spec
        if spec is not None and not isinstance(spec, Mapping):
            raise ConfigError(f"task.denoise={spec!r} must be a mapping of options; options: {', '.join(OPTIONS)}")
        given = {str(key): value for key, value in (spec or {}).items()}
        for key in given:
            if key not in OPTIONS:
                raise ConfigError(
                    f"task.denoise has no option {key!r}{did_you_mean(key, OPTIONS)}; options: {', '.join(OPTIONS)}"
                )
        return cls(**given)

    def describe(self) -> str:
        """One line: the noise."""
        order = "sentences permuted, " if self.permute_sentences else ""
        return f"{order}text infilling of {self.mask_ratio:g} of the tokens in Poisson({self.span_mean:g}) spans"


OPTIONS = tuple(f.name for f in dataclasses.fields(DenoiseOptions))
OPTION_KEYS = ("mask_ratio", "span_mean", "permute_sentences")  # the noise itself (what `describe` says)


# -- the noise: pure functions --------------------------------------------------------------------------------------


def poisson(rng: random.Random, mean: float) -> int:
    """A draw from Poisson(`mean`) (Knuth's method: fine for the small means of span lengths)."""
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def sample_spans(n: int, rng: random.Random, ratio: float, span_mean: float) -> list[tuple[int, int]]:
    """Non-overlapping (start, length) spans of a sequence of `n` tokens, sorted by start, that cover `ratio` · n
    tokens (rounded at random to an integer, so the expectation is exact); lengths are Poisson(`span_mean`) draws,
    the last one cut to the budget. A span of length 0 is an insertion before token `start` (`start` = n: at the
    end), never inside a span. Two spans with length never touch, so each stays one mask."""
    budget = int(ratio * n) + (rng.random() < ratio * n - int(ratio * n))
    lengths: list[int] = []
    while sum(lengths) < budget:
        lengths.append(min(poisson(rng, span_mean), budget - sum(lengths)))
    spans = [length for length in lengths if length > 0]
    inserts = len(lengths) - len(spans)
    kept = n - budget
    if len(spans) > kept + 1:  # more spans than gaps between kept tokens (ratio near 1): merge the surplus
        spans = spans[:kept] + [sum(spans[kept:])]
    # a span goes into one of the kept + 1 gaps around the kept tokens, at most one per gap
    gaps = sorted(rng.sample(range(kept + 1), len(spans)))
    rng.shuffle(spans)
    out, position, previous_gap = [], 0, 0
    for gap, length in zip(gaps, spans, strict=True):
        position += gap - previous_gap  # kept tokens passed since the last span
        out.append((position, length))
        position += length
        previous_gap = gap
    if inserts:  # before any kept token or at the end, never inside a span
        inside = {p for start, length in out for p in range(start + 1, start + length)}
        free = [p for p in range(n + 1) if p not in inside]
        out += [(rng.choice(free), 0) for _ in range(inserts)]
    return sorted(out)


def mask_spans(ids: Sequence[int], spans: Sequence[tuple[int, int]], mask_id: int) -> list[int]:
    """`ids` with each (start, length) span replaced by one `mask_id` (length 0: a mask inserted before start)."""
    out: list[int] = []
    position = 0
    for start, length in sorted(spans):
        out.extend(ids[position:start])
        out.append(mask_id)
        position = max(position, start + length)
    out.extend(ids[position:])
    return out


def infill(ids: Sequence[int], rng: random.Random, *, mask_id: int, ratio: float, span_mean: float) -> list[int]:
    """BART's text infilling: spans covering `ratio` of `ids`, each replaced by one `mask_id`."""
    if ratio <= 0 or not ids:
        return list(ids)
    return mask_spans(ids, sample_spans(len(ids), rng, ratio, span_mean), mask_id)


def split_sentences(ids: Sequence[int], terminals: Collection[int]) -> list[list[int]]:
    """`ids` cut after each run of sentence-ending tokens (`terminals`); the pieces join back to `ids`."""
    sentences: list[list[int]] = [[]]
    for i, token in enumerate(ids):
        sentences[-1].append(token)
        if token in terminals and (i + 1 == len(ids) or ids[i + 1] not in terminals):
            sentences.append([])
    return [s for s in sentences if s]


def permute_sentences(ids: Sequence[int], rng: random.Random, terminals: Collection[int]) -> list[int]:
    """BART's sentence permutation: the sentences of `ids` in a random order."""
    sentences = split_sentences(ids, terminals)
    rng.shuffle(sentences)
    return [token for sentence in sentences for token in sentence]


def noise(
    ids: Sequence[int], rng: random.Random, *, mask_id: int, terminals: Collection[int], options: DenoiseOptions
) -> list[int]:
    """Sentence permutation (if `options.permute_sentences`), then text infilling."""
    out = permute_sentences(ids, rng, terminals) if options.permute_sentences else list(ids)
    return infill(out, rng, mask_id=mask_id, ratio=options.mask_ratio, span_mean=options.span_mean)


def noise_rng(seed: int, epoch: int, index: int) -> random.Random:
    """The generator of one item's noise: a function of (seed, epoch, index) only (string seeds hash with SHA-512,
    the same in every process)."""
    return random.Random(f"denoise:{seed}:{epoch}:{index}")


def sentence_end_ids(tokenizer: Any) -> frozenset[int]:
    """Ids of the tokens of a `tokenizers.Tokenizer` that end a sentence: their text (without BPE's word marker)
    ends in `.`, `!` or `?`."""
    special = {t.content for t in tokenizer.get_added_tokens_decoder().values() if t.special}
    ends = set()
    for token, index in tokenizer.get_vocab(with_added_tokens=True).items():
        text = token.replace("\u2581", "").strip()
        if text and text[-1] in SENTENCE_END and token not in special:
            ends.add(index)
    return frozenset(ends)


# -- the data --------------------------------------------------------------------------------------------------------


class DenoisingPairs(Dataset):
    """Documents as (noised source, original) pairs; item i is `(i, noised source ids + EOS, target ids)`.

    `src` holds each document's ids in the source vocabulary (what is noised), `tgt` in the target vocabulary (the
    same lists when the vocabulary is joint). Items are noised with `noise_rng(seed, epoch, i)`; training sets the
    epoch each epoch (`set_epoch`), evaluation keeps epoch 0, so validation loss compares across epochs.
    """

    def __init__(
        self,
        src: list[list[int]],
        tgt: list[list[int]],
        texts: list[str],
        *,
        mask_id: int,
        eos_id: int,
        terminals: Collection[int],
        options: DenoiseOptions,
        seed: int,
        max_source_tokens: int | None = None,
    ) -> None:
        self.src, self.tgt, self.sources, self.references = src, tgt, texts, texts
        self.mask_id, self.eos_id, self.terminals, self.options = mask_id, eos_id, frozenset(terminals), options
        self.seed, self.epoch, self.max_source_tokens = seed, 0, max_source_tokens

    def __len__(self) -> int:
        return len(self.src)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def noised(self, i: int, epoch: int | None = None) -> list[int]:
        """The noised source ids of document i (without EOS) in `epoch` (default: the current one)."""
        rng = noise_rng(self.seed, self.epoch if epoch is None else epoch, i)
        ids = noise(self.src[i], rng, mask_id=self.mask_id, terminals=self.terminals, options=self.options)
        return ids if self.max_source_tokens is None else ids[: self.max_source_tokens]

    def __getitem__(self, i: int) -> tuple[int, list[int], list[int]]:
        return i, [*self.noised(i), self.eos_id], self.tgt[i]

    def lengths(self) -> list[int]:
        """The padded cost of each pair (before noise, which only shortens a source but for rare insertions)."""
        return [max(len(s) + 1, len(t) + 1) for s, t in zip(self.src, self.tgt, strict=True)]


def encode_documents(
    splits: dict[str, list[str]],
    tokenizers: Any,
    *,
    options: DenoiseOptions,
    seed: int,
    max_len: int | None,
    max_source_len: int | None,
    on_long: str,
) -> dict[str, DenoisingPairs]:
    """Each split's documents as `DenoisingPairs`. A document is cut to what both sides hold: `max_source_len` (else
    `max_len`) - 1 source tokens and `max_len` - 1 target tokens; the cut ones are counted in one warning, or refused
    with `on_long="error"`."""
    src_tok, tgt_tok = tokenizers.src, tokenizers.tgt
    if src_tok.mask_id is None:
        raise DataError(
            f"the source tokenizer ({src_tok.origin}) has no <mask> token, which task.objective=denoise needs; add "
            f"'<mask>' as a special token, or let attnkit train one (task.tokenizer.path=null)"
        )
    src_max, limit = source_limit(max_len, max_source_len)
    if tokenizers.joint and max_len is not None:  # the decoder writes back what the encoder read, no more
        src_max = min(src_max, max_len) if src_max is not None else max_len
    tgt_max = src_max if tokenizers.joint else max_len
    terminals = sentence_end_ids(src_tok.tokenizer)
    encoded, counts = {}, []
    for name, texts in splits.items():
        src = src_tok.encode(texts)
        tgt = src if tokenizers.joint else tgt_tok.encode(texts)
        long = [
            i
            for i, (s, t) in enumerate(zip(src, tgt, strict=True))
            if (src_max is not None and len(s) + 1 > src_max) or (tgt_max is not None and len(t) + 1 > tgt_max)
        ]
        if long and on_long == "error":
            raise DataError(
                f"{name} document {long[0]} has more than {limit}={src_max} tokens (with EOS); raise {limit}, "
                f"shorten the document, or set data.on_long=truncate"
            )
        src = [s[: src_max - 1] for s in src] if src_max is not None else src
        tgt = src if tokenizers.joint else [t[: tgt_max - 1] for t in tgt] if tgt_max is not None else tgt
        encoded[name] = DenoisingPairs(
            src,
            tgt,
            list(texts),
            mask_id=src_tok.mask_id,
            eos_id=src_tok.eos_id,
            terminals=terminals,
            options=options,
            seed=seed,
            max_source_tokens=None if src_max is None else src_max - 1,
        )
        if long:
            counts.append(f"{name}: {len(long)} of {len(texts)}")
    if counts:
        warn(
            f"truncated documents longer than {limit}={src_max} tokens ({'; '.join(counts)}); the model learns to "
            f"restore their openings; raise the limit, or set data.on_long=error to refuse them"
        )
    return encoded


def read_texts(paths: Sequence[str]) -> list[str]:
    """The documents of extra text files: one per non-empty line (stripped); paths from the launch directory. A
    missing, unreadable, non-UTF-8 or empty file is a one-line DataError."""
    documents: list[str] = []
    for value in paths:
        path = Path(value).expanduser().resolve()
        fix = "give text files with one document per line, e.g. task.denoise.texts=[a.txt,b.txt]"
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            raise DataError(f"task.denoise.texts: {str(path)!r} {what}; {fix}")
        try:
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        except UnicodeDecodeError as exc:
            raise DataError(f"task.denoise.texts: {str(path)!r} is not UTF-8 text; convert it to UTF-8") from exc
        except OSError as exc:
            raise DataError(f"task.denoise.texts: cannot read {str(path)!r} ({exc.strerror}); {fix}") from exc
        found = [line for line in lines if line]
        if not found:
            raise DataError(f"task.denoise.texts: {str(path)!r} holds no text; {fix}")
        documents.extend(found)
    return documents


def pretrained_info(start: Start, tokenizers: Any) -> dict[str, Any]:
    """What the `init_from` run of a text-to-text task was (kept in metrics.json as `pretrained`): its objective, its
    denoising options and documents, how long it trained and its losses, and the tokenizers this run reuses."""
    payload = start.checkpoint or {}
    objective = (run.value(payload, "hyper_parameters.task") or {}).get("objective", "supervised")
    info: dict[str, Any] = {"path": str(start.path), "objective": objective}
    if objective == "denoise":
        info["denoise"] = payload["attnkit"].get("denoise", {})
    info.update(start.record())
    info["tokenizers"] = f"reused ({tokenizers.src.vocab_size:,} tokens{', joint' if tokenizers.joint else ''})"
    return info


def describe_pretrained(info: dict[str, Any]) -> str:
    """One line: the run an `init_from` checkpoint comes from, as `pretrained_info` records it."""
    parts = []
    denoise = info.get("denoise") or {}
    if denoise:
        train = (denoise.get("documents") or {}).get("train")
        extra = denoise.get("extra_documents", 0)
        if train is not None:
            parts.append(f"{train:,} documents" + (f" ({extra:,} from task.denoise.texts)" if extra else ""))
    for key, label in (("epochs", "epochs"), ("steps", "steps")):
        if key in info:
            parts.append(f"{info[key]:,} {label}")
    for key in ("val/loss", "best val/loss", "test/loss"):
        if key in info:
            parts.append(f"{key} {info[key]:.4f}")
    if denoise:
        parts.append(DenoiseOptions.of({k: v for k, v in denoise.items() if k in OPTION_KEYS}).describe())
    kind = "a denoising (self-supervised) run" if info.get("objective") == "denoise" else "a supervised run"
    return f"starts from {kind} ({'; '.join(parts)}), {info['path']}; tokenizers {info.get('tokenizers', 'reused')}"
