"""Semantic segmentation: a ViT encoder whose patch tokens a registered decoder (kind `seg_decoder`) turns into
per-pixel class scores. Importing it registers the model `segmenter` and the decoders `linear` and
`mask_transformer`."""

from attnkit.nn.segmentation import linear, mask_transformer  # noqa: F401  (registration)
from attnkit.nn.segmentation.segmenter import Segmenter

__all__ = ["Segmenter"]
