"""attnkit.nn: plain PyTorch modules (no Lightning, no Hydra).

Importing it registers the built-in components.
"""

from attnkit.nn import attention, copy, ffn, mixers, norm, pos_enc, segmentation  # noqa: F401  (registration)
from attnkit.nn.attention import Attention, EagerAttention, SoftmaxAttention
from attnkit.nn.block import DecoderBlock, EncoderBlock
from attnkit.nn.classifier import SequenceClassifier
from attnkit.nn.decoder import Decoder
from attnkit.nn.decoding import beam_search, greedy, sample
from attnkit.nn.mixers import Mixer
from attnkit.nn.multihead import MultiHeadAttention
from attnkit.nn.pos_enc import PositionalEncoding
from attnkit.nn.seq2seq import EncoderDecoder
from attnkit.nn.vit import PatchEmbed, ViT

__all__ = [
    "Attention",
    "Decoder",
    "DecoderBlock",
    "EagerAttention",
    "EncoderBlock",
    "EncoderDecoder",
    "Mixer",
    "MultiHeadAttention",
    "PatchEmbed",
    "PositionalEncoding",
    "SequenceClassifier",
    "SoftmaxAttention",
    "ViT",
    "beam_search",
    "greedy",
    "sample",
]
