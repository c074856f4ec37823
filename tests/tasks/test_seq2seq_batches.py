"""An encoder-decoder's batches: pairs encoded with EOS and length limits, then padded and shifted."""

from __future__ import annotations

import warnings

import pytest
from checks import DE_EN, one_line, text_pairs

from attnkit.data.warning import DataWarning
from attnkit.errors import ConfigError, DataError
from attnkit.tasks.seq2seq.batches import EncodedPairs, collate, encode_splits
from attnkit.text.tokenizer import Tokenizers, load_tokenizers


@pytest.fixture
def tokenizers(tmp_path) -> Tokenizers:
    return load_tokenizers(text_pairs(DE_EN), vocab_size=300, min_frequency=1, cache_dir=str(tmp_path))


def test_encode_splits_adds_eos_and_keeps_texts(tokenizers):
    encoded = encode_splits({"train": DE_EN[:3]}, tokenizers, max_len=None, on_long="truncate")["train"]
    assert isinstance(encoded, EncodedPairs) and len(encoded) == 3
    assert all(s[-1] == tokenizers.src.eos_id for s in encoded.src)
    assert tokenizers.tgt.decode(encoded.tgt) == [en for _, en in DE_EN[:3]]
    assert encoded.references == [en for _, en in DE_EN[:3]] and encoded.sources == [de for de, _ in DE_EN[:3]]


def test_long_sequences_truncated_in_one_warning_or_refused(tokenizers):
    long = [("Ein Hund " * 20, "A dog " * 20), *DE_EN[:2]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoded = encode_splits({"train": long, "test": long[:1]}, tokenizers, max_len=8, on_long="truncate")
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 1
    assert "model.max_len=8" in messages[0] and "train: 1 of 3 sources, 1 targets" in messages[0]
    assert "test: 1 of 1 sources" in messages[0] and "on_long=error" in messages[0]
    assert max(len(s) for s in encoded["train"].src) == 8 and encoded["train"].src[0][-1] == tokenizers.src.eos_id
    assert max(len(t) for t in encoded["train"].tgt) == 7  # BOS + 7 tokens fit 8 positions
    with pytest.raises(DataError) as exc:
        encode_splits({"train": long}, tokenizers, max_len=8, on_long="error")
    message = one_line(exc)
    assert "train source 0" in message and "model.max_len=8" in message and "on_long=truncate" in message


def test_max_source_len_caps_sources_only(tokenizers):
    long = [("Ein Hund " * 20, "A dog " * 5)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoded = encode_splits({"train": long}, tokenizers, max_len=64, max_source_len=6, on_long="truncate")
    (message,) = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert "data.max_source_len=6" in message and "1 of 1 sources, 0 targets" in message
    assert len(encoded["train"].src[0]) == 6 and len(encoded["train"].tgt[0]) > 6
    with pytest.raises(DataError) as exc:
        encode_splits({"train": long}, tokenizers, max_len=64, max_source_len=6, on_long="error")
    assert "data.max_source_len=6" in one_line(exc)
    with pytest.raises(ConfigError) as exc:
        encode_splits({"train": long}, tokenizers, max_len=64, max_source_len=128, on_long="truncate")
    message = one_line(exc)
    assert "data.max_source_len=128 is above model.max_len=64" in message and "raise model.max_len" in message


def test_collate_pads_and_shifts(tokenizers):
    items = [(4, [5, 6, 2], [7, 8, 9]), (9, [5, 2], [7])]
    batch = collate(items, pad_id=0, bos_id=1, eos_id=2)
    assert batch["index"].tolist() == [4, 9]
    assert batch["src"].tolist() == [[5, 6, 2], [5, 2, 0]]
    assert batch["src_mask"].tolist() == [[False, False, False], [False, False, True]]
    assert batch["tgt_in"].tolist() == [[1, 7, 8, 9], [1, 7, 0, 0]]
    assert batch["tgt_out"].tolist() == [[7, 8, 9, 2], [7, 2, 0, 0]]
