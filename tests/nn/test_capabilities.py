"""The capability rules: each refusal, at build time (a multi-head layer built for a use) and at call time (a kernel
used directly), for every registered attention, with the config key to change in the message."""

from __future__ import annotations

import pytest
import torch
from checks import one_line
from torch import nn

import attnkit
from attnkit import ConfigError
from attnkit.nn import EncoderBlock, MultiHeadAttention, SoftmaxAttention, capabilities

ATTENTIONS = attnkit.available("attention")
DIM, HEADS = 16, 4


def flag(name: str, capability: str) -> bool:
    return getattr(attnkit.get("attention", name), capability)


class Unpadded(SoftmaxAttention):
    """A kernel without key padding (no built-in lacks it)."""

    supports_key_padding = False


class Short(SoftmaxAttention):
    max_length = 8


def refusal(build) -> str | None:
    """The one-line message `build()` refuses with, or None if it builds."""
    try:
        build()
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message, message
        return message
    return None


# --- heads ----------------------------------------------------------------------------------------------------


def test_head_dim() -> None:
    assert capabilities.head_dim(64, 8) == 8


@pytest.mark.parametrize(("dim", "heads"), [(64, 7), (16, 0), (16, -2)])
def test_heads_must_divide_the_width(dim, heads) -> None:
    with pytest.raises(ConfigError) as exc:
        capabilities.head_dim(dim, heads)
    message = one_line(exc)
    assert message.startswith(f"heads={heads} does not divide the width model.dim={dim}; choose heads among [1, 2, 4")
    assert message.endswith("or change model.dim")


@pytest.mark.parametrize("kv_heads", [0, 3, 8])
def test_kv_heads_must_divide_heads(kv_heads) -> None:
    capabilities.check_kv_heads(HEADS, 2)
    with pytest.raises(ConfigError) as exc:
        capabilities.check_kv_heads(HEADS, kv_heads)
    assert one_line(exc) == f"kv_heads={kv_heads} must divide heads=4; choose one of [1, 2, 4]"


# --- each use, at build time, for every registered attention --------------------------------------------------


@pytest.mark.parametrize("name", ATTENTIONS)
def test_causal_self_attention(name) -> None:
    message = refusal(lambda: MultiHeadAttention(DIM, HEADS, attention=name, causal=True))
    assert (message is None) == flag(name, "supports_causal")
    if message:
        assert message.startswith(f"decoder self-attention must be causal; attention={name} cannot mask the future")


@pytest.mark.parametrize("name", ATTENTIONS)
def test_cross_attention(name) -> None:
    message = refusal(lambda: MultiHeadAttention(DIM, HEADS, attention=name, cross=True, where="cross_attention"))
    assert (message is None) == flag(name, "supports_cross")
    if message:
        assert f"cross_attention={name} cannot be cross-attention" in message
        assert "set cross_attention=softmax" in message


@pytest.mark.parametrize("name", ATTENTIONS)
def test_padded_keys(name) -> None:
    message = refusal(lambda: MultiHeadAttention(DIM, HEADS, attention=name, key_padding=True))
    assert (message is None) == flag(name, "supports_key_padding")


def test_padded_keys_refused() -> None:
    message = refusal(lambda: MultiHeadAttention(DIM, HEADS, attention=Unpadded(), key_padding=True))
    assert message.startswith("attention=Unpadded cannot ignore padded source tokens")
    assert refusal(lambda: MultiHeadAttention(DIM, HEADS, attention=Unpadded())) is None  # no padding: fine


@pytest.mark.parametrize("name", ATTENTIONS)
@pytest.mark.parametrize("pos_enc", attnkit.available("pos_enc"))
def test_score_bias_of_the_encoding(name, pos_enc) -> None:
    encoding = attnkit.build_spec("pos_enc", pos_enc, dim=DIM, heads=HEADS, max_len=16, grid=(3, 5), prefix_tokens=1)
    message = refusal(lambda: MultiHeadAttention(DIM, HEADS, attention=name, pos_enc=encoding))
    assert (message is None) == (encoding.kind != "bias" or flag(name, "supports_bias"))
    if message:
        assert message == (
            f"pos_enc={pos_enc} needs score bias; attention={name} has none "
            f"(choose softmax or eager, or a rotary/absolute encoding)"
        )


