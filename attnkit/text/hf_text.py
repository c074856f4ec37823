"""`data=hf_text`: text pairs from a Hugging Face dataset, from the hub or from local files."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attnkit
from attnkit.data.checks import check_choice, check_fractions, check_int
from attnkit.data.hf import HFDataset, first_file
from attnkit.ranges import PositiveInt, Rate, Seed
from attnkit.text.pairs import OnEmpty, OnLong, TextPairData, TextPairs, carve
from attnkit.text.records import rows_to_pairs

# data_files extension -> Hugging Face builder, when `dataset` is not given
BUILDERS = ((".jsonl", "json"), (".json", "json"), (".csv", "csv"), (".tsv", "csv"), (".parquet", "parquet"))


@attnkit.register("data", "hf_text")
class HFTextData(TextPairData):
    """Text pairs from a Hugging Face dataset (`dataset=wmt16 config_name=de-en src=de tgt=en`) or local files.

    `src` and `tgt` name the texts, as keys under `pair_field` (the translation layout
    `{"translation": {"de": ..., "en": ...}}` of wmt16, opus_books, iwslt2017) or as columns. Splits
    `train_split`, `val_split`, `test_split` are used when present; a missing one is carved from train
    (`val_fraction`, `test_fraction`, `split_seed`). `dataset` may also be a builder (`json`, `csv`,
    `parquet`) for `data_files`; with only `data_files` it follows their extension. Hub datasets need a network
    (or their cache with HF_HUB_OFFLINE=1); `cache_dir` overrides the Hugging Face cache.
    """

    def __init__(
        self,
        batch_size: PositiveInt = 64,
        max_tokens: PositiveInt | None = None,
        dataset: str | None = None,
        config_name: str | None = None,
        data_dir: str | None = None,
        data_files: str | list[str] | dict[str, str] | None = None,
        src: str = "source",
        tgt: str = "target",
        pair_field: str | None = "translation",
        train_split: str = "train",
        val_split: str | None = "validation",
        test_split: str | None = "test",
        val_fraction: Rate = 0.05,
        test_fraction: Rate = 0.05,
        split_seed: Seed = 0,
        limit_train: PositiveInt | None = None,
        on_empty: OnEmpty = "skip",
        on_long: OnLong = "truncate",
        max_source_len: PositiveInt | None = None,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, max_tokens=max_tokens, on_long=on_long, max_source_len=max_source_len)
        check_choice("on_empty", on_empty, ("skip", "error"))
        check_fractions(val_fraction, test_fraction, items="pairs")
        if limit_train is not None:
            check_int("limit_train", limit_train, minimum=1)
        self.hub = HFDataset(
            "hf_text",
            BUILDERS,
            dataset=dataset,
            config_name=config_name,
            data_dir=data_dir,
            data_files=data_files,
            train_split=train_split,
            val_split=val_split,
            test_split=test_split,
            cache_dir=cache_dir,
        )
        self.src, self.tgt, self.pair_field = str(src), str(tgt), pair_field
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.limit_train, self.on_empty = limit_train, on_empty

    def _load(self) -> TextPairs:
        builder, loaded, chosen = load_text_dataset(
            self.hub,
            "data.dataset=<hub name, e.g. wmt16> (with data.config_name=de-en) or data.data_files=path/to/train.jsonl",
        )
        parts = {}
        for split, name in chosen.items():
            parts[split] = rows_to_pairs(
                table_rows(loaded[name], self.pair_field, (self.src, self.tgt)),
                src=self.src,
                tgt=self.tgt,
                pair_field=self.pair_field,
                where=f"dataset {builder!r} split {name!r}",
                on_empty=self.on_empty,
            )
        split = carve(parts, self.val_fraction, self.test_fraction, self.split_seed)
        train = split["train"][: self.limit_train] if self.limit_train else split["train"]
        return TextPairs(train=train, val=split["val"], test=split["test"], src=self.src, tgt=self.tgt)


def load_text_dataset(hub: HFDataset, example: str) -> tuple[str, Mapping[str, Any], dict[str, str]]:
    """The builder of a text source's dataset (`example`: the settings that would name one, for the message when
    none is given), its loaded splits and which of them play train, val and test; .tsv files are read with tabs."""
    builder = hub.builder(example)
    files = hub.data_files
    tsv = builder == "csv" and files is not None and first_file(files).endswith(".tsv")
    loaded, chosen = hub.load(builder, **({"delimiter": "\t"} if tsv else {}))
    return builder, loaded, chosen


def table_rows(table: Any, pair_field: str | None, keys: tuple[str, ...]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(`row N`, row) with only the columns needed (a column read is much faster than row-by-row access)."""
    columns = list(table.column_names)
    if pair_field and pair_field in columns:
        for i, value in enumerate(table[pair_field]):
            yield f"row {i}", {pair_field: value}
        return
    present = [k for k in keys if k in columns]
    if len(present) < len(keys):  # let `pick` name the missing column and list the available ones
        first = table[0] if len(table) else {}
        yield "row 0", dict(first) or {c: None for c in columns}
        return
    for i, values in enumerate(zip(*(table[k] for k in keys), strict=True)):
        yield f"row {i}", dict(zip(keys, values, strict=True))
