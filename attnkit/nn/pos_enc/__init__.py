"""Positional encodings: each registers itself under kind `pos_enc`."""

from attnkit.nn.pos_enc.base import PositionalEncoding
from attnkit.nn.pos_enc.learned import Learned
from attnkit.nn.pos_enc.sinusoidal import Sinusoidal, sinusoidal_table

__all__ = ["Learned", "PositionalEncoding", "Sinusoidal", "sinusoidal_table"]
