"""What encoder-decoder (text-to-text) tasks share: pair encoding and collation, decoding options, denoising
pretraining, the size rule, the Lightning module and the base task `Seq2SeqTask` with train/test/predict. A concrete
task (translation, summarization) subclasses it with its metrics and registers itself.

Text sources, tokenizers and batching are every text task's and live in `attnkit.text` (importing it registers the
data sources `text_files` and `hf_text`); Lightning loads only when a task runs.
"""

import attnkit.text  # noqa: F401  (registers the text sources, which every text-to-text task reads)
