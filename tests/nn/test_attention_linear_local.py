"""Linear (Katharopoulos et al. 2020) and local (sliding-window) attention: formulas, causality, windows, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from checks import one_line

import attnkit
from attnkit import ConfigError
from attnkit.nn import MultiHeadAttention
from attnkit.nn.attention import LinearAttention, LocalAttention, repeat_kv

HEADS, HEAD_DIM = 4, 4


def qkv(b=2, h=HEADS, hkv=None, nq=5, nk=None, d=HEAD_DIM, dtype=torch.float32):
    nk = nq if nk is None else nk
    hkv = h if hkv is None else hkv
    return (
        torch.randn(b, h, nq, d, dtype=dtype),
        torch.randn(b, hkv, nk, d, dtype=dtype),
        torch.randn(b, hkv, nk, d, dtype=dtype),
    )


def causal_allowed(nq: int, nk: int) -> torch.Tensor:
    """Bottom-right aligned: query i is position nk - nq + i."""
    return torch.arange(nk)[None, :] <= torch.arange(nq)[:, None] + (nk - nq)


def softmax_reference(q, k, v, allowed=None):
    q, k, v = q.double(), repeat_kv(k, q.shape[1]).double(), repeat_kv(v, q.shape[1]).double()
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def linear_reference(q, k, v, allowed=None, eps=1e-6):
    """phi(Q)phi(K)ᵀV / (phi(Q)·Σphi(K)) written out quadratically in float64, phi = elu + 1."""
    q, k, v = q.double(), repeat_kv(k, q.shape[1]).double(), repeat_kv(v, q.shape[1]).double()
    a = (F.elu(q) + 1) @ (F.elu(k) + 1).transpose(-2, -1)
    if allowed is not None:
        a = a * allowed
    return (a @ v) / a.sum(dim=-1, keepdim=True).clamp_min(eps)


def test_registered() -> None:
    assert attnkit.get("attention", "linear") is LinearAttention
    assert attnkit.get("attention", "local") is LocalAttention
    assert attnkit.registry.defaults("attention", "linear") == {"name": "linear", "eps": 1e-6, "recurrent": True}
    assert attnkit.registry.defaults("attention", "local") == {"name": "local", "window": 64, "dropout": 0.0}


# --- linear -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("nq", "nk"), [(5, 5), (3, 8)])
@pytest.mark.parametrize("hkv", [HEADS, 2])
def test_linear_equals_formula(nq, nk, hkv) -> None:
    q, k, v = qkv(nq=nq, nk=nk, hkv=hkv)
    out = LinearAttention()(q, k, v)
    torch.testing.assert_close(out.double(), linear_reference(q, k, v), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("nq", "nk"), [(6, 6), (3, 7), (1, 5), (150, 150), (20, 140)])  # > 1 chunk of 64
def test_linear_causal_equals_formula(nq, nk) -> None:
    q, k, v = qkv(nq=nq, nk=nk, hkv=2)
    out = LinearAttention()(q, k, v, causal=True)
    expected = linear_reference(q, k, v, causal_allowed(nq, nk))
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_linear_padding_equals_formula(causal) -> None:
    q, k, v = qkv(nq=7)
    mask = torch.zeros(2, 7, dtype=torch.bool)
    mask[1, -3:] = True
    mask[0, 1] = True
    allowed = ~mask[:, None, None, :]
    if causal:
        allowed = allowed & causal_allowed(7, 7)
    out = LinearAttention()(q, k, v, key_padding_mask=mask, causal=causal)
    torch.testing.assert_close(out.double(), linear_reference(q, k, v, allowed), atol=1e-5, rtol=1e-5)


def test_linear_dead_rows_are_zero() -> None:
    q, k, v = qkv(nq=4)
    q.requires_grad_(True)
    k.requires_grad_(True)
    mask = torch.zeros(2, 4, dtype=torch.bool)
    mask[0, :2] = True  # under a causal mask queries 0 and 1 of batch 0 see nothing
    out = LinearAttention()(q, k, v, key_padding_mask=mask, causal=True)
    assert torch.equal(out[0, :, :2], torch.zeros_like(out[0, :, :2]))
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and torch.isfinite(k.grad).all()


def test_linear_bad_eps() -> None:
    with pytest.raises(ConfigError) as exc:
        attnkit.build_spec("attention", {"name": "linear", "eps": 0.0})
    assert "eps" in one_line(exc)


# --- local --------------------------------------------------------------------------------------------------


def window_allowed(nq: int, nk: int, window: int, causal: bool) -> torch.Tensor:
    pos = torch.arange(nq)[:, None] + (nk - nq)
    dist = torch.arange(nk)[None, :] - pos
    return (dist >= -window) & (dist <= (0 if causal else window))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("hkv", [HEADS, 1])
@pytest.mark.parametrize("window", [7, 64])
def test_local_wide_window_equals_softmax(causal, padded, hkv, window) -> None:
    q, k, v = qkv(nq=7, hkv=hkv)
    mask = None
    if padded:
        mask = torch.zeros(2, 7, dtype=torch.bool)
        mask[1, -2:] = True
        mask[0, 3] = True
    out = LocalAttention(window=window)(q, k, v, key_padding_mask=mask, causal=causal)
    mha = MultiHeadAttention(HEADS * HEAD_DIM, HEADS, kv_heads=hkv, attention="local").eval()
    ref = MultiHeadAttention(HEADS * HEAD_DIM, HEADS, kv_heads=hkv, attention="softmax").eval()
    ref.load_state_dict(mha.state_dict())
    x = torch.randn(2, 7, HEADS * HEAD_DIM)
    torch.testing.assert_close(
        mha(x, causal=causal, key_padding_mask=mask), ref(x, causal=causal, key_padding_mask=mask)
    )
    allowed = torch.ones(1, 1, 7, 7, dtype=torch.bool) if mask is None else ~mask[:, None, None, :]
    if causal:
        allowed = allowed & causal_allowed(7, 7)
    expected = softmax_reference(q, k, v, allowed)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("nq", "nk"), [(11, 11), (4, 11), (1, 11), (20, 20)])
@pytest.mark.parametrize("window", [1, 2, 3, 5])
@pytest.mark.parametrize("causal", [False, True])
def test_local_equals_banded_softmax(nq, nk, window, causal) -> None:
    q, k, v = qkv(nq=nq, nk=nk, hkv=2)
    mask = torch.zeros(2, nk, dtype=torch.bool)
    mask[1, :2] = True
    allowed = window_allowed(nq, nk, window, causal) & ~mask[:, None, None, :]
    out = LocalAttention(window=window)(q, k, v, key_padding_mask=mask, causal=causal)
    expected = softmax_reference(q, k, v, allowed).nan_to_num(0.0)  # rows seeing no key: zeros
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)


def test_local_dead_rows_are_zero_with_finite_grads() -> None:
    q, k, v = qkv(nq=9)
    for t in (q, k, v):
        t.requires_grad_(True)
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[0, 4:] = True  # with window 2, queries 7 and 8 of batch 0 see only padding
    out = LocalAttention(window=2)(q, k, v, key_padding_mask=mask)
    assert torch.equal(out[0, :, 7:], torch.zeros_like(out[0, :, 7:]))
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))
    assert torch.equal(q.grad[0, :, 7:], torch.zeros_like(q.grad[0, :, 7:]))


@pytest.mark.parametrize("window", [0, -3])
def test_local_bad_window(window) -> None:
    with pytest.raises(ConfigError) as exc:
        attnkit.build_spec("attention", {"name": "local", "window": window})
    assert f"window={window}" in one_line(exc)


def test_local_refuses_more_queries_than_keys() -> None:
    q, k, v = qkv(nq=5, nk=3)
    with pytest.raises(ConfigError) as exc:
        LocalAttention()(q, k, v)
    one_line(exc)


def test_local_refuses_cross_attention() -> None:
    mha = MultiHeadAttention(HEADS * HEAD_DIM, HEADS, attention="local")
    with pytest.raises(ConfigError):
        mha(torch.randn(1, 4, HEADS * HEAD_DIM), torch.randn(1, 4, HEADS * HEAD_DIM))


# --- causality of both --------------------------------------------------------------------------------------


CAUSAL = [n for n in attnkit.available("attention") if attnkit.get("attention", n).supports_causal]


@pytest.mark.parametrize("spec", [*CAUSAL, {"name": "local", "window": 3}], ids=lambda s: str(s))
@pytest.mark.parametrize(("nq", "nk"), [(10, 10), (4, 10), (70, 70)])
def test_causal_output_ignores_the_future(spec, nq, nk) -> None:
    """Every causal-capable registered variant: outputs up to position i do not move when later inputs do."""
    attn = attnkit.build_spec("attention", spec, head_dim=HEAD_DIM).eval()
    q, k, v = qkv(nq=nq, nk=nk, hkv=2)
    out = attn(q, k, v, causal=True)
    for i in (0, nq // 2, nq - 2):
        p = nk - nq + i  # the position of query i
        k2, v2 = k.clone(), v.clone()
        k2[:, :, p + 1 :] = torch.randn_like(k2[:, :, p + 1 :]) * 10
        v2[:, :, p + 1 :] = torch.randn_like(v2[:, :, p + 1 :]) * 10
        q2 = q.clone()
        q2[:, :, i + 1 :] = torch.randn_like(q2[:, :, i + 1 :])
        out2 = attn(q2, k2, v2, causal=True)
        torch.testing.assert_close(out2[:, :, : i + 1], out[:, :, : i + 1], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(out2[:, :, i + 1 :], out[:, :, i + 1 :])


@pytest.mark.parametrize("spec", ["linear", {"name": "local", "window": 3}])
def test_layer_cache_decoding_matches_full_pass(spec) -> None:
    mha = MultiHeadAttention(HEADS * HEAD_DIM, HEADS, kv_heads=2, attention=spec).eval()
    x = torch.randn(2, 9, HEADS * HEAD_DIM)
    full = mha(x, causal=True)
    cache: dict = {}
    steps = [mha(x[:, :4], causal=True, cache=cache)]
    steps += [mha(x[:, t : t + 1], causal=True, cache=cache) for t in range(4, 9)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


def test_linear_and_local_scale_linearly() -> None:
    """A long sequence runs without an N x N matrix (8192² floats would be 256 MiB per head)."""
    q, k, v = qkv(b=1, h=1, nq=8192, d=8)
    assert LinearAttention()(q, k, v, causal=True).shape == q.shape
    assert LocalAttention(window=16)(q, k, v, causal=True).shape == q.shape
