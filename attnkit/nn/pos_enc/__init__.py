"""Positional encodings: each registers itself under kind `pos_enc`."""

from attnkit.nn.pos_enc.alibi import Alibi, alibi_slopes
from attnkit.nn.pos_enc.base import PositionalEncoding, image_grid
from attnkit.nn.pos_enc.learned import Learned
from attnkit.nn.pos_enc.none import NoPositions
from attnkit.nn.pos_enc.rope import Rope, rotate_pairs
from attnkit.nn.pos_enc.rope2d import Rope2d
from attnkit.nn.pos_enc.sincos2d import SinCos2d, sincos2d_table
from attnkit.nn.pos_enc.sinusoidal import Sinusoidal, sinusoidal_table
from attnkit.nn.pos_enc.t5 import T5Bias, relative_buckets

__all__ = [
    "Alibi",
    "Learned",
    "NoPositions",
    "PositionalEncoding",
    "Rope",
    "Rope2d",
    "SinCos2d",
    "Sinusoidal",
    "T5Bias",
    "alibi_slopes",
    "image_grid",
    "relative_buckets",
    "rotate_pairs",
    "sincos2d_table",
    "sinusoidal_table",
]
