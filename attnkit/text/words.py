"""Real words in generated text: what a word is, which words are known, how many generated words are not, and a
decoding constraint that lets a hypothesis finish a word only if the word is known.

A word is a maximal run of letters, compared in lower case after NFKC normalisation: "Don't stop at 10am!" holds
the words don, t, stop, at and am. Digits, punctuation, symbols and spaces are not words; they are always allowed
and they end the word before them. This assumes a script whose words are runs of letters (Latin, Greek, Cyrillic,
Arabic, ...); in a script written without spaces (Chinese, Japanese) a "word" is a whole run of characters.

Known words (`Lexicon`) are those of the training texts (sources and targets) plus those of the input being
summarized or translated, so a name copied from the source is a word. `non_word_rate` measures; `WordConstraint`,
given to `attnkit.nn.decoding`'s searches as `allowed`, prevents.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from attnkit.errors import ConfigError

WORD = re.compile(r"[^\W\d_]+")  # a run of letters: word characters that are not digits or underscores
END = ""  # the key of a trie node that marks the end of a word
MARKS = ("«", "»")  # how samples show a non-word


def normal(text: str) -> str:
    """The form words are compared in: NFKC, lower case."""
    return unicodedata.normalize("NFKC", text).lower()


def words(text: str) -> list[str]:
    """The words of `text`, in order, normalised (`normal`)."""
    return WORD.findall(normal(text))


class Lexicon:
    """The known words of some texts (a frozenset of normalised words)."""

    def __init__(self, known: Iterable[str]) -> None:
        self.known = frozenset(known)

    @classmethod
    def of(cls, texts: Iterable[str]) -> Lexicon:
        """The words of `texts` (e.g. the sources and targets of the training split)."""
        known: set[str] = set()
        for text in texts:
            known.update(words(text))
        return cls(known)

    def __len__(self) -> int:
        return len(self.known)

    def to_state(self) -> list[str]:
        """What a checkpoint stores: the sorted words."""
        return sorted(self.known)

    def non_words(self, text: str, source: str = "") -> list[str]:
        """The words of `text` that are neither known nor words of `source`, in order (repeats included)."""
        found = words(text)
        unknown = [w for w in found if w not in self.known]
        if unknown and source:
            given = set(words(source))
            unknown = [w for w in unknown if w not in given]
        return unknown

    def mark(self, text: str, source: str = "") -> str:
        """`text` with each non-word between « and »: "ferrar «ulhaul»'s"."""
        bad = set(self.non_words(text, source))
        if not bad:
            return text
        return WORD.sub(lambda m: f"{MARKS[0]}{m[0]}{MARKS[1]}" if normal(m[0]) in bad else m[0], text)


def non_word_rate(lexicon: Lexicon, outputs: Sequence[str], sources: Sequence[str]) -> float:
    """The share of the words of `outputs` that are not words of the lexicon or of their own source (0 without
    words)."""
    total = bad = 0
    for output, source in zip(outputs, sources, strict=True):
        total += len(words(output))
        bad += len(lexicon.non_words(output, source))
    return bad / total if total else 0.0


# -- the decoding constraint ------------------------------------------------------------------------------------


def _trie(known: Iterable[str]) -> dict[str, Any]:
    """A character trie: nested dicts, `END` marks a word's last character."""
    root: dict[str, Any] = {}
    for word in known:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[END] = True
    return root


def _walk(node: dict[str, Any] | None, text: str) -> dict[str, Any] | None:
    for ch in text:
        if node is None:
            return None
        node = node.get(ch)
    return node


@dataclass
class _Piece:
    """What a token does to the word being written, from its decoded text (normalised): `head` letters extend it;
    a piece with a non-letter (`ends`) finishes it, every letter run between its non-letters (`middle`) is a whole
    word, and `tail` letters start the next one."""

    head: str
    ends: bool
    middle: tuple[str, ...] = ()
    tail: str = ""


def _piece(text: str) -> _Piece:
    runs = [(m.start(), m.end()) for m in WORD.finditer(text)]
    if not text or runs == [(0, len(text))]:
        return _Piece(text, ends=False)
    head = text[: runs[0][1]] if runs and runs[0][0] == 0 else ""
    tail = text[runs[-1][0] :] if runs and runs[-1][1] == len(text) and (runs[-1][0] > 0 or not head) else ""
    inner = [text[a:b] for a, b in runs if not (a == 0 and head) and not (b == len(text) and tail)]
    return _Piece(head, ends=True, middle=tuple(inner), tail=tail)


