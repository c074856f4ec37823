"""`data=listops`: nested list operations over digits, generated offline, as in the Long Range Arena (Tay et al. 2021).

An expression such as `[MAX 2 9 [MIN 4 7 ] 0 ]` applies MAX, MIN, MED (the median, rounded down like the LRA's
`int(np.median(...))`) or SM (the sum modulo 10) to digits and nested lists; its value 0-9 is the label. Tokens are
the operators `[MAX [MIN [MED [SM`, the closing `]` and the digits, separated by single spaces.

Generation follows the LRA's tree: the root is at depth 1; a node deeper than the root and above `max_depth` is a
digit with probability 3/4, else a list of 2 to `max_args` arguments (uniform) under a uniform operator; nodes at
`max_depth` are digits. Expressions outside `min_length`..`max_length` tokens and repeats are dropped. Two exact
shortcuts make this fast without changing the distribution of the expressions kept: the root is always a list
(a lone digit, 1 token, is never kept), and a tree is abandoned as soon as the tokens it must still emit take it
past `max_length`. Unlike the LRA script, both length bounds are inclusive. No bias toward the wanted lengths is
needed: with the LRA's max_depth=10 and max_args=10, 18 % of the trees grown from a list have 500..1,000 tokens,
and one core makes about 1,000 such expressions a second (20,000 in 15-25 s on this 2-core machine); the 11,500 of
the defaults are cached. Values are skewed as in the LRA: 0 and 9 (MIN and MAX of many digits) are about 16 % each,
the others 7-10 %.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated

import attnkit
from attnkit.data.checks import check_int
from attnkit.data.messages import one_line
from attnkit.errors import ConfigError, DataError
from attnkit.ranges import PositiveInt, Range, Seed
from attnkit.tasks.classify.labels import majority_baseline
from attnkit.text.pairs import OnLong, TextPairData, TextPairs

OPERATORS = ("[MAX", "[MIN", "[MED", "[SM")
CLOSE = "]"
DIGITS = tuple(str(d) for d in range(10))
LIST_PROBABILITY = 0.25  # the LRA's chance that a node above max_depth is a list rather than a digit
# a draw u in [1/4, 1) picks the digit _DIGIT_OF_DRAW[int(40 u)]: each digit gets 3/40 of it
_DIGIT_OF_DRAW = (-1,) * 10 + tuple(d for d in range(10) for _ in range(3))
SHORTEST = 4  # `[MAX 1 2 ]`
# a generation gives up once this many attempts kept fewer than MIN_ACCEPTANCE of them
GIVE_UP_AFTER, MIN_ACCEPTANCE = 10_000, 0.01
CACHE_VERSION = 1


def _median(values: list[int]) -> int:
    ordered = sorted(values)
    n = len(ordered)
    return (ordered[(n - 1) // 2] + ordered[n // 2]) // 2


APPLY: dict[str, Callable[[list[int]], int]] = {
    "[MAX": max,
    "[MIN": min,
    "[MED": _median,
    "[SM": lambda values: sum(values) % 10,
}
_APPLY_BY_INDEX = tuple(APPLY[op] for op in OPERATORS)


def evaluate(expression: str | Sequence[str]) -> int:
    """The value 0-9 of an expression (a string of space-separated tokens, or the tokens); malformed -> DataError.

    A list needs at least one argument; a bare digit is its own value.
    """
    tokens = expression.split() if isinstance(expression, str) else list(expression)
    stack: list[tuple[str, list[int]]] = []
    result: int | None = None
    for i, token in enumerate(tokens):
        if result is not None:
            raise _malformed(f"token {i} {token!r} follows the end of the expression", expression)
        if token in APPLY:
            stack.append((token, []))
        elif token == CLOSE:
            if not stack:
                raise _malformed(f"token {i} ']' closes no open list", expression)
            op, args = stack.pop()
            if not args:
                raise _malformed(f"token {i} closes the empty list {op} ]", expression)
            value = APPLY[op](args)
            if stack:
                stack[-1][1].append(value)
            else:
                result = value
        elif token in DIGITS:
            if stack:
                stack[-1][1].append(int(token))
            else:
                result = int(token)
        else:
            raise _malformed(f"token {i} {token!r} is not one of {' '.join(OPERATORS)} {CLOSE} 0-9", expression)
    if stack:
        raise _malformed(f"{len(stack)} list(s) left open at the end", expression)
    if result is None:
        raise _malformed("no tokens", expression)
    return result


def _malformed(what: str, expression: str | Sequence[str]) -> DataError:
    text = expression if isinstance(expression, str) else " ".join(expression)
    shown = text if len(text) <= 60 else text[:57] + "..."
    return DataError(f"malformed listops expression ({what}): {shown!r}; write e.g. '[MAX 2 9 [MIN 4 7 ] 0 ]'")


def longest_length(max_depth: int, max_args: int) -> int:
    """Tokens of the longest expression the generator can make: every list full, down to `max_depth` (counted up to
    2**63, beyond any length asked for)."""
    length = 1  # a digit at max_depth
    for _ in range(max_depth - 1):
        length = min(2 + max_args * length, 2**63)
    return length


def check_options(min_length: int, max_length: int, max_depth: int, max_args: int) -> None:
    """One-line ConfigErrors for generator options that are invalid or cannot be met."""
    check_int("min_length", min_length, minimum=SHORTEST)
    check_int("max_length", max_length, minimum=SHORTEST)
    check_int("max_depth", max_depth, minimum=2)
    check_int("max_args", max_args, minimum=2)
    if min_length > max_length:
        raise ConfigError(
            f"data.min_length={min_length} > data.max_length={max_length}; lower data.min_length or raise "
            f"data.max_length"
        )
    longest = longest_length(max_depth, max_args)
    if longest < min_length:
        raise ConfigError(
            f"data.min_length={min_length} is out of reach: with data.max_depth={max_depth} and "
            f"data.max_args={max_args} the longest expression has {longest} tokens; raise data.max_depth or "
            f"data.max_args, or lower data.min_length"
        )


def sample_tree(rng: random.Random, max_depth: int, max_args: int, max_length: int) -> tuple[list[str], int] | None:
    """One LRA tree with a list at the root: (tokens, value), or None once it must exceed `max_length` tokens.

    One uniform draw per argument decides list (below 1/4) or digit (the rest, split evenly into ten).
    """
    draw = rng.random
    spread = max_args - 1  # argument counts 2..max_args
    op, args, depth = int(draw() * 4), 2 + int(draw() * spread), 1
    tokens = [OPERATORS[op]]
    append = tokens.append
    values: list[int] = []
    outer: list[tuple[int, int, list[int]]] = []  # the enclosing lists: operator, arguments left, values so far
    floor = args + 2  # the fewest tokens the finished tree can have, given what is drawn so far
    while True:
        if args == 0:
            append(CLOSE)
            value = _APPLY_BY_INDEX[op](values)
            if not outer:
                return tokens, value
            op, args, values = outer.pop()
            depth -= 1
            values.append(value)
            continue
        args -= 1
        u = draw()
        if depth + 1 < max_depth:
            if u < LIST_PROBABILITY:
                outer.append((op, args, values))
                op, args, values, depth = int(draw() * 4), 2 + int(draw() * spread), [], depth + 1
                floor += args + 1
                if floor > max_length:
                    return None
                append(OPERATORS[op])
                continue
            digit = _DIGIT_OF_DRAW[int(u * 40)]
        else:
            digit = int(u * 10)
        append(DIGITS[digit])
        values.append(digit)


def generate(
    count: int,
    *,
    seed: int | str = 0,
    min_length: int = 500,
    max_length: int = 1000,
    max_depth: int = 10,
    max_args: int = 10,
    exclude: Collection[str] = (),
) -> list[tuple[str, int]]:
    """`count` distinct (expression, value) pairs of `min_length`..`max_length` tokens, not in `exclude`.

    Deterministic per `seed`. A DataError, rather than an endless loop, when fewer than 1 % of 10,000 or more
    attempts give a new expression of the wanted length.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"count={count!r} must be an int >= 1")
    check_options(min_length, max_length, max_depth, max_args)
    rng = random.Random(f"attnkit.listops:{seed}")
    seen = set(exclude)
    kept: list[tuple[str, int]] = []
    attempts = 0
    while len(kept) < count:
        attempts += 1
        tree = sample_tree(rng, max_depth, max_args, max_length)
        if tree is not None and len(tree[0]) >= min_length:
            text = " ".join(tree[0])
            if text not in seen:
                seen.add(text)
                kept.append((text, tree[1]))
        if attempts >= GIVE_UP_AFTER and len(kept) < MIN_ACCEPTANCE * attempts:
            raise DataError(
                f"only {len(kept)} of {attempts} listops trees (max_depth={max_depth}, max_args={max_args}) were new "
                f"expressions of {min_length}..{max_length} tokens; widen data.min_length..data.max_length or "
                f"change data.max_depth / data.max_args (10 and 10 suit 500..2000)"
            )
    return kept


