"""The `summarization` task: an encoder-decoder from documents to summaries, scored with ROUGE beside a lead
baseline (the first N words of the document, N = the median training summary length)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar

from attnkit.errors import ConfigError
from attnkit.ranges import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from attnkit.registry import register
from attnkit.tasks.seq2seq.task import Scorer, Seq2SeqTask
from attnkit.tasks.summarization.metrics import RougeScorer, lead, lead_length
from attnkit.text.pairs import TextPairs
from attnkit.text.tokenizer import TokenizerOptions
from attnkit.text.words import Lexicon, non_word_rate
from attnkit.train import run


@register("task", "summarization")
@dataclass
class SummarizationTask(Seq2SeqTask):
    """Summarization with an encoder-decoder: BPE tokenizers, label smoothing, constrained beam search (length
    penalty, `min_len`, `max_len`, `no_repeat_ngram`), ROUGE-1/2/L with stemming beside the lead baseline.

    The defaults are the measured recipe of the built-in match reports (docs/measured/text.md); `min_len` and
    `max_len` count target tokens (EOS not counted); with `max_len_a` 0 the length cap does not grow with the
    document.
    """

    name: ClassVar[str] = "summarization"
    title: ClassVar[str] = "summarization"
    sample_columns: ClassVar[tuple[str, ...]] = ("document", "reference", "summary")
    sample_source_chars: ClassVar[int | None] = 300

    lr: PositiveFloat = 2e-3
    warmup_steps: NonNegativeInt = 300
    beam: PositiveInt = 4
    min_len: NonNegativeInt = 2
    max_len: PositiveInt | None = 32
    max_len_a: NonNegativeFloat = 0.0
    max_len_b: NonNegativeInt = 32
    no_repeat_ngram: NonNegativeInt = 3
    samples: NonNegativeInt = 6
    tokenizer: TokenizerOptions = field(default_factory=lambda: TokenizerOptions(vocab_size=None))

    def scorer(self) -> RougeScorer:
        return RougeScorer()

    def baselines(self, pairs: TextPairs, scorer: Scorer, stages: tuple[str, ...]) -> dict[str, Any]:
        """ROUGE and non-word rate of the lead baseline on each stage (`test/lead_rougeL`, ...) and its length
        (`lead_words`)."""
        words = lead_length([summary for _, summary in pairs.train])
        lexicon = Lexicon.of(text for pair in pairs.train for text in pair)
        out: dict[str, Any] = {}
        for stage in stages:
            split = pairs.split(stage)
            leads, documents = [lead(document, words) for document, _ in split], [document for document, _ in split]
            scores = scorer(leads, [summary for _, summary in split])
            scores["non_word_rate"] = non_word_rate(lexicon, leads, documents)
            out.update({f"{stage}/lead_{key}": value for key, value in scores.items()})
        out["lead_words"] = words
        return out

    def report(self, cfg: dict[str, Any], run_dir: Any, module: Any, setup: Any, metrics: dict, title: str) -> None:
        """The run's report, then one warning line when the model scores below the lead baseline on test."""
        line = below_lead(metrics, len(setup.data.train), copy=bool(getattr(setup.net, "copies_source", False)))
        if line:
            metrics["warnings"] = [*metrics.get("warnings", []), line]
        super().report(cfg, run_dir, module, setup, metrics, title)
        if line:
            print(f"warning: {line}", file=sys.stderr, flush=True)

    def read_inputs(self, value: Any) -> list[str]:
        """One document: the text file `input=path/to/file.txt`, else all of stdin."""
        if value is None:
            if sys.stdin.isatty():
                print("reading one document from stdin; end with Ctrl-D", file=sys.stderr, flush=True)
            text = sys.stdin.read()
            empty = "the document on stdin is empty; pipe in its text, or give input=path/to/document.txt"
        else:
            path = run.user_path(value, "input", "give input=path/to/document.txt, or pipe the document on stdin")
            if not path.is_file():
                raise ConfigError(f"input {str(path)!r} is not a file; give input=path/to/document.txt")
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(f"input {str(path)!r} is not UTF-8 text; convert it to UTF-8") from exc
            empty = f"input {str(path)!r} is empty; give a text file with the document to summarize"
        if not text.strip():
            raise ConfigError(empty)
        return [text]


def below_lead(metrics: dict[str, Any], pairs: int, *, copy: bool) -> str | None:
    """What to say when the test ROUGE-L is below the lead baseline's (None when it is not, or either is missing)."""
    model, baseline = metrics.get("test/rougeL"), metrics.get("test/lead_rougeL")
    if model is None or baseline is None or model >= baseline:
        return None
    tips = ([] if copy else ["copy attention (model.decoder.copy=true)"]) + [
        "pretraining on the documents (task.objective=denoise, then init_from=<that run>)",
        "more epochs (trainer.max_epochs) or a smaller model (model.dim, model.depth) for so few pairs"
        if pairs < 10_000
        else "more epochs (trainer.max_epochs)",
    ]
    return (
        f"the model's test ROUGE-L {model:.2f} is below the lead baseline's {baseline:.2f} "
        f"({pairs:,} training pairs); try {'; '.join(tips)}"
    )
