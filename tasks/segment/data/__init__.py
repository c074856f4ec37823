"""Segmentation data sources for the `segment` task, registered as `data=<name>` when this package is imported.

Sources, one module each (constructor arguments are the config keys, e.g. `data=shapes data.max_shapes=6`):

- `shapes` (default): generated scenes of overlapping shapes (disc, square, triangle, ring, cross) on cluttered
  backgrounds, offline and deterministic per seed; colour never tells the class, shape does.
- `mask_folder`: your own images and label maps, paired by name (`images/` + `masks/`, optionally in train/ val/
  test/ folders) or listed in train.txt / val.txt / test.txt (CamVid's layout); index or colour (palette) masks.
- `hf_masks`: a Hugging Face dataset with an image and a mask column, from the hub or from local files.

Every source returns a `SegmentSplits` from `load()` (`base.py`): uint8 images and int16 label maps (`IGNORE` = not
scored) at the source's `image_size`, normalised when an item is read. Label maps are decoded and checked by
`masks.py` and resized with nearest neighbour; pairs of files are read into splits by `pairs.py`. Heavy libraries
(PIL, datasets) are imported only inside the functions that need them.
"""

from attnkit.tasks.segment.data.base import IGNORE, SegmentData, SegmentDataset, SegmentSplits
from attnkit.tasks.segment.data.hf_masks import HFMaskData
from attnkit.tasks.segment.data.mask_folder import MaskFolderData
from attnkit.tasks.segment.data.masks import MaskFormat
from attnkit.tasks.segment.data.shapes import ShapesData

__all__ = [
    "IGNORE",
    "HFMaskData",
    "MaskFolderData",
    "MaskFormat",
    "SegmentData",
    "SegmentDataset",
    "SegmentSplits",
    "ShapesData",
]