def generate_splits(sizes: Mapping[str, int], *, seed: int = 0, **options: int) -> dict[str, list[tuple[str, int]]]:
    """Splits of distinct expressions, each from its own seed derived from `seed` and the split's name.

    Splits are generated in the order given; each skips the expressions of those before it, so no expression is in
    two splits, and a split keeps its expressions when a later split changes size.
    """
    out: dict[str, list[tuple[str, int]]] = {}
    seen: set[str] = set()
    for split, size in sizes.items():
        check_int(f"{split}_size", size, minimum=1)
        out[split] = generate(size, seed=f"{seed}:{split}", exclude=seen, **options)
        seen.update(text for text, _ in out[split])
    return out


@attnkit.register("data", "listops")
class ListOpsData(TextPairData):
    """ListOps (LRA): pairs (expression, value "0".."9"), `src="expression"`, `tgt="value"`, generated offline.

    `val_size`, `test_size` and `train_size` distinct expressions of `min_length`..`max_length` tokens whose lists
    take 2..`max_args` arguments and nest at most `max_depth` - 1 deep (the LRA's count, its root at depth 1), seeded
    by `seed`; kept in a gzip file under `$ATTNKIT_CACHE/listops` (else `~/.cache/attnkit/listops`, or `cache_dir`)
    keyed by these options. `majority_share` is the baseline to beat. The default lengths (500 to 600 tokens) fit the
    built-in recipe's CPU budget; the LRA's own range is 500 to 2,000 (`data.max_length=2000`).
    """

    src = "expression"
    tgt = "value"

    def __init__(
        self,
        batch_size: PositiveInt = 32,
        max_tokens: PositiveInt | None = None,
        train_size: PositiveInt = 10_000,
        val_size: PositiveInt = 500,
        test_size: PositiveInt = 1000,
        min_length: Annotated[int, Range(4)] = 500,
        max_length: Annotated[int, Range(4)] = 600,
        max_depth: Annotated[int, Range(2)] = 10,
        max_args: Annotated[int, Range(2)] = 10,
        seed: Seed = 0,
        cache_dir: str | None = None,
        on_long: OnLong = "truncate",
        max_source_len: PositiveInt | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, max_tokens=max_tokens, on_long=on_long, max_source_len=max_source_len)
        for key, value in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
            check_int(key, value, minimum=1)
        check_options(min_length, max_length, max_depth, max_args)
        check_int("seed", seed, minimum=0)
        self.sizes = {"val": val_size, "test": test_size, "train": train_size}
        self.options = {
            "min_length": min_length,
            "max_length": max_length,
            "max_depth": max_depth,
            "max_args": max_args,
        }
        self.seed = seed
        self.cache_dir = cache_dir
        self.info: dict[str, object] = {}

    @property
    def majority_share(self) -> float:
        """Test accuracy of always answering the training split's most frequent value: the baseline to beat."""
        return majority_baseline(self.load()).share

    def cache_file(self) -> Path:
        """Where the generated splits are kept, keyed by every option that shapes them."""
        key = json.dumps({"version": CACHE_VERSION, "seed": self.seed, **self.sizes, **self.options}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:20]
        return cache_root(self.cache_dir) / f"listops-{digest}.json.gz"

    def _load(self) -> TextPairs:
        path = self.cache_file()
        splits = _read_cache(path)
        if splits is None:
            start = time.perf_counter()
            generated = generate_splits(self.sizes, seed=self.seed, **self.options)
            splits = {split: [(text, str(value)) for text, value in rows] for split, rows in generated.items()}
            self.info = {"origin": "generated", "generate_s": round(time.perf_counter() - start, 2)}
            _write_cache(path, splits)
        else:
            self.info = {"origin": "cache"}
        self.info["cache"] = str(path)
        return TextPairs(train=splits["train"], val=splits["val"], test=splits["test"], src=self.src, tgt=self.tgt)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v}" for k, v in {**self.sizes, **self.options, "seed": self.seed}.items())
        return f"ListOpsData({options})"


def cache_root(cache_dir: str | None) -> Path:
    """`cache_dir`, else $ATTNKIT_CACHE/listops, else ~/.cache/attnkit/listops."""
    if cache_dir:
        return Path(cache_dir).expanduser().resolve()
    base = os.environ.get("ATTNKIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "attnkit")
    return Path(base) / "listops"


def _read_cache(path: Path) -> dict[str, list[tuple[str, str]]] | None:
    """The cached splits, or None when absent or damaged (then they are generated again)."""
    if not path.is_file():
        return None
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            stored = json.load(f)
        return {split: [(str(text), str(label)) for text, label in stored[split]] for split in ("train", "val", "test")}
    except (OSError, EOFError, ValueError, KeyError, TypeError):
        return None


def _write_cache(path: Path, splits: Mapping[str, Iterable[tuple[str, str]]]) -> None:
    """Write the splits; the file is renamed into place, so a concurrent run never reads half of it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) as f:
            json.dump({split: list(rows) for split, rows in splits.items()}, f)
        os.replace(tmp, path)
    except OSError as exc:
        raise DataError(
            f"cannot write the listops cache {path}: {one_line(exc)}; set data.cache_dir=<writable dir>"
        ) from exc
