"""Attention kernels and the multi-head layer: parity with torch, masks, GQA, dtypes, weights, errors.

Tests that loop over `attnkit.available("attention")` cover a newly registered variant automatically; its
capability flags (`supports_causal`, `supports_cross`, ...) decide which combinations apply.
"""

from __future__ import annotations

import pytest
import torch
from checks import one_line, reference
from torch import nn

import attnkit
from attnkit import ConfigError
from attnkit.nn import MultiHeadAttention, SoftmaxAttention
from attnkit.nn.attention import repeat_kv
from attnkit.nn.attention.eager import eager_attention

ATTENTIONS = attnkit.available("attention")
# exact softmax attention: must match torch.nn.MultiheadAttention. The spec with `cpu_eager_max_len` large forces
# softmax's explicit path on CPU, `cpu_eager_max_len=0` its SDPA path, so both paths are checked at every length.
EXPLICIT = {"name": "softmax", "cpu_eager_max_len": 1 << 20}
SDPA = {"name": "softmax", "cpu_eager_max_len": 0}
EXACT_SPECS = ("softmax", "eager", EXPLICIT, SDPA)
EXACT = [pytest.param(s, id=n) for n, s in zip(("softmax", "eager", "explicit", "sdpa"), EXACT_SPECS, strict=True)]
DIM, HEADS, HEAD_DIM = 16, 4, 4
MAX_LEN = 32


def kernel(name: str, heads: int = HEADS, head_dim: int = HEAD_DIM) -> attnkit.nn.Attention:
    """A registered kernel built as the multi-head layer builds it, in eval mode."""
    return attnkit.build_spec(
        "attention", name, dim=heads * head_dim, heads=heads, head_dim=head_dim, max_len=MAX_LEN
    ).eval()


def flag(name: str, capability: str):
    return getattr(attnkit.get("attention", name), capability)


def with_flag(capability: str) -> list[str]:
    return [name for name in ATTENTIONS if flag(name, capability)]


def qkv(b=2, h=HEADS, hkv=None, nq=5, nk=None, d=HEAD_DIM, dtype=torch.float32, grad=False):
    nk = nq if nk is None else nk
    hkv = h if hkv is None else hkv
    q = torch.randn(b, h, nq, d, dtype=dtype, requires_grad=grad)
    k = torch.randn(b, hkv, nk, d, dtype=dtype, requires_grad=grad)
    v = torch.randn(b, hkv, nk, d, dtype=dtype, requires_grad=grad)
    return q, k, v


# --- parity with torch.nn.MultiheadAttention ----------------------------------------------------------------


def pair(name: str, dim: int = DIM, heads: int = HEADS) -> tuple[MultiHeadAttention, nn.MultiheadAttention]:
    ours = MultiHeadAttention(dim, heads, attention=name).eval()
    ref = nn.MultiheadAttention(dim, heads, batch_first=True).eval()
    with torch.no_grad():
        for proj, w, b in zip(
            (ours.q_proj, ours.k_proj, ours.v_proj),
            ref.in_proj_weight.chunk(3),
            ref.in_proj_bias.chunk(3),
            strict=True,
        ):
            proj.weight.copy_(w)
            proj.bias.copy_(torch.randn_like(b))  # torch initialises the biases to zero: make them count
            b.copy_(proj.bias)
        ref.out_proj.bias.normal_()
        ours.out_proj.weight.copy_(ref.out_proj.weight)
        ours.out_proj.bias.copy_(ref.out_proj.bias)
    return ours, ref


@pytest.mark.parametrize("name", EXACT)
def test_parity_self_attention(name) -> None:
    ours, ref = pair(name)
    x = torch.randn(3, 6, DIM)
    expected, _ = ref(x, x, x, need_weights=False)
    torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", EXACT)
