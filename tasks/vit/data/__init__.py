"""Image-classification data sources for the `vit` task, registered as `data=<name>` when this package is imported.

Sources, one module each (constructor arguments are the config keys, e.g. `data=fashion_mnist data.limit_train=5000`):

- `digits` (default): scikit-learn's 1,797 handwritten digits, 8x8, one channel, offline.
- `fashion_mnist`: the standard Fashion-MNIST IDX files from a directory (Debian: dataset-fashion-mnist).
- `image_folder`: a torchvision-style tree `root/<class>/<image>`, with or without train/val/test subfolders.
- `hf`: a Hugging Face dataset, from the hub or from local files (`imagefolder`, `parquet`, `json`, ...).

Every source returns an `ImageSplits` from `load()`: train/val/test datasets whose items are `(image float32
[C, H, W] normalised with (x - mean) / std, label int64)`, plus the metadata a model and a predictor need
(`base.py`; images are decoded by `images.py`, which also has `read_image` for a single file). Small data is
decoded once into tensors (cheap batches, no worker processes needed); a large image tree or hub dataset is
decoded lazily per item. Heavy libraries (scikit-learn, PIL, torchvision, datasets) are imported only
inside the functions that need them, so importing this package costs nothing at CLI start-up.
"""

from attnkit.tasks.vit.data.base import ImageData, ImageSplits, stratified_split
from attnkit.tasks.vit.data.digits import DigitsData
from attnkit.tasks.vit.data.fashion_mnist import FashionMNISTData
from attnkit.tasks.vit.data.hf import HFImageData
from attnkit.tasks.vit.data.image_folder import ImageFolderData

__all__ = [
    "DigitsData",
    "FashionMNISTData",
    "HFImageData",
    "ImageData",
    "ImageFolderData",
    "ImageSplits",
    "stratified_split",
]
