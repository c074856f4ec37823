"""The `translation` task: an encoder-decoder trained on text pairs, scored with sacreBLEU BLEU and chrF."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from attnkit.ranges import NonNegativeInt, PositiveFloat
from attnkit.registry import register
from attnkit.tasks.seq2seq.task import Seq2SeqTask
from attnkit.tasks.translation.metrics import TranslationScorer
from attnkit.text.tokenizer import TokenizerOptions


@register("task", "translation")
@dataclass
class TranslationTask(Seq2SeqTask):
    """Translation with an encoder-decoder: BPE tokenizers, label smoothing, beam search, BLEU and chrF.

    The defaults are the measured recipe of the built-in number words (docs/measured/text.md);
    `experiment=multi30k_de_en` changes what a real corpus needs.
    """

    name: ClassVar[str] = "translation"
    title: ClassVar[str] = "translation"
    sample_columns: ClassVar[tuple[str, ...]] = ("source", "reference", "translation")

    lr: PositiveFloat = 2e-3
    warmup_steps: NonNegativeInt = 300
    tokenizer: TokenizerOptions = field(default_factory=lambda: TokenizerOptions(vocab_size=None))

    def scorer(self) -> TranslationScorer:
        return TranslationScorer()
