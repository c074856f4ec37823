"""Lightning glue for sequence classification: batches are `(tokens, padding mask, labels)`."""

from __future__ import annotations

from torch import Tensor

from attnkit.train.classification import ClassifierModule


class SequenceClassifierModule(ClassifierModule):
    """Cross-entropy on a registered sequence classifier `model(tokens [B, N], padding_mask [B, N]) -> [B, C]`;
    throughput is counted in sequences and in (unpadded) tokens."""

    def counted(self, inputs: tuple[Tensor, ...]) -> dict[str, int]:
        tokens, mask = inputs
        return {"sequences": len(tokens), "tokens": int((~mask).sum())}
