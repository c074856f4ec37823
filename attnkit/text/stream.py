"""`TextStream`: the `LMData` of a text split three ways, each split tokenized once into one stream of ids."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import Dataset

from attnkit.data.checks import check_int
from attnkit.data.splits import SPLITS
from attnkit.errors import ConfigError, DataError
from attnkit.text.lm_tokenizer import LMTokenizer, counted
from attnkit.text.windows import CoveringWindows, RandomWindows

# what gives a split more text when it is too short for one window
MORE_TEXT = {
    "train": "lower data.val_fraction / data.test_fraction, or give a longer training text",
    "val": "raise data.val_fraction, or give a longer validation text",
    "test": "raise data.test_fraction, or give a longer test text",
}


class TextStream:
    """Texts of train, val and test (`texts`; `origins` says where each came from, for messages), tokenized by
    `tokenizer` (made from the training text). Validation and test texts must hold only symbols the tokenizer knows.
    """

    def __init__(self, texts: Mapping[str, str], tokenizer: LMTokenizer, origins: Mapping[str, str]) -> None:
        for role in ("val", "test"):
            missing = tokenizer.unknown(texts[role])
            if missing:
                raise DataError(
                    f"the {role} split ({origins[role]}) has {len(missing)} character(s) that the training split "
                    f"lacks, so the character vocabulary cannot encode them: {counted(missing)}; set "
                    f"data.tokenizer.kind=bytes (which encodes every text), or move text holding them into training"
                )
        self.tokenizer, self.origins = tokenizer, dict(origins)
        self.vocab_size, self.unit = tokenizer.vocab_size, tokenizer.unit
        self.tokens = {role: torch.from_numpy(tokenizer.ids(texts[role])) for role in SPLITS}
        self.units = {role: tokenizer.units(texts[role]) for role in SPLITS}

    def dataset(self, role: str, context: int, *, seed: int, epoch_offsets: bool) -> Dataset:
        """Windows of `context` tokens of a split: at random offsets per epoch (`epoch_offsets`, for training) or
        covering it, every token scored once (attnkit.text.windows)."""
        if role not in SPLITS:
            raise ConfigError(f"role={role!r} is not a split; choose one of {', '.join(SPLITS)}")
        check_int("context", context, minimum=1)
        tokens = self.tokens[role]
        if len(tokens) <= context:
            unit = "" if self.tokenizer.kind == "bpe" else f" ({self.unit}s)"
            smaller = f"lower task.context to at most {len(tokens) - 1}, or " if len(tokens) > 1 else ""
            raise DataError(
                f"the {role} split ({self.origins[role]}) holds {len(tokens):,} tokens{unit}, fewer than one window "
                f"of task.context={context} needs ({context + 1}); {smaller}{MORE_TEXT[role]}"
            )
        return RandomWindows(tokens, context, seed) if epoch_offsets else CoveringWindows(tokens, context)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def text(self, role: str) -> str:
        """The text of a split (`train`, `val`, `test`), as its tokens decode (what generation's known words come
        from)."""
        return self.decode(self.tokens[role].tolist())

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def units_per_token(self, role: str) -> float:
        """Characters (bytes for `bytes`) per token of a split: 1.0 but for bpe."""
        return self.units[role] / max(1, len(self.tokens[role]))

    def to_state(self) -> dict[str, Any]:
        """What a checkpoint keeps to encode prompts and decode samples without the data
        (`attnkit.text.lm_tokenizer.from_state`)."""
        return self.tokenizer.to_state()