@pytest.mark.parametrize("name", ATTENTIONS)
def test_max_keys(name) -> None:
    """A kernel with a fixed length (linformer given attention.max_length) refuses more keys; the others take any."""
    spec = {"name": name, "max_length": 64} if "max_length" in attnkit.registry.defaults("attention", name) else name
    kernel = attnkit.build_spec("attention", spec, dim=DIM, heads=HEADS, head_dim=DIM // HEADS)
    limit = kernel.max_length
    assert refusal(lambda: MultiHeadAttention(DIM, HEADS, attention=spec, max_keys=limit or 10_000)) is None
    message = refusal(lambda: MultiHeadAttention(DIM, HEADS, attention=spec, max_keys=(limit or 10_000) + 1))
    assert (message is None) == (limit is None)


def test_max_keys_refused() -> None:
    message = refusal(
        lambda: MultiHeadAttention(DIM, HEADS, attention=Short(), max_keys=9, where="model.encoder.attention")
    )
    assert message.startswith("model.encoder.attention=Short takes at most 8 keys (max_length=8) but may get 9")
    assert "model.encoder.attention.max_length=9" in message
    assert refusal(lambda: MultiHeadAttention(DIM, HEADS, attention=Short(), max_keys=None)) is None  # unknown


def test_the_first_failing_rule_names_the_config_key() -> None:
    """A decoder self-attention that is neither causal nor biased: the causal rule comes first."""
    alibi = attnkit.build("pos_enc", "alibi", heads=HEADS)
    message = refusal(
        lambda: MultiHeadAttention(
            DIM, HEADS, attention="linformer", causal=True, pos_enc=alibi, where="model.decoder.attention"
        )
    )
    assert message == (
        "decoder self-attention must be causal; model.decoder.attention=linformer cannot mask the future; "
        "set model.decoder.attention=softmax (or another causal attention: eager, linear, local, performer, softmax)"
    )


def test_any_model_built_from_blocks_is_checked() -> None:
    """A model of one's own gets the refusals from its blocks, without a line of checking."""

    class TinyLM(nn.Module):
        def __init__(self, attention: str) -> None:
            super().__init__()
            self.block = EncoderBlock(DIM, HEADS, attention=attention, causal=True, max_keys=32, where="lm")

    assert refusal(lambda: TinyLM("softmax")) is None
    assert refusal(lambda: TinyLM("nystrom")).startswith("decoder self-attention must be causal; lm.attention=nystrom")


# --- at call time: a kernel or layer used directly --------------------------------------------------------------


def qkv(nq: int = 5, nk: int = 5, kv_heads: int = HEADS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.randn(2, HEADS, nq, 4), torch.randn(2, kv_heads, nk, 4), torch.randn(2, kv_heads, nk, 4)


@pytest.mark.parametrize("name", ATTENTIONS)
def test_kernel_refuses_each_call_it_cannot_serve(name) -> None:
    kernel = attnkit.build_spec("attention", name, dim=DIM, heads=HEADS, head_dim=DIM // HEADS).eval()
    q, k, v = qkv()
    calls = {
        "supports_causal": ({"causal": True}, "decoder self-attention must be causal"),
        "supports_bias": ({"bias": torch.zeros(1, HEADS, 5, 5)}, "a bias argument needs score bias"),
    }
    for capability, (kwargs, needle) in calls.items():
        message = refusal(lambda kwargs=kwargs: kernel(q, k, v, **kwargs))
        assert (message is None) == flag(name, capability), capability
        if message:
            assert needle in message and f"attention={name}" in message
    assert "kv_heads=3 must divide heads=4" in refusal(lambda: kernel(*qkv(kv_heads=3)))


def test_kernel_refuses_padded_keys_and_too_many_keys() -> None:
    q, k, v = qkv()
    mask = torch.zeros(2, 5, dtype=torch.bool)
    assert "cannot ignore padded source tokens" in refusal(lambda: Unpadded()(q, k, v, key_padding_mask=mask))
    assert Unpadded()(q, k, v).shape == q.shape
    message = refusal(lambda: Short()(*qkv(nq=1, nk=9)))
    assert "takes at most 8 keys (max_length=8) but may get 9" in message


@pytest.mark.parametrize("name", ATTENTIONS)
def test_layer_refuses_weights_and_cross_it_cannot_serve(name) -> None:
    layer = MultiHeadAttention(DIM, HEADS, attention=name, where="model.attention")
    message = refusal(lambda: layer(torch.randn(1, 3, DIM), need_weights=True))
    assert (message is None) == flag(name, "supports_weights")
    if message:
        assert message == f"model.attention={name} cannot return attention weights; use softmax or eager"
    message = refusal(lambda: layer(torch.randn(1, 3, DIM), torch.randn(1, 4, DIM)))
    assert (message is None) == flag(name, "supports_cross")


def test_layer_causal_defaults_to_its_use() -> None:
    x = torch.randn(1, 5, DIM)
    causal = MultiHeadAttention(DIM, HEADS, causal=True).eval()
    torch.testing.assert_close(causal(x), causal(x, causal=True))
    assert not torch.allclose(causal(x), causal(x, causal=False))


def test_component_name() -> None:
    assert capabilities.component_name(SoftmaxAttention(), "attention") == "softmax"
    assert capabilities.component_name(Short(), "attention") == "Short"
    assert capabilities.component_name(attnkit.build("pos_enc", "alibi", heads=2), "pos_enc") == "alibi"