def piece_texts(tokenizer: Any) -> list[str | None]:
    """The text each id adds when decoded after another piece (None for special tokens), for a `TextTokenizer`:
    " word" for a piece that starts a word, "ing" for one that continues it, "," for punctuation."""
    inner = tokenizer.tokenizer
    size = tokenizer.vocab_size
    tokens: list[str | None] = [None] * size
    for token, index in inner.get_vocab(with_added_tokens=True).items():
        if index < size:
            tokens[index] = token
    special = {i for i, added in inner.get_added_tokens_decoder().items() if added.special}
    decoder = inner.decoder
    texts: list[str | None] = []
    anchor = "a"
    base = decoder.decode([anchor]) if decoder is not None else anchor
    for index, token in enumerate(tokens):
        if token is None or index in special:
            texts.append(None)
        elif decoder is None:  # word tokenizers: tokens are joined with spaces
            texts.append(" " + token)
        else:
            both = decoder.decode([anchor, token])
            texts.append(both[len(base) :] if both.startswith(base) else " " + both)
    return texts


@dataclass
class _Source:
    """The words one source adds to the lexicon, and which ending pieces that allows."""

    known: frozenset[str]
    trie: dict[str, Any]
    ending: Tensor  # [V] bool: the pieces that may follow a finished word
    continuations: dict[str, list[int]] = field(default_factory=dict)


