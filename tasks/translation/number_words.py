"""`data=number_words`: numbers written out in words, in two languages, generated offline with num2words.

English "ninety-seven thousand, three hundred and forty-five" -> French "quatre-vingt-dix-sept mille trois cent
quarante-cinq": a small, real translation problem (vocabulary, agreement, reordering such as 97 = 4 x 20 + 17)
that a small transformer learns in minutes on a CPU.
"""

from __future__ import annotations

import random

import attnkit
from attnkit.data.checks import check_int
from attnkit.errors import ConfigError
from attnkit.ranges import PositiveInt, Seed
from attnkit.text.pairs import OnLong, TextPairData, TextPairs


@attnkit.register("data", "number_words")
class NumberWordsData(TextPairData):
    """Numbers in words, `src` language -> `tgt` language (num2words codes: en, fr, de, es, it, ...), offline.

    Numbers from 0 to `max_number` are drawn without replacement, as many of each length in digits as possible
    (short numbers are rare among uniform draws), seeded by `seed`; validation and test take `val_size` and
    `test_size` of them and train the next `train_size`, so no number appears in two splits.
    """

    def __init__(
        self,
        batch_size: PositiveInt = 64,
        max_tokens: PositiveInt | None = None,
        src: str = "en",
        tgt: str = "fr",
        max_number: PositiveInt = 999_999,
        train_size: PositiveInt = 12_000,
        val_size: PositiveInt = 500,
        test_size: PositiveInt = 500,
        seed: Seed = 0,
        on_long: OnLong = "truncate",
        max_source_len: PositiveInt | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, max_tokens=max_tokens, on_long=on_long, max_source_len=max_source_len)
        check_int("max_number", max_number, minimum=10)
        for key, value in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
            check_int(key, value, minimum=1)
        if train_size + val_size + test_size > max_number + 1:
            raise ConfigError(
                f"data.train_size + val_size + test_size = {train_size + val_size + test_size} distinct numbers "
                f"do not fit in 0..{max_number}; raise data.max_number or lower the sizes"
            )
        self.src, self.tgt, self.max_number, self.seed = str(src), str(tgt), max_number, seed
        self.sizes = {"val": val_size, "test": test_size, "train": train_size}

    def _load(self) -> TextPairs:
        from num2words import CONVERTER_CLASSES, num2words  # lazy: the CLI imports every data source at start

        for role, lang in (("src", self.src), ("tgt", self.tgt)):
            if lang not in CONVERTER_CLASSES:
                available = ", ".join(sorted(CONVERTER_CLASSES))
                raise ConfigError(f"data.{role}={lang!r} is not a num2words language; available: {available}")
        numbers = draw_numbers(self.max_number, sum(self.sizes.values()), self.seed)
        splits, start = {}, 0
        for split, size in self.sizes.items():
            chosen = numbers[start : start + size]
            splits[split] = [(num2words(n, lang=self.src), num2words(n, lang=self.tgt)) for n in chosen]
            start += size
        return TextPairs(train=splits["train"], val=splits["val"], test=splits["test"], src=self.src, tgt=self.tgt)


def draw_numbers(max_number: int, count: int, seed: int) -> list[int]:
    """`count` distinct numbers in 0..`max_number`, spread evenly over lengths in digits, in a seeded order."""
    rng = random.Random(seed)
    buckets = []
    for digits in range(1, len(str(max_number)) + 1):
        low = 0 if digits == 1 else 10 ** (digits - 1)
        buckets.append(range(low, min(10**digits - 1, max_number) + 1))
    quotas = [0] * len(buckets)
    left = count
    open_buckets = list(range(len(buckets)))
    while left > 0 and open_buckets:  # an equal share each; what a short bucket cannot hold goes to the others
        share = max(1, left // len(open_buckets))
        for i in list(open_buckets):
            take = min(share, len(buckets[i]) - quotas[i], left)
            quotas[i] += take
            left -= take
            if quotas[i] == len(buckets[i]):
                open_buckets.remove(i)
    numbers = [n for bucket, quota in zip(buckets, quotas, strict=True) for n in rng.sample(bucket, quota)]
    rng.shuffle(numbers)
    return numbers
