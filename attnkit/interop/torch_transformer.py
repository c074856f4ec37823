"""`torch.nn.Transformer` into attnkit's encoder–decoder: `transformer_from_torch(nn_transformer, src_vocab, tgt_vocab,
...)` builds the `transformer` with the body of a pre-norm `nn.Transformer`, which has no embeddings, positions or
output projection: those keep attnkit's initialisation unless given (`embeddings={"src_embed.weight": ..., ...}`).
What attnkit's model cannot express exactly is refused with one `ConfigError` line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.interop.rename import split_qkv, zero_missing_biases
from attnkit.interop.transplant import transplant
from attnkit.nn.seq2seq import EncoderDecoder

_TORCH_RENAMES = (
    (r"^encoder\.layers\.(\d+)\.self_attn\.", r"encoder_blocks.\1.attn."),
    (r"^encoder\.layers\.(\d+)\.linear([12])\.", r"encoder_blocks.\1.ffn.fc\2."),
    (r"^encoder\.layers\.(\d+)\.norm([12])\.", r"encoder_blocks.\1.norm\2."),
    (r"^encoder\.norm\.", r"encoder_norm."),
    (r"^decoder\.layers\.(\d+)\.self_attn\.", r"decoder_blocks.\1.self_attn."),
    (r"^decoder\.layers\.(\d+)\.multihead_attn\.", r"decoder_blocks.\1.cross_attn."),
    (r"^decoder\.layers\.(\d+)\.linear([12])\.", r"decoder_blocks.\1.ffn.fc\2."),
    (r"^decoder\.layers\.(\d+)\.norm([123])\.", r"decoder_blocks.\1.norm\2."),
    (r"^decoder\.norm\.", r"decoder_norm."),
)


def torch_transformer_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """An `nn.Transformer` state dict in attnkit's encoder–decoder names (`in_proj_*` split into q/k/v; missing
    biases, from `bias=False`, as zeros). Names are only renamed: whether the layers were pre-norm is not in the
    weights (see `transformer_from_torch`)."""
    out: dict[str, Tensor] = {}
    kept: set[str] = set()
    for name, value in state_dict.items():
        for pattern, replacement in _TORCH_RENAMES:
            if re.match(pattern, name):
                name = re.sub(pattern, replacement, name)
                break
        else:
            out[name] = value
            kept.add(name)
            continue
        if m := re.fullmatch(r"(.*)\.in_proj_(weight|bias)", name):
            split_qkv(out, m[1], m[2], value)
        else:
            out[name] = value
    zero_missing_biases(out, kept)
    return out


def _torch_activation(layer: nn.Module) -> str:
    act = layer.activation
    if act is torch.nn.functional.relu or isinstance(act, nn.ReLU):
        return "relu"
    if act is torch.nn.functional.gelu or (isinstance(act, nn.GELU) and act.approximate == "none"):
        return "gelu"
    raise ConfigError(f"nn.Transformer activation {act!r}: attnkit's mlp maps relu and gelu only")


def transformer_from_torch(
    module: nn.Transformer,
    src_vocab: int,
    tgt_vocab: int,
    *,
    embeddings: Mapping[str, Tensor] | None = None,
    **model_kwargs: Any,
) -> nn.Module:
    """attnkit's encoder–decoder with the body (layers and final norms) of a pre-norm `nn.Transformer`.

    `nn.Transformer(..., norm_first=True)` computes what attnkit's blocks compute; post-norm (`norm_first=False`,
    its default) is refused. Width, heads, depths, `dim_feedforward` (as `ffn.mlp_ratio`), activation (relu, gelu),
    `layer_norm_eps`, dropout and `bias=False` (zero biases) are carried over. `nn.Transformer` has no embeddings,
    positions or output projection: attnkit's keep their initialisation, or come from `embeddings` (attnkit names,
    e.g. `{"src_embed.weight": ..., "tgt_embed.weight": ...}`); `model_kwargs` go to the model (`pos_enc`,
    `max_len`, `scale_embeddings`, `tie_embeddings`, ...). Feed both the same embedded inputs and they agree.
    """
    encoder, decoder = getattr(module, "encoder", None), getattr(module, "decoder", None)
    if not isinstance(encoder, nn.TransformerEncoder) or not isinstance(decoder, nn.TransformerDecoder):
        raise ConfigError("transformer_from_torch takes an nn.Transformer with its own encoder and decoder stacks")
    if encoder.norm is None or decoder.norm is None:
        raise ConfigError("nn.Transformer without final encoder/decoder norms: attnkit's encoder–decoder has both")
    layers = [*encoder.layers, *decoder.layers]
    if not all(isinstance(layer, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)) for layer in layers):
        raise ConfigError("nn.Transformer with custom layers: only TransformerEncoderLayer/DecoderLayer are mapped")
    if not all(layer.norm_first for layer in layers):
        raise ConfigError(
            "nn.Transformer with norm_first=False (post-norm) computes another function than attnkit's pre-norm "
            "blocks; build it with norm_first=True"
        )
    first = encoder.layers[0]
    dim, heads = first.self_attn.embed_dim, first.self_attn.num_heads
    hidden, activation = first.linear1.out_features, _torch_activation(first)
    norms = [
        encoder.norm,
        decoder.norm,
        *(m for layer in layers for m in layer.modules() if isinstance(m, nn.LayerNorm)),
    ]
    eps = norms[0].eps
    for layer in layers:
        attns = [m for m in layer.modules() if isinstance(m, nn.MultiheadAttention)]
        if any(a.embed_dim != dim or a.num_heads != heads or not a._qkv_same_embed_dim for a in attns):
            raise ConfigError("nn.Transformer layers with other widths or heads than the first: not mapped")
        if layer.linear1.out_features != hidden or _torch_activation(layer) != activation:
            raise ConfigError("nn.Transformer layers with other feed-forward widths or activations: not mapped")
    if any(n.eps != eps or not n.elementwise_affine for n in norms):
        raise ConfigError("nn.Transformer with norms of different eps or without weights: not mapped")
    dropout = float(first.dropout.p)
    kwargs = {
        "dim": dim,
        "depth": len(encoder.layers),
        "decoder_depth": len(decoder.layers),
        "heads": heads,
        "dropout": dropout,
        "norm": {"name": "layernorm", "eps": eps},
        "ffn": {"name": "mlp", "mlp_ratio": hidden / dim, "activation": activation, "dropout": dropout},
        **model_kwargs,
    }
    model = EncoderDecoder(src_vocab, tgt_vocab, **kwargs)
    mapped = torch_transformer_state_dict(module.state_dict())
    report = transplant({**mapped, **dict(embeddings or {})}, model)
    body = re.compile(r"(encoder|decoder)_(blocks|norm)\.")
    missing = [n for n in report.reinitialised if body.match(n)]
    if missing or report.dropped:
        left = ", ".join((missing + report.dropped)[:4])
        raise ConfigError(f"nn.Transformer weights do not fill attnkit's body exactly (first: {left})")
    return model.train(module.training)
