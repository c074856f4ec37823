"""The kernel contract of `attnkit.nn.attention.base.Attention`: `forward` checks once and calls `attend`; a kernel of
the older form, which overrides `forward` itself, keeps working and is still checked."""

from __future__ import annotations

import pytest
import torch
from checks import one_line
from torch import Tensor

import attnkit
from attnkit import ConfigError
from attnkit.nn import MultiHeadAttention, SoftmaxAttention
from attnkit.nn.attention import Attention, eager_attention

BUILT_IN = [attnkit.get("attention", name) for name in attnkit.available("attention")]


def qkv(nq: int = 5, nk: int = 5) -> tuple[Tensor, Tensor, Tensor]:
    return torch.randn(2, 4, nq, 8), torch.randn(2, 2, nk, 8), torch.randn(2, 2, nk, 8)


class Mean(Attention):
    """The new form: `attend` only, no check of its own. Every query reads the mean value; records its calls."""

    supports_causal = False

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict] = []

    def attend(self, q, k, v, *, key_padding_mask, causal, bias) -> Tensor:
        self.calls.append({"key_padding_mask": key_padding_mask, "causal": causal, "bias": bias})
        return v.mean(dim=2, keepdim=True).repeat_interleave(q.shape[1] // v.shape[1], dim=1).expand_as(q)


class OldForm(Attention):
    """The older form: overrides `forward` and never calls `check`."""

    supports_causal = False

    def forward(self, q, k, v, *, key_padding_mask=None, causal=False, bias=None):
        return torch.zeros_like(q)


class Doubled(SoftmaxAttention):
    """The older form on a built-in: preprocesses, then hands over to the built-in's `forward`."""

    def forward(self, q, k, v, **kwargs):
        return super().forward(q * 2, k, v, **kwargs)


@pytest.mark.parametrize("cls", BUILT_IN, ids=lambda c: c.__name__)
def test_built_in_kernels_implement_attend_only(cls) -> None:
    assert "attend" in vars(cls) and "forward" not in vars(cls)


def test_forward_checks_then_calls_attend_with_its_arguments() -> None:
    kernel = Mean()
    q, k, v = qkv()
    padding = torch.zeros(2, 5, dtype=torch.bool)
    assert kernel(q, k, v, key_padding_mask=padding).shape == q.shape
    assert kernel.calls == [{"key_padding_mask": padding, "causal": False, "bias": None}]
    with pytest.raises(ConfigError) as exc:
        kernel(q, k, v, causal=True)  # supports_causal = False
    assert "cannot mask the future" in one_line(exc)
    with pytest.raises(ConfigError) as exc:
        kernel(q, k[:, :, :3], v)  # k and v of different lengths
    assert "shapes do not match" in one_line(exc)
    with pytest.raises(ConfigError) as exc:
        kernel(q, k, v, need_weights=True)  # supports_weights = False
    assert "cannot return attention weights" in one_line(exc)
    assert len(kernel.calls) == 1  # attend never saw the refused calls


def test_need_weights_reaches_attend_only_when_asked() -> None:
    q, k, v = qkv()
    kernel = attnkit.build("attention", "eager")
    out, weights = kernel(q, k, v, causal=True, need_weights=True)
    expected, expected_weights = eager_attention(q, k, v, causal=True)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(weights, expected_weights)
    torch.testing.assert_close(kernel(q, k, v, causal=True), expected)


def test_a_kernel_with_neither_attend_nor_forward_says_so() -> None:
    class Empty(Attention):
        pass

    with pytest.raises(NotImplementedError, match="Empty implements no attend"):
        Empty()(*qkv())


def test_an_old_form_kernel_still_works_and_is_checked() -> None:
    kernel = OldForm()
    q, k, v = qkv()
    assert torch.equal(kernel(q, k, v), torch.zeros_like(q))
    with pytest.raises(ConfigError) as exc:
        kernel(q, k, v, causal=True)
    assert "cannot mask the future" in one_line(exc)
    with pytest.raises(ConfigError):
        kernel(q[0], k, v)  # not [B, H, N, D]
    layer = MultiHeadAttention(32, 4, kv_heads=2, attention=kernel)
    assert layer(torch.randn(2, 5, 32)).shape == (2, 5, 32)


def test_an_old_form_kernel_on_a_built_in_hands_over_to_it() -> None:
    q, k, v = qkv()
    padding = torch.zeros(2, 5, dtype=torch.bool)
    padding[0, 3:] = True
    expected = SoftmaxAttention()(q * 2, k, v, key_padding_mask=padding, causal=True)
    torch.testing.assert_close(Doubled()(q, k, v, key_padding_mask=padding, causal=True), expected)
    with pytest.raises(ConfigError):
        Doubled()(q, k, v, key_padding_mask=padding[:, :3])  # checked on the way in
