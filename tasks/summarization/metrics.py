"""Summarization metrics: ROUGE-1, ROUGE-2 and ROUGE-L F1 (rouge-score, Porter stemming), and the lead baseline."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from importlib.metadata import version

from attnkit.tasks.seq2seq.task import Scorer

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


class RougeScorer(Scorer):
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F1 over the examples, in percent, from Google's `rouge-score` with Porter
    stemming (its default tokenizer: lowercase, letters and digits only). ROUGE-L is sentence-level LCS."""

    primary = "rougeL"

    def __init__(self) -> None:
        from rouge_score import rouge_scorer  # lazy: the CLI imports every task at start-up (nltk)

        logging.getLogger("absl").setLevel(logging.WARNING)  # rouge-score announces its tokenizer at INFO
        self.rouge = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)

    def __call__(self, hypotheses: list[str], references: list[str]) -> dict[str, float]:
        if len(hypotheses) != len(references):
            raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
        totals = dict.fromkeys(ROUGE_TYPES, 0.0)
        for hypothesis, reference in zip(hypotheses, references, strict=True):
            scores = self.rouge.score(reference, hypothesis)  # (target, prediction)
            for key in ROUGE_TYPES:
                totals[key] += scores[key].fmeasure
        n = max(len(references), 1)
        return {key: 100.0 * total / n for key, total in totals.items()}

    def signatures(self) -> dict[str, str]:
        text = f"rouge-score {version('rouge-score')}|F1 mean x100|stemmer:porter|tokenizer:default"
        return {"rouge": text}


def lead_length(summaries: Sequence[str]) -> int:
    """N of the lead baseline: the median number of words of the (training) summaries, at least 1."""
    return max(1, round(statistics.median(len(s.split()) for s in summaries))) if summaries else 1


def lead(document: str, words: int) -> str:
    """The first `words` words of a document."""
    return " ".join(document.split()[:words])