class WordConstraint:
    """`allowed(tokens, src)` for `attnkit.nn.decoding`: a hypothesis may finish a word (with a space, punctuation,
    a digit or the end token) only if the word is in the lexicon or in its source, and may add letters to a word only
    while some known word starts with them.

    The state of a hypothesis is the word it is writing, read back from its last tokens; so the constraint depends
    on the tokens alone, and cached and uncached decoding agree. The lexicon is a character trie; the pieces that
    continue a word are found by walking it together with a trie of the pieces' letters, once per word prefix.
    `texts`: what each token id adds when decoded after another piece (None: never written; `piece_texts`),
    `eos_id` the end token's id (negative: none); `read_source` gives the text of a source's ids (None: sources add
    no words); `prompted`: the source is the text being continued (a language model's prompt), so a word may begin
    in it. `for_tokenizers` makes one for a text-to-text task's tokenizers.
    """

    def __init__(
        self,
        texts: Sequence[str | None],
        lexicon: Lexicon,
        *,
        eos_id: int = -1,
        read_source: Callable[[list[int]], str] | None = None,
        prompted: bool = False,
    ) -> None:
        self.lexicon, self.read_source, self.prompted = lexicon, read_source, prompted
        self.size = len(texts)
        self.pieces: list[_Piece | None] = [
            _Piece("", ends=True) if i == eos_id else (None if t is None else _piece(normal(t)))
            for i, t in enumerate(texts)
        ]
        if all(p is None or (p.ends and not p.head and not p.middle and not p.tail) for p in self.pieces):
            raise ConfigError(
                "task.words=real needs a tokenizer whose pieces spell words; this one decodes none; set task.words=free"
            )
        self.trie = _trie(lexicon.known)
        self.piece_trie: dict[str, Any] = {}  # letters of the continuing pieces; END holds their ids
        for i, p in enumerate(self.pieces):
            if p is not None and not p.ends:
                _walk_make(self.piece_trie, p.head).setdefault(END, []).append(i)
        self.slow = [i for i, p in enumerate(self.pieces) if p is not None and p.ends and p.head]  # rare
        ending = [self._ends_ok(p, self.lexicon.known, self.trie) for p in self.pieces]
        self.ending = torch.tensor(ending)
        # ending pieces the lexicon refuses (a tail or inner word it lacks), which a source's words may allow
        self.refused = [
            i for i, p in enumerate(self.pieces) if p is not None and p.ends and not p.head and not ending[i]
        ]
        self.nothing = torch.zeros(self.size, dtype=torch.bool)
        self._cont: dict[str, Tensor] = {}  # word prefix -> [V] bool: the continuing pieces the lexicon allows
        self._sources: dict[tuple[int, ...], _Source] = {}

    @classmethod
    def for_tokenizers(cls, tokenizer: Any, lexicon: Lexicon, src_tokenizer: Any | None = None) -> WordConstraint:
        """The constraint for a target `TextTokenizer` whose sources `src_tokenizer` (None: the same) encodes."""
        source = src_tokenizer or tokenizer
        return cls(
            piece_texts(tokenizer), lexicon, eos_id=tokenizer.eos_id, read_source=lambda ids: source.decode([ids])[0]
        )

    # -- pieces against a lexicon --------------------------------------------------------------------------------

    @staticmethod
    def _ends_ok(p: _Piece | None, known: frozenset[str], trie: dict[str, Any], extra: _Source | None = None) -> bool:
        """Whether an ending piece without head letters may follow a finished word: its inner words known, its tail
        the start of a known word."""
        if p is None or not p.ends or p.head:
            return False
        inner_ok = all(w in known or (extra is not None and w in extra.known) for w in p.middle)
        tail_ok = not p.tail or _walk(trie, p.tail) is not None
        if not tail_ok and extra is not None:
            tail_ok = _walk(extra.trie, p.tail) is not None
        return inner_ok and tail_ok

    def _continuations(self, node: dict[str, Any] | None) -> list[int]:
        """The ids of the continuing pieces whose letters, added at trie `node`, stay inside the trie."""
        out: list[int] = []
        if node is None:
            return out
        stack = [(node, self.piece_trie)]
        while stack:
            word, piece = stack.pop()
            out.extend(piece.get(END, ()))
            for ch, child in piece.items():
                if ch != END and ch in word:
                    stack.append((word[ch], child))
        return out

    def _source(self, src: Sequence[int]) -> _Source:
        """The words of one source (token ids, cached by them) that the lexicon lacks; a last word that ends the
        text may be cut (a truncated source, a prompt being continued) and does not count."""
        key = tuple(src)
        found = self._sources.get(key)
        if found is not None:
            return found
        if len(self._sources) > 4096:
            self._sources.clear()
        text = self.read_source(list(key)) if key and self.read_source is not None else ""
        found = words(text)
        if found and WORD.match(normal(text[-1:])):  # a source cut mid-word (truncated), or a prompt being continued
            found.pop()
        new = frozenset(w for w in found if w not in self.lexicon.known)
        source = _Source(new, _trie(new), self.ending)
        if new:
            allowed = [i for i in self.refused if self._ends_ok(self.pieces[i], self.lexicon.known, self.trie, source)]
            if allowed:
                source.ending = self.ending.clone()
                source.ending[allowed] = True
        self._sources[key] = source
        return source

    # -- the state of a hypothesis -------------------------------------------------------------------------------

    def current(self, tokens: Sequence[int], before: Sequence[int] = ()) -> str:
        """The word being written at the end of `tokens` (normalised letters; "" between words). `before`: tokens
        that precede them (a prompt) and may hold the word's beginning."""
        parts: list[str] = []
        for seq in (tokens, before):
            for token in reversed(seq):
                p = self.pieces[token] if 0 <= token < self.size else None
                if p is None:
                    continue
                if p.ends:
                    parts.append(p.tail)
                    return "".join(reversed(parts))
                parts.append(p.head)
        return "".join(reversed(parts))

    def _known(self, word: str, source: _Source) -> bool:
        return not word or word in self.lexicon.known or word in source.known

    def __call__(self, tokens: Tensor, src: Tensor | None) -> Tensor:
        """`[R, V]` bool: the tokens each hypothesis (`tokens` `[R, t]`, its source row `src` `[R, Ns]`) may take."""
        rows = tokens.shape[0]
        if not rows:
            return torch.zeros(0, self.size, dtype=torch.bool, device=tokens.device)
        hyps = tokens.tolist()
        sources = src.tolist() if src is not None else [[] for _ in range(rows)]
        ending, continuing, row_ids, col_ids = [], [], [], []
        for r in range(rows):
            source = self._source(sources[r])
            word = self.current(hyps[r], sources[r] if self.prompted else ())
            ending.append(source.ending if self._known(word, source) else self.nothing)
            continuing.append(self._continuing(word))
            extra = self._source_continuing(word, source) if source.known else []
            for i in self.slow:  # ending pieces with letters first: they finish `word` + their head
                p = self.pieces[i]
                if self._known(word + p.head, source) and self._ends_ok(
                    _Piece("", True, p.middle, p.tail), self.lexicon.known, self.trie, source
                ):
                    extra.append(i)
            row_ids.extend([r] * len(extra))
            col_ids.extend(extra)
        mask = torch.stack(ending) | torch.stack(continuing)
        if col_ids:
            mask[torch.tensor(row_ids), torch.tensor(col_ids)] = True
        return mask.to(tokens.device)

    def _continuing(self, word: str) -> Tensor:
        """`[V]` bool: the continuing pieces the lexicon allows after `word` (cached per word)."""
        found = self._cont.get(word)
        if found is None:
            if len(self._cont) > 20000:
                self._cont.clear()
            found = self._cont[word] = self.nothing.clone()
            found[self._continuations(_walk(self.trie, word))] = True
        return found

    def _source_continuing(self, word: str, source: _Source) -> list[int]:
        """The continuing pieces a source's own words allow after `word`."""
        extra = source.continuations.get(word)
        if extra is None:
            extra = source.continuations[word] = self._continuations(_walk(source.trie, word))
        return list(extra)

    def trim(self, ids: list[int], src: Sequence[int] = ()) -> list[int]:
        """`ids` without a last word left unfinished (cut by the length limit): the tokens back to where it began."""
        source = self._source(src)
        word = self.current(ids, src if self.prompted else ())
        if self._known(word, source):
            return ids
        end = len(ids)
        while end > 0:
            p = self.pieces[ids[end - 1]] if 0 <= ids[end - 1] < self.size else None
            end -= 1
            if p is not None and p.ends:
                break
        return ids[:end]


def _walk_make(node: dict[str, Any], text: str) -> dict[str, Any]:
    for ch in text:
        node = node.setdefault(ch, {})
    return node
