"""What text-to-text tasks share (translation, summarization): text-pair data sources, BPE tokenizers, batching,
the Lightning module and a base task with train/test/predict. A concrete task subclasses `Seq2SeqTask` with its
metrics and registers itself.

Importing this package registers the data sources `text_files` and `hf_text`; Lightning, tokenizers and datasets
load only when a task runs.
"""

from attnkit.tasks.seq2seq import data  # noqa: F401  (registration)
