"""What every text task shares: text sources, tokenizers and length-bucketed batching.

- `pairs`: `TextPairs` (train / val / test lists of (source, target) texts), the `TextPairData` base of text sources,
  cleaning and carving of splits; a labelled text is a pair whose target is its label.
- `text_files` (`data=text_files`: JSON lines, CSV or TSV files) and `hf_text` (`data=hf_text`: a Hugging Face
  dataset), registered when this package is imported; `records` reads and maps their rows.
- `plain_text` (`data=text`): plain text for a language model, read from files (`plain`), rows or a Hugging Face
  dataset, split three ways and tokenized losslessly (`lm_tokenizer`: chars, bytes, byte-level BPE) into a
  `stream.TextStream`, the `lm.LMData` that task=lm reads; `windows` cuts its windows.
- `tokenizer`: BPE, word and character tokenizers trained on the training split, cached, or loaded by path.
- `batching`: `LengthBatchSampler`, batches of similar length within a batch size and a token budget.

A task or plugin that reads text imports what it needs from here; `tokenizers` and `datasets` load only when used.
"""

from attnkit.text.batching import LengthBatchSampler
from attnkit.text.hf_text import HFTextData
from attnkit.text.lm import LMData
from attnkit.text.pairs import OnEmpty, OnLong, Pair, TextPairData, TextPairs, carve, clean_pairs, text_pair_source
from attnkit.text.plain_text import TextData
from attnkit.text.stream import TextStream
from attnkit.text.text_files import TextFilesData
from attnkit.text.tokenizer import TextTokenizer, TokenizerOptions, Tokenizers, load_tokenizers

__all__ = [
    "HFTextData",
    "LMData",
    "LengthBatchSampler",
    "OnEmpty",
    "OnLong",
    "Pair",
    "TextData",
    "TextFilesData",
    "TextPairData",
    "TextPairs",
    "TextStream",
    "TextTokenizer",
    "TokenizerOptions",
    "Tokenizers",
    "carve",
    "clean_pairs",
    "load_tokenizers",
    "text_pair_source",
]