def test_parity_cross_attention(name) -> None:
    ours, ref = pair(name)
    x, ctx = torch.randn(3, 4, DIM), torch.randn(3, 7, DIM)
    expected, _ = ref(x, ctx, ctx, need_weights=False)
    torch.testing.assert_close(ours(x, ctx), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", EXACT)
@pytest.mark.parametrize("cross", [False, True])
def test_parity_key_padding_mask(name, cross) -> None:
    ours, ref = pair(name)
    x = torch.randn(3, 5, DIM)
    ctx = torch.randn(3, 7, DIM) if cross else x
    mask = torch.zeros(3, ctx.shape[1], dtype=torch.bool)
    mask[0, -2:] = True
    mask[2, :3] = True
    expected, _ = ref(x, ctx, ctx, key_padding_mask=mask, need_weights=False)
    got = ours(x, ctx if cross else None, key_padding_mask=mask)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", EXACT)
def test_parity_causal(name) -> None:
    ours, ref = pair(name)
    x = torch.randn(2, 6, DIM)
    causal_mask = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    expected, _ = ref(x, x, x, attn_mask=causal_mask, is_causal=True, need_weights=False)
    torch.testing.assert_close(ours(x, causal=True), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", EXACT)
def test_parity_causal_with_padding(name) -> None:
    ours, ref = pair(name)
    x = torch.randn(2, 6, DIM)
    causal_mask = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[1, -2:] = True
    expected, _ = ref(x, x, x, attn_mask=causal_mask, key_padding_mask=pad, need_weights=False)
    torch.testing.assert_close(ours(x, causal=True, key_padding_mask=pad), expected, atol=1e-5, rtol=1e-5)


# --- masks --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", with_flag("supports_key_padding"))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
def test_fully_masked_rows_give_zeros_and_finite_grads(name, dtype) -> None:
    attn = kernel(name)
    cross = flag(name, "supports_cross")
    q, k, v = qkv(nq=4, nk=6 if cross else 4, dtype=dtype, grad=True)
    mask = torch.zeros(2, k.shape[2], dtype=torch.bool)
    mask[0] = True  # batch element 0: every key is padding
    mask[1, -1] = True
    out = attn(q, k, v, key_padding_mask=mask)
    assert torch.isfinite(out).all()
    assert torch.equal(out[0], torch.zeros_like(out[0]))
    (out * torch.randn_like(out)).sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    assert torch.equal(q.grad[0], torch.zeros_like(q.grad[0]))


@pytest.mark.parametrize("name", [n for n in with_flag("supports_key_padding") if flag(n, "supports_causal")])
def test_rows_masked_by_causal_and_padding_give_zeros(name) -> None:
    """Padding the first key leaves query 0 nothing to see under a causal mask."""
    attn = kernel(name)
    q, k, v = qkv(nq=4, grad=True)
    mask = torch.zeros(2, 4, dtype=torch.bool)
    mask[0, 0] = True
    out = attn(q, k, v, key_padding_mask=mask, causal=True)
    assert torch.equal(out[0, :, 0], torch.zeros_like(out[0, :, 0]))
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


@pytest.mark.parametrize("name", EXACT)
def test_exact_kernels_match_reference_with_padding(name) -> None:
    q, k, v = qkv(nq=3, nk=6)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[1, 2:4] = True
    allowed = ~mask[:, None, None, :]
    expected = reference(q, k, v, allowed).float()
    torch.testing.assert_close(kernel(name)(q, k, v, key_padding_mask=mask), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("nq", "nk"), [(3, 7), (1, 5), (4, 4)])
def test_causal_is_bottom_right_aligned(nq, nk) -> None:
    q, k, v = qkv(nq=nq, nk=nk)
    i = torch.arange(nq).unsqueeze(1)
    j = torch.arange(nk).unsqueeze(0)
    allowed = j <= i + (nk - nq)  # query i is position nk - nq + i
    expected = reference(q, k, v, allowed).float()
    for name in EXACT_SPECS:
        torch.testing.assert_close(kernel(name)(q, k, v, causal=True), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", [n for n in with_flag("supports_causal") if flag(n, "supports_cache")])
def test_causal_short_queries_are_the_last_positions(name) -> None:
    """What cached decoding relies on: the last Nq rows of a full causal pass equal a pass with Nq queries."""
    attn = kernel(name)
    q, k, v = qkv(nq=7)
    full = attn(q, k, v, causal=True)
    for nq in (1, 3):
        last = attn(q[:, :, -nq:], k, v, causal=True)
        torch.testing.assert_close(last, full[:, :, -nq:], atol=1e-5, rtol=1e-5)


def test_causal_and_bias_mask_agree_between_kernels() -> None:
    q, k, v = qkv(nq=3, nk=6)
    bias = torch.randn(1, HEADS, 3, 6)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[1, 0] = True
    outs = [kernel(n)(q, k, v, causal=True, bias=bias, key_padding_mask=mask) for n in EXACT_SPECS]
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], atol=1e-5, rtol=1e-5)


# --- grouped-query attention --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ATTENTIONS)
@pytest.mark.parametrize("kv_heads", [1, 2])
def test_gqa_runs(name, kv_heads) -> None:
    mha = MultiHeadAttention(DIM, HEADS, kv_heads=kv_heads, attention=name)
    assert mha.k_proj.out_features == kv_heads * HEAD_DIM
    x = torch.randn(2, 5, DIM)
    out = mha(x)
    assert out.shape == x.shape
    out.sum().backward()
    assert torch.isfinite(mha.k_proj.weight.grad).all()


@pytest.mark.parametrize("name", ATTENTIONS)
def test_gqa_kernel_equals_repeated_heads(name) -> None:
    attn = kernel(name)
    q, k, v = qkv(hkv=2)
    torch.testing.assert_close(attn(q, k, v), attn(q, repeat_kv(k, HEADS), repeat_kv(v, HEADS)), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", EXACT)
def test_kv_heads_equal_heads_is_standard_mha(name) -> None:
    ours, ref = pair(name)
    explicit = MultiHeadAttention(DIM, HEADS, kv_heads=HEADS, attention=name).eval()
    explicit.load_state_dict(ours.state_dict())
    x = torch.randn(2, 5, DIM)
    expected, _ = ref(x, x, x, need_weights=False)
    torch.testing.assert_close(explicit(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_gqa_eager_and_softmax_agree(causal, padded) -> None:
    layers = [MultiHeadAttention(DIM, HEADS, kv_heads=2, attention=n).eval() for n in EXACT_SPECS]
    for layer in layers[1:]:
        layer.load_state_dict(layers[0].state_dict())
    x = torch.randn(2, 6, DIM)
    mask = None
    if padded:
        mask = torch.zeros(2, 6, dtype=torch.bool)
        mask[0, -3:] = True
    outs = [layer(x, causal=causal, key_padding_mask=mask) for layer in layers]
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], atol=1e-5, rtol=1e-5)


# --- every variant x {encoder self, causal decoder self, cross} x {float32, bfloat16} -----------------------


MODES = ["encoder_self", "decoder_self", "cross"]


def case_params():
    for name in ATTENTIONS:
        for mode in MODES:
            for dtype in (torch.float32, torch.bfloat16):
                marks = []
                if mode == "decoder_self" and not flag(name, "supports_causal"):
                    marks.append(pytest.mark.skip(reason=f"{name} does not support causal attention"))
                if mode == "cross" and not flag(name, "supports_cross"):
                    marks.append(pytest.mark.skip(reason=f"{name} does not support cross-attention"))
                yield pytest.param(name, mode, dtype, marks=marks, id=f"{name}-{mode}-{str(dtype)[6:]}")


@pytest.mark.parametrize(("name", "mode", "dtype"), list(case_params()))
def test_every_attention_forward_backward(name, mode, dtype) -> None:
    mha = MultiHeadAttention(DIM, HEADS, attention=name).to(dtype)
    x = torch.randn(2, 6, DIM, dtype=dtype)
    context = torch.randn(2, 8, DIM, dtype=dtype) if mode == "cross" else None
    nk = 8 if mode == "cross" else 6
    mask = None
    if mode != "decoder_self" and flag(name, "supports_key_padding"):
        mask = torch.zeros(2, nk, dtype=torch.bool)
        mask[1, -2:] = True
    out = mha(x, context, causal=mode == "decoder_self", key_padding_mask=mask)
    assert out.shape == x.shape and out.dtype == dtype
    assert torch.isfinite(out).all()
    out.float().square().mean().backward()
    for p in mha.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", [n for n in ATTENTIONS if not flag(n, "supports_causal")])
def test_causal_refused_when_unsupported(name) -> None:
    with pytest.raises(ConfigError):
        MultiHeadAttention(DIM, HEADS, attention=name)(torch.randn(1, 4, DIM), causal=True)


@pytest.mark.parametrize("name", [n for n in ATTENTIONS if not flag(n, "supports_cross")])
def test_cross_refused_when_unsupported(name) -> None:
    with pytest.raises(ConfigError):
        MultiHeadAttention(DIM, HEADS, attention=name)(torch.randn(1, 4, DIM), torch.randn(1, 5, DIM))


# --- attention weights --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", with_flag("supports_weights"))
@pytest.mark.parametrize("causal", [False, True])
def test_need_weights_sum_to_one(name, causal) -> None:
    mha = MultiHeadAttention(DIM, HEADS, attention=name).eval()
    x = torch.randn(2, 5, DIM)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[1, -1] = True
    out, weights = mha(x, key_padding_mask=mask, causal=causal, need_weights=True)
    assert weights.shape == (2, HEADS, 5, 5)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, HEADS, 5), atol=1e-5, rtol=0)
    assert (weights[1, :, :, -1] == 0).all()  # padded key
    if causal:
        assert (weights.triu(diagonal=1) == 0).all()
    torch.testing.assert_close(out, mha(x, key_padding_mask=mask, causal=causal), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", with_flag("supports_weights"))
def test_need_weights_with_gqa_has_all_heads(name) -> None:
    mha = MultiHeadAttention(DIM, HEADS, kv_heads=1, attention=name)
    _, weights = mha(torch.randn(2, 3, DIM), torch.randn(2, 4, DIM), need_weights=True)
    assert weights.shape == (2, HEADS, 3, 4)


@pytest.mark.parametrize("name", [n for n in ATTENTIONS if not flag(n, "supports_weights")])
def test_need_weights_refused_when_unsupported(name) -> None:
    with pytest.raises(ConfigError) as exc:
        MultiHeadAttention(DIM, HEADS, attention=name)(torch.randn(1, 3, DIM), need_weights=True)
    one_line(exc)


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dim", "heads"), [(10, 3), (16, 0), (16, 5)])
def test_heads_must_divide_dim(dim, heads) -> None:
    with pytest.raises(ConfigError) as exc:
        MultiHeadAttention(dim, heads)
    assert f"heads={heads}" in one_line(exc)


@pytest.mark.parametrize("kv_heads", [3, 0, 8])
def test_kv_heads_must_divide_heads(kv_heads) -> None:
    with pytest.raises(ConfigError) as exc:
        MultiHeadAttention(DIM, HEADS, kv_heads=kv_heads)
    assert f"kv_heads={kv_heads}" in one_line(exc)


def bad_shapes():
    q, k, v = qkv()
    mask = torch.zeros(2, 5, dtype=torch.bool)
    return {
        "3d": (q[0], k[0], v[0], {}),
        "batch": (q, k[:1], v[:1], {}),
        "head_dim": (q, k[..., :2], v[..., :2], {}),
        "k_vs_v": (q, k, v[:, :, :3], {}),
        "kv_heads": (q, k[:, :3], v[:, :3], {}),
        "mask": (q, k, v, {"key_padding_mask": mask[:, :3]}),
    }


@pytest.mark.parametrize("name", ATTENTIONS)
@pytest.mark.parametrize("case", list(bad_shapes()))
def test_kernel_refuses_bad_shapes(name, case) -> None:
    q, k, v, kwargs = bad_shapes()[case]
    if "key_padding_mask" in kwargs and not flag(name, "supports_key_padding"):
        pytest.skip(f"{name} takes no key padding mask")
    with pytest.raises(ConfigError) as exc:
        kernel(name)(q, k, v, **kwargs)
    one_line(exc)


@pytest.mark.parametrize("name", ATTENTIONS)
def test_layer_refuses_bad_shapes(name) -> None:
    mha = MultiHeadAttention(DIM, HEADS, attention=name)
    with pytest.raises(ConfigError) as exc:
        mha(torch.randn(2, 5, DIM + 1))
    assert str(DIM) in one_line(exc)
    if flag(name, "supports_cross"):
        with pytest.raises(ConfigError) as exc:
            mha(torch.randn(2, 5, DIM), torch.randn(3, 4, DIM))
        one_line(exc)
        with pytest.raises(ConfigError) as exc:
            mha(torch.randn(2, 5, DIM), torch.randn(2, 4, DIM - 1))
        one_line(exc)


@pytest.mark.parametrize("name", [n for n in ATTENTIONS if not flag(n, "supports_bias")])
def test_bias_refused_when_unsupported(name) -> None:
    q, k, v = qkv()
    with pytest.raises(ConfigError):
        kernel(name)(q, k, v, bias=torch.zeros(1, HEADS, 5, 5))


# --- the KV cache of the layer ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in with_flag("supports_cache") if flag(n, "supports_causal")])
@pytest.mark.parametrize("kv_heads", [None, 2])
def test_self_attention_cache_matches_full_pass(name, kv_heads) -> None:
    mha = MultiHeadAttention(DIM, HEADS, kv_heads=kv_heads, attention=name).eval()
    x = torch.randn(2, 6, DIM)
    full = mha(x, causal=True)
    cache: dict = {}
    steps = [mha(x[:, :2], causal=True, cache=cache)]  # a prefix, then one token at a time
    steps += [mha(x[:, t : t + 1], causal=True, cache=cache) for t in range(2, 6)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache["k"].shape == (2, kv_heads or HEADS, 6, HEAD_DIM)


@pytest.mark.parametrize("name", [n for n in with_flag("supports_cache") if flag(n, "supports_cross")])
def test_cross_attention_cache_reuses_context(name) -> None:
    mha = MultiHeadAttention(DIM, HEADS, attention=name).eval()
    x, ctx = torch.randn(2, 3, DIM), torch.randn(2, 5, DIM)
    cache: dict = {}
    first = mha(x, ctx, cache=cache)
    keys = cache["k"]
    torch.testing.assert_close(mha(x, ctx, cache=cache), first)
    assert cache["k"] is keys


# --- maximum length -----------------------------------------------------------------------------------------


class ShortSoftmax(SoftmaxAttention):
    max_length = 4


def test_max_length_is_enforced() -> None:
    q, k, v = qkv(nq=4)
    assert ShortSoftmax()(q, k, v).shape == q.shape
    q, k, v = qkv(nq=5)
    with pytest.raises(ConfigError) as exc:
        ShortSoftmax()(q, k, v)
    assert "4" in one_line(exc)


@pytest.mark.parametrize("name", [n for n in ATTENTIONS if kernel(n).max_length is not None])
def test_registered_max_length_is_enforced(name) -> None:
    attn = kernel(name)
    q, k, v = qkv(nq=1, nk=attn.max_length + 1)
    with pytest.raises(ConfigError):
        attn(q, k, v)


@pytest.mark.parametrize(
    ("head_dim", "keys", "training"),
    [(64, 17, False), (64, 33, False), (64, 65, True), (64, 97, True), (8, 97, True), (8, 129, False), (12, 60, True)],
)
def test_softmax_on_the_cpu_chooses_its_path_from_the_measured_table(monkeypatch, head_dim, keys, training) -> None:
    """By default the explicit path runs exactly where CPU_EXPLICIT_MAX_KEYS says it measured faster, for the head
    dimension and for training (gradients recorded) or inference; both paths give the same output."""
    from attnkit.nn.attention import softmax

    calls = []
    monkeypatch.setattr(softmax, "eager_attention", lambda *a, **kw: calls.append(1) or eager_attention(*a, **kw))
    q, k, v = (torch.randn(2, 2, keys, head_dim, requires_grad=training) for _ in range(3))
    with torch.set_grad_enabled(training):
        out = SoftmaxAttention()(q, k, v)
        forced = SoftmaxAttention(cpu_eager_max_len=0)(q, k, v)  # SDPA
    measured = max(d for d in softmax.CPU_EXPLICIT_MAX_KEYS["train"] if d <= head_dim)
    limit = softmax.CPU_EXPLICIT_MAX_KEYS["train" if training else "infer"][measured]
    assert calls == ([1] if keys <= limit else [])
    torch.testing.assert_close(out, forced, atol=1e-5, rtol=1e-4)
