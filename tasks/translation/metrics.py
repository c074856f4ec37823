"""Translation metrics: corpus BLEU and chrF from sacreBLEU, on detokenized text, with their signatures."""

from __future__ import annotations

from attnkit.tasks.seq2seq.task import Scorer


class TranslationScorer(Scorer):
    """sacreBLEU's corpus BLEU (13a tokenization, exponential smoothing) and chrF (character 6-grams, β = 2), in
    its default, comparable settings; hypotheses and references are plain detokenized sentences."""

    primary = "bleu"

    def __init__(self) -> None:
        from sacrebleu.metrics import BLEU, CHRF  # lazy: the CLI imports every task at start-up

        self.bleu, self.chrf = BLEU(), CHRF()

    def __call__(self, hypotheses: list[str], references: list[str]) -> dict[str, float]:
        if len(hypotheses) != len(references):
            raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
        if not references:
            return {"bleu": 0.0, "chrf": 0.0}
        refs = [list(references)]
        return {
            "bleu": float(self.bleu.corpus_score(hypotheses, refs).score),
            "chrf": float(self.chrf.corpus_score(hypotheses, refs).score),
        }

    def signatures(self) -> dict[str, str]:
        return {"bleu": str(self.bleu.get_signature()), "chrf": str(self.chrf.get_signature())}
