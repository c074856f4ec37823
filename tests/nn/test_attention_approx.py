"""Approximate attention kernels (performer, linformer, nystrom): convergence to softmax, masks, config errors."""

from __future__ import annotations

import math

import pytest
import torch
from checks import one_line, reference

import attnkit
from attnkit import ConfigError
from attnkit.nn import MultiHeadAttention
from attnkit.nn.attention.performer import orthogonal_features

APPROX = ["performer", "linformer", "nystrom"]


def build(spec, head_dim: int = 8, heads: int = 2) -> attnkit.nn.Attention:
    # nystrom is not imported by attnkit.nn.attention yet (see its module); importing it here, at run time rather
    # than at collection, registers it without adding it to the generic tests' parametrisation
    import attnkit.nn.attention.nystrom  # noqa: F401, PLC0415

    return attnkit.build_spec("attention", spec, dim=heads * head_dim, heads=heads, head_dim=head_dim).eval()


def qkv(b=2, h=2, nq=10, nk=None, d=8, scale=1.0):
    nk = nq if nk is None else nk
    q = torch.randn(b, h, nq, d) * scale
    k = torch.randn(b, h, nk, d) * scale
    return q, k, torch.randn(b, h, nk, d)


def test_linformer_sizes_its_projection_to_the_model() -> None:
    """A linformer layer projects as many key positions as the model can give it; alone, 512."""
    layer = attnkit.nn.MultiHeadAttention(16, 2, attention="linformer", max_keys=600)
    assert layer.attention.proj_k.shape == (32, 600)
    assert attnkit.build("attention", "linformer").proj_k.shape == (32, 512)
    fixed = attnkit.nn.MultiHeadAttention(16, 2, attention={"name": "linformer", "max_length": 700}, max_keys=600)
    assert fixed.attention.proj_k.shape == (32, 700)


def test_registered_with_flags() -> None:
    build("nystrom")
    assert set(APPROX) <= set(attnkit.available("attention"))
    for name in APPROX:
        cls = attnkit.get("attention", name)
        assert not cls.supports_bias and not cls.supports_weights and cls.supports_cross and cls.supports_key_padding
    assert attnkit.get("attention", "performer").supports_causal
    assert not attnkit.get("attention", "linformer").supports_causal
    assert not attnkit.get("attention", "nystrom").supports_causal
    assert attnkit.registry.defaults("attention", "performer") == {
        "name": "performer",
        "num_features": 64,
        "redraw": False,
        "recurrent": True,
        "head_dim": None,  # context from the multi-head layer
    }
    assert attnkit.registry.defaults("attention", "linformer") == {
        "name": "linformer",
        "proj_dim": 32,
        "max_length": None,  # context: the most keys the layer is given (512 when the layer does not know)
        "dropout": 0.0,
    }
    assert attnkit.registry.defaults("attention", "nystrom") == {
        "name": "nystrom",
        "num_landmarks": 16,
        "pinv_iterations": 6,
    }


# --- performer ----------------------------------------------------------------------------------------------


def test_orthogonal_features_blocks_are_orthogonal() -> None:
    w = orthogonal_features(20, 8)
    assert w.shape == (20, 8)
    for block in (w[:8], w[8:16]):
        unit = block / block.norm(dim=1, keepdim=True)
        torch.testing.assert_close(unit @ unit.T, torch.eye(8), atol=1e-5, rtol=0)


def performer_error(num_features: int, causal: bool, seeds: int = 4) -> float:
    errors = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        attn = build({"name": "performer", "num_features": num_features})
        q, k, v = qkv(scale=0.5)
        allowed = torch.ones(10, 10, dtype=torch.bool).tril() if causal else None
        errors.append((attn(q, k, v, causal=causal) - reference(q, k, v, allowed)).abs().mean().item())
    return sum(errors) / seeds


@pytest.mark.parametrize("causal", [False, True])
def test_performer_error_falls_with_features(causal) -> None:
    errors = [performer_error(m, causal) for m in (16, 256, 4096)]
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.3 * errors[0], errors


def test_performer_causal_with_short_queries_and_padding_matches_full_pass() -> None:
    attn = build("performer")
    q, k, v = qkv()
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[1, 3:5] = True
    full = attn(q, k, v, causal=True, key_padding_mask=mask)
    torch.testing.assert_close(attn(q[:, :, -3:], k, v, causal=True, key_padding_mask=mask), full[:, :, -3:])


def test_performer_padding_equals_dropping_keys() -> None:
    attn = build("performer")
    q, k, v = qkv()
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[:, -4:] = True
    expected = attn(q, k[:, :, :6], v[:, :, :6])
    torch.testing.assert_close(attn(q, k, v, key_padding_mask=mask), expected, atol=1e-5, rtol=1e-5)


def test_performer_is_stable_for_large_inputs() -> None:
    attn = build("performer")
    q, k, v = qkv(scale=30.0)
    q.requires_grad_(True)
    out = attn(q, k, v, causal=True)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(q.grad).all()


def test_performer_redraw() -> None:
    fixed, redrawn = build("performer").train(), build({"name": "performer", "redraw": True}).train()
    q, k, v = qkv()
    torch.testing.assert_close(fixed(q, k, v), fixed(q, k, v), rtol=0, atol=0)
    before = redrawn.projection.clone()
    redrawn(q, k, v)
    assert not torch.equal(before, redrawn.projection)
    redrawn.eval()
    torch.testing.assert_close(redrawn(q, k, v), redrawn(q, k, v), rtol=0, atol=0)
    assert "projection" in fixed.state_dict()


