"""Text-pair data sources shared by text-to-text tasks, registered as `data=<name>` when imported.

- `text_files`: local JSON lines, CSV or TSV files, one per split, with configurable source and target fields
  (or the Hugging Face translation layout `{"translation": {"de": ..., "en": ...}}`).
- `hf_text`: a Hugging Face dataset by name (wmt16, opus_books, ...) or local files, with the same mapping.

Every source returns `TextPairs` from `load()` (`base.py`). `datasets` is imported only when `hf_text` loads.
"""

from attnkit.tasks.seq2seq.data.base import TextPairData, TextPairs, carve, clean_pairs
from attnkit.tasks.seq2seq.data.hf_text import HFTextData
from attnkit.tasks.seq2seq.data.text_files import TextFilesData

__all__ = ["HFTextData", "TextFilesData", "TextPairData", "TextPairs", "carve", "clean_pairs"]
