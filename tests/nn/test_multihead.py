"""Options of the multi-head layer that apply to every attention variant: qk_norm, attention dropout, and the
positional encoding it is fed by."""

from __future__ import annotations

import inspect

import pytest
import torch
from checks import one_line, reference

import attnkit
from attnkit import AttnkitError, ConfigError
from attnkit.nn import MultiHeadAttention
from attnkit.nn.multihead import held_stacks

ATTENTIONS = attnkit.available("attention")
DIM, HEADS = 16, 4
WITH_DROPOUT = [n for n in ATTENTIONS if "dropout" in inspect.signature(attnkit.get("attention", n)).parameters]


@pytest.mark.parametrize("norm", attnkit.available("norm"))
def test_qk_norm_normalises_each_heads_queries_and_keys(norm) -> None:
    torch.manual_seed(0)
    layer = MultiHeadAttention(DIM, HEADS, attention="eager", qk_norm=norm).eval()
    with torch.no_grad():
        layer.q_norm.weight.uniform_(0.5, 1.5)
        layer.k_norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 6, DIM)
    split = lambda t: t.unflatten(-1, (HEADS, DIM // HEADS)).transpose(1, 2)  # noqa: E731
    q, k, v = split(layer.q_proj(x)), split(layer.k_proj(x)), split(layer.v_proj(x))
    expected = reference(layer.q_norm(q), layer.k_norm(k), v).float()
    expected = layer.out_proj(expected.transpose(1, 2).flatten(2))
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    assert layer.q_norm is not layer.k_norm
    # the per-head norms see head_dim features
    assert sum(p.numel() for p in layer.q_norm.parameters()) in (DIM // HEADS, 2 * (DIM // HEADS))


@pytest.mark.parametrize("name", ATTENTIONS)
def test_qk_norm_with_every_attention(name) -> None:
    layer = MultiHeadAttention(DIM, HEADS, attention=name, kv_heads=2, qk_norm="rmsnorm")
    x = torch.randn(2, 6, DIM, requires_grad=True)
    layer(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert layer.q_norm.weight.grad is not None and layer.k_norm.weight.grad is not None


def test_qk_norm_survives_the_cache() -> None:
    torch.manual_seed(0)
    layer = MultiHeadAttention(DIM, HEADS, attention="softmax", qk_norm="layernorm").eval()
    x = torch.randn(1, 5, DIM)
    full = layer(x, causal=True)
    cache: dict = {}
    steps = [layer(x[:, i : i + 1], causal=True, cache=cache) for i in range(5)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


def test_qk_norm_unknown_norm_is_one_line() -> None:
    with pytest.raises(AttnkitError) as exc:
        MultiHeadAttention(DIM, HEADS, qk_norm="layernrom")
    assert "layernorm" in one_line(exc)


def test_vit_takes_qk_norm() -> None:
    model = attnkit.build(
        "model", "vit", image_size=8, in_channels=1, num_classes=3, dim=16, depth=1, heads=4, qk_norm="layernorm"
    )
    assert model.blocks[0].attn.q_norm is not None
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)


@pytest.mark.parametrize("name", WITH_DROPOUT)
def test_attention_dropout_acts_only_in_training(name) -> None:
    torch.manual_seed(0)
    layer = MultiHeadAttention(DIM, HEADS, attention={"name": name, "dropout": 0.5})
    reference_layer = MultiHeadAttention(DIM, HEADS, attention={"name": name, "dropout": 0.0})
    reference_layer.load_state_dict(layer.state_dict())
    x = torch.randn(2, 12, DIM)
    layer.eval(), reference_layer.eval()
    torch.testing.assert_close(layer(x), reference_layer(x))
    layer.train()
    a, b = layer(x), layer(x)
    assert not torch.allclose(a, b)  # a fresh mask each call
    assert not torch.allclose(a, reference_layer(x))


@pytest.mark.parametrize("name", WITH_DROPOUT)
@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_attention_dropout_out_of_range_is_one_line(name, p) -> None:
    with pytest.raises(ConfigError) as exc:
        MultiHeadAttention(DIM, HEADS, attention={"name": name, "dropout": p})
    assert "dropout" in one_line(exc)


def test_the_encoding_turns_self_attention_only_and_is_held_not_registered() -> None:
    rope = attnkit.build("pos_enc", "rope", dim=DIM, heads=HEADS)
    plain = MultiHeadAttention(DIM, HEADS, attention="eager").eval()
    turned = MultiHeadAttention(DIM, HEADS, attention="eager", pos_enc=rope).eval()
    turned.load_state_dict(plain.state_dict())
    assert turned.pos_enc is rope and list(turned.state_dict()) == list(plain.state_dict())
    assert [name for name, _ in turned.named_modules()] == [name for name, _ in plain.named_modules()]
    x, context = torch.randn(2, 5, DIM), torch.randn(2, 3, DIM)
    with torch.no_grad():
        assert not torch.allclose(turned(x), plain(x))
        torch.testing.assert_close(turned(x, context), plain(x, context))  # positions of two sequences: not rotated


def test_decoding_holds_the_stacked_projections_and_nothing_else_does() -> None:
    """Outside a decoding loop every call stacks q, k and v's weights anew, so a weight changed in place (an
    optimizer step, load_state_dict) is seen by the next call, with or without autograd; `held_stacks` (the decoding
    loop's) stacks them once and lets go when it ends."""
    from attnkit.nn.multihead import held_stacks

    torch.manual_seed(0)
    layer = MultiHeadAttention(16, 4, causal=True).eval()
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        before = layer(x)
        layer.k_proj.weight.add_(0.5)
        changed = layer(x)
        assert not torch.allclose(changed, before)
        with held_stacks(layer):
            assert "_held_stack" in layer.__dict__
            torch.testing.assert_close(layer(x), changed)
        assert "_held_stack" not in layer.__dict__
        layer.k_proj.weight.sub_(0.5)
        torch.testing.assert_close(layer(x), before)


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_cross_attention_projects_keys_and_values_in_one_product_as_two_would(kv_heads: int) -> None:
    """Cross-attention stacks the k and v weights into one product; a hook on a projection (an adapter's) keeps the
    separate calls: both give the same output and gradients, also when the context's width differs."""
    torch.manual_seed(0)
    layer = MultiHeadAttention(32, 4, kv_heads=kv_heads, context_dim=24)
    x, context = torch.randn(2, 5, 32), torch.randn(2, 7, 24, requires_grad=True)
    fused = layer(x, context)
    (grad_fused,) = torch.autograd.grad(fused.sum(), context)
    calls = []
    hook = layer.k_proj.register_forward_hook(lambda *args: calls.append(1))
    separate = layer(x, context)
    (grad_separate,) = torch.autograd.grad(separate.sum(), context)
    hook.remove()
    assert calls == [1]  # the separate path ran
    torch.testing.assert_close(fused, separate)
    torch.testing.assert_close(grad_fused, grad_separate)
    with held_stacks(layer):  # decoding holds self-attention's stacks; this layer has none to hold
        torch.testing.assert_close(layer(x, context), fused)