def test_performer_without_head_dim_sizes_lazily() -> None:
    attn = attnkit.build("attention", "performer", num_features=12)
    q, k, v = qkv()
    assert attn(q, k, v).shape == q.shape
    assert attn.projection.shape == (12, 8)


# --- linformer ----------------------------------------------------------------------------------------------


def test_linformer_short_sequences_use_the_first_columns() -> None:
    attn = build({"name": "linformer", "proj_dim": 4, "max_length": 16})
    q, k, v = qkv(nq=3, nk=6)
    e, f = attn.proj_k[:, :6].detach(), attn.proj_v[:, :6].detach()
    scores = q @ (e @ k).transpose(-2, -1) / math.sqrt(8)
    torch.testing.assert_close(attn(q, k, v), torch.softmax(scores, -1) @ (f @ v))
    out = attn(q, k, v)
    out.sum().backward()
    assert attn.proj_k.grad[:, 6:].abs().sum() == 0 and attn.proj_k.grad[:, :6].abs().sum() > 0


def test_linformer_padding_zeroes_keys_and_values() -> None:
    attn = build({"name": "linformer", "proj_dim": 4, "max_length": 16})
    q, k, v = qkv(nk=6)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[:, -2:] = True
    k2, v2 = k.clone(), v.clone()
    k2[:, :, -2:], v2[:, :, -2:] = 0.0, 0.0
    torch.testing.assert_close(attn(q, k, v, key_padding_mask=mask), attn(q, k2, v2))


def test_linformer_too_long_names_the_fix() -> None:
    attn = build({"name": "linformer", "max_length": 8})
    assert attn.max_length == 8
    q, k, v = qkv(nk=9)
    with pytest.raises(ConfigError) as exc:
        attn(q, k, v)
    message = one_line(exc)
    assert "max_length=8" in message and "attention.max_length=9" in message


def test_linformer_max_length_checked_by_vit() -> None:
    tiny = {"image_size": 8, "in_channels": 3, "num_classes": 5, "patch_size": 2, "dim": 16, "depth": 1, "heads": 2}
    with pytest.raises(ConfigError) as exc:
        attnkit.build("model", "vit", **tiny, attention={"name": "linformer", "max_length": 16})
    assert "17" in one_line(exc)


# --- nystrom ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("nq", "nk"), [(8, 8), (5, 8), (8, 3)])
def test_nystrom_exact_when_landmarks_cover_the_sequence(nq, nk) -> None:
    attn = build({"name": "nystrom", "num_landmarks": 8, "pinv_iterations": 20})
    q, k, v = qkv(nq=nq, nk=nk)
    torch.testing.assert_close(attn(q, k, v), reference(q, k, v).float(), atol=1e-4, rtol=1e-4)


def test_nystrom_exact_with_padding() -> None:
    attn = build({"name": "nystrom", "num_landmarks": 8, "pinv_iterations": 20})
    q, k, v = qkv(nq=8, nk=8)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[1, -3:] = True
    mask[0, 2] = True
    expected = reference(q, k, v, ~mask[:, None, None, :]).float()
    torch.testing.assert_close(attn(q, k, v, key_padding_mask=mask), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("n", [7, 30])
def test_nystrom_uneven_segments_and_padding_stay_finite(n) -> None:
    attn = build({"name": "nystrom", "num_landmarks": 4})
    q, k, v = qkv(nq=n)
    q.requires_grad_(True)
    mask = torch.zeros(2, n, dtype=torch.bool)
    mask[1, n // 2 :] = True  # whole segments padded
    out = attn(q, k, v, key_padding_mask=mask)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(q.grad).all()
    assert (out - reference(q, k, v, ~mask[:, None, None, :])).abs().mean() < 0.5


# --- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "word"),
    [
        ({"name": "performer", "num_features": 0}, "num_features"),
        ({"name": "linformer", "proj_dim": -1}, "proj_dim"),
        ({"name": "linformer", "max_length": 0}, "max_length"),
        ({"name": "nystrom", "num_landmarks": 0}, "num_landmarks"),
        ({"name": "nystrom", "pinv_iterations": -1}, "pinv_iterations"),
    ],
)
def test_bad_config_is_one_line(spec, word) -> None:
    with pytest.raises(ConfigError) as exc:
        build(spec)
    assert word in one_line(exc)


@pytest.mark.parametrize("name", ["linformer", "nystrom"])
def test_causal_refused(name) -> None:
    q, k, v = qkv()
    with pytest.raises(ConfigError) as exc:
        build(name)(q, k, v, causal=True)
    one_line(exc)


@pytest.mark.parametrize("name", APPROX)
def test_bias_refused(name) -> None:
    q, k, v = qkv()
    with pytest.raises(ConfigError) as exc:
        build(name)(q, k, v, bias=torch.zeros(1, 2, 10, 10))
    one_line(exc)


@pytest.mark.parametrize("name", APPROX)
def test_layer_with_gqa_and_cross_attention(name) -> None:
    build(name)
    mha = MultiHeadAttention(16, 4, kv_heads=2, attention=name)
    out = mha(torch.randn(2, 3, 16), torch.randn(2, 7, 16))
    assert out.shape == (2, 3, 16) and torch.isfinite(out).all()
