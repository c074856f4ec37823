"""`data=mqar`: multi-query associative recall (Zoology, Arora et al. 2023), generated offline: the default of task=lm.

A sequence of `context` tokens opens with `num_kv_pairs` key–value pairs (keys drawn without repeats from
1 .. vocab_size/2 - 1, values from vocab_size/2 .. vocab_size - 1), then queries each key once, at slots of two
tokens (the key, then its value) placed after the pairs; the gap from the pairs to a query follows Zoology's power law
p(slot j) ∝ (j + 1)^(power_a - 1) (small `power_a`: most queries come soon). Every other position holds a random
token that is not one of the sequence's keys. A target is the next token at a query's key, -100 elsewhere: only the
answers are scored. `answers` is the reference: it recomputes each answer from the tokens alone.

Splits (`train_size`, `val_size`, `test_size` sequences) are deterministic per `seed` and disjoint: test is made
first, then validation without test's sequences, then training without either.
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

import attnkit
from attnkit.data.checks import check_int
from attnkit.errors import ConfigError
from attnkit.ranges import PositiveInt, Range, Seed

IGNORE = -100
ROLES = ("test", "val", "train")  # the order splits are made in: later ones skip the sequences of earlier ones


def answers(tokens: list[int], num_kv_pairs: int) -> dict[int, int]:
    """The reference: {position of a query's key: the value it must be followed by}, from the tokens alone (the
    pairs open the sequence; after them, a key of a pair is a query)."""
    pairs = {tokens[2 * i]: tokens[2 * i + 1] for i in range(num_kv_pairs)}
    return {i: pairs[t] for i, t in enumerate(tokens) if i >= 2 * num_kv_pairs and t in pairs}


def check_options(vocab_size: int, num_kv_pairs: int, context: int, key: str = "data.num_kv_pairs") -> None:
    """One line for a setting that cannot make a sequence: too few keys or values, or too short a context (`key`
    names the setting that asks for `num_kv_pairs`)."""
    check_int("vocab_size", vocab_size, minimum=4)
    check_int("num_kv_pairs", num_kv_pairs, minimum=1)
    keys = vocab_size // 2 - 1
    if num_kv_pairs > keys:
        raise ConfigError(
            f"{key}={num_kv_pairs} needs as many distinct keys, but data.vocab_size={vocab_size} has "
            f"{keys}; raise data.vocab_size to {2 * num_kv_pairs + 2} or more, or lower {key}"
        )
    if context < 4 * num_kv_pairs:
        raise ConfigError(
            f"a context of {context} tokens cannot hold {num_kv_pairs} pairs and their queries (it needs "
            f"{4 * num_kv_pairs}); raise task.context or lower {key}"
        )


def generate(
    count: int, context: int, *, vocab_size: int, num_kv_pairs: int, power_a: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """`count` sequences: (inputs `[count, context]`, targets `[count, context]`, -100 but at the queries' keys)."""
    n, d, half = count, num_kv_pairs, vocab_size // 2
    keys = torch.rand(n, half - 1, generator=generator).argsort(dim=1)[:, :d] + 1
    values = torch.rand(n, vocab_size - half, generator=generator).argsort(dim=1)[:, :d] + half
    seq = torch.zeros(n, context + 1, dtype=torch.long)  # one more: the value of a query at the last position
    seq[:, 0 : 2 * d : 2], seq[:, 1 : 2 * d : 2] = keys, values
    slots = (context + 1 - 2 * d) // 2
    weights = torch.arange(1, slots + 1, dtype=torch.float64) ** (power_a - 1)
    where = 2 * d + 2 * torch.multinomial(weights.expand(n, slots), d, generator=generator)  # [n, d] query positions
    seq.scatter_(1, where, keys)
    seq.scatter_(1, where + 1, values)
    labels = torch.full_like(seq, IGNORE)
    labels.scatter_(1, where + 1, values)
    placed = torch.zeros_like(seq, dtype=torch.bool)
    placed[:, : 2 * d] = True
    placed.scatter_(1, where, True)
    placed.scatter_(1, where + 1, True)
    free = ~placed
    while free.any():  # random filler, never one of the sequence's keys
        seq[free] = torch.randint(0, vocab_size, (int(free.sum()),), generator=generator)
        free = (seq[:, :, None] == keys[:, None, :]).any(-1) & ~placed
    return seq[:, :-1].contiguous(), labels[:, 1:].contiguous()


class MQARSplits:
    """What `data=mqar` loads (attnkit.text.lm.LMData): sequences made on demand for a context, tokens as ids."""

    unit = "token"

    def __init__(self, source: MQARData) -> None:
        self.source, self.vocab_size = source, source.vocab_size
        self._made: dict[int, dict[str, TensorDataset]] = {}

    def splits(self, context: int) -> dict[str, TensorDataset]:
        """Every split at `context` tokens, disjoint (see the module's notes), made once per context."""
        if context not in self._made:
            s = self.source
            check_options(s.vocab_size, s.num_kv_pairs, context)
            generator = torch.Generator().manual_seed(s.seed)
            sizes = {"train": s.train_size, "val": s.val_size, "test": s.test_size}
            seen: set[bytes] = set()
            made: dict[str, TensorDataset] = {}
            for role in ROLES:
                mixed = role == "train" and s.train_pairs is not None
                mix = s.train_pairs if mixed else [s.num_kv_pairs]
                for pairs in mix:
                    check_options(s.vocab_size, pairs, context, "data.train_pairs" if mixed else "data.num_kv_pairs")
                inputs, targets = [], []
                for i, pairs in enumerate(mix):  # an even share of the split for each number of pairs
                    share = sizes[role] * (i + 1) // len(mix) - sizes[role] * i // len(mix)
                    wanted, tries = share, 0
                    while wanted > 0:
                        tries += 1
                        if tries > 20:
                            raise ConfigError(
                                f"data=mqar cannot make {sum(sizes.values())} distinct sequences of {context} tokens "
                                f"with data.vocab_size={s.vocab_size} and {pairs} pairs; lower the split sizes or "
                                f"raise data.vocab_size"
                            )
                        x, y = generate(
                            wanted,
                            context,
                            vocab_size=s.vocab_size,
                            num_kv_pairs=pairs,
                            power_a=s.power_a,
                            generator=generator,
                        )
                        for row_x, row_y in zip(x, y, strict=True):
                            key = row_x.numpy().tobytes()
                            if key not in seen:
                                seen.add(key)
                                inputs.append(row_x)
                                targets.append(row_y)
                                wanted -= 1
                made[role] = TensorDataset(torch.stack(inputs), torch.stack(targets))
            self._made[context] = made
        return self._made[context]

    def dataset(self, role: str, context: int, *, seed: int, epoch_offsets: bool) -> Dataset:
        """The sequences of split `role` at `context` tokens (MQAR's sequences are fixed: `seed` and
        `epoch_offsets` change nothing; the data's own `seed` makes them)."""
        return self.splits(context)[role]

    def decode(self, ids: list[int]) -> str:
        return " ".join(str(i) for i in ids)

    def encode(self, text: str) -> list[int]:
        """Space-separated token ids, each below vocab_size."""
        try:
            ids = [int(t) for t in text.split()]
        except ValueError:
            ids = None
        if not ids or any(not 0 <= i < self.vocab_size for i in ids):
            raise ConfigError(
                f"an MQAR prompt is token ids 0..{self.vocab_size - 1} separated by spaces (e.g. input='3 40 7 51 "
                f"3'); got {text[:40]!r}"
            )
        return ids

    def units_per_token(self, role: str) -> float:
        return 1.0


@attnkit.register("data", "mqar")
class MQARData:
    """Multi-query associative recall (Zoology): `vocab_size` tokens, `num_kv_pairs` pairs per sequence, query gaps
    from a power law of exponent `power_a`, `train_size`/`val_size`/`test_size` sequences from `seed`; the sequence
    length is the task's context (`task.context`). `batch_size` is the training batch. `train_pairs` (e.g.
    [4,8,16]): training sequences with each of these numbers of pairs, in even shares, as Zoology trains on a mixture
    of easier settings; validation and test keep `num_kv_pairs` (null: training does too)."""

    def __init__(
        self,
        batch_size: PositiveInt = 64,
        vocab_size: PositiveInt = 32,
        num_kv_pairs: PositiveInt = 4,
        power_a: Annotated[float, Range(0, 1, low_open=True), "the query-gap exponent"] = 0.01,
        train_pairs: list[PositiveInt] | None = None,
        train_size: PositiveInt = 8192,
        val_size: PositiveInt = 256,
        test_size: PositiveInt = 512,
        seed: Seed = 0,
    ) -> None:
        for key, value in (("batch_size", batch_size), ("train_size", train_size), ("val_size", val_size)):
            check_int(key, value, minimum=1)
        check_int("test_size", test_size, minimum=1)
        check_int("seed", seed, minimum=0)
        check_options(vocab_size, num_kv_pairs, 4 * num_kv_pairs)
        if isinstance(power_a, bool) or not isinstance(power_a, (int, float)) or not 0 < power_a <= 1:
            raise ConfigError(f"data.power_a={power_a!r} must be in (0, 1] (Zoology's query-gap exponent: 0.01)")
        self.batch_size, self.vocab_size, self.num_kv_pairs, self.power_a = (
            batch_size,
            vocab_size,
            num_kv_pairs,
            power_a,
        )
        self.train_size, self.val_size, self.test_size, self.seed = train_size, val_size, test_size, seed
        if train_pairs is not None and (
            not isinstance(train_pairs, (list, tuple))
            or not train_pairs
            or any(isinstance(p, bool) or not isinstance(p, int) or p < 1 for p in train_pairs)
        ):
            raise ConfigError(
                f"data.train_pairs={train_pairs!r} must be a list of pair counts, such as [4,8,16] (null: "
                f"data.num_kv_pairs)"
            )
        for pairs in train_pairs or []:
            check_options(vocab_size, pairs, 4 * pairs, "data.train_pairs")
        self.train_pairs = None if train_pairs is None else [int(p) for p in train_pairs]

    def load(self) -> MQARSplits:
        return MQARSplits(self)
