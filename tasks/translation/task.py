"""The `translation` task: an encoder-decoder trained on text pairs, scored with sacreBLEU BLEU and chrF."""

from __future__ import annotations

from attnkit.registry import register
from attnkit.tasks.seq2seq.task import Seq2SeqTask
from attnkit.tasks.translation.metrics import TranslationScorer


@register("task", "translation")
class TranslationTask(Seq2SeqTask):
    """Translation with an encoder-decoder: BPE tokenizers, label smoothing, beam search, BLEU and chrF."""

    name = "translation"
    title = "translation"
    sample_columns = ("source", "reference", "translation")

    def scorer(self) -> TranslationScorer:
        return TranslationScorer()
