"""The probe: every kernel runs once, when a layer is built, on a tiny input of the layer's layout, and a kernel that
breaks the contract (a transposed or broadcast output, another dtype, NaN, not a tensor, an error) is refused in one
line that says what it returned. Every registered kernel passes on every layout it supports."""

from __future__ import annotations

import pytest
import torch
from checks import one_line, restored_registry
from torch import nn

import attnkit
from attnkit import ConfigError
from attnkit.nn import MultiHeadAttention, probe
from attnkit.nn.attention import Attention, eager_attention, repeat_kv
from attnkit.nn.pos_enc import Alibi


def softmax(q, k, v, key_padding_mask=None, causal=False):
    return eager_attention(q, k, v, key_padding_mask=key_padding_mask, causal=causal)[0]


def unmasked(q, k, v):
    k, v = repeat_kv(k, q.shape[1]), repeat_kv(v, q.shape[1])
    return (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-1) @ v


BROKEN = {  # what a kernel returns instead of softmax(q, k, v) `[B, H, N, D]`, and what the refusal says
    "transposed": (lambda out: out.transpose(1, 2), "returned shape [2, 5, 4, 8] for q of [2, 4, 5, 8]"),
    "one_query": (lambda out: out.mean(2, keepdim=True), "returned shape [2, 4, 1, 8] for q of [2, 4, 5, 8]"),
    "nan": (lambda out: out * float("nan"), "returned 320 non-finite values (NaN) of 320"),
    "inf": (lambda out: out / 0.0, "non-finite values"),
    "double": (lambda out: out.double(), "returned dtype float64 (not float32)"),
    "pair": (lambda out: (out, out), "returned a tuple, not a tensor"),
    "crash": (lambda out: out.view(3, -1, 7), "failed on a probe input (q of [2, 4, 5, 8]"),
}


def kernel_class(returns):
    class Broken(Attention):
        def attend(self, q, k, v, *, key_padding_mask=None, causal=False, bias=None):
            return returns(softmax(q, k, v))

    return Broken


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_kernel_that_breaks_the_contract_is_refused_when_built(case) -> None:
    returns, answer = BROKEN[case]
    with restored_registry():
        attnkit.register("attention", f"broken_{case}")(kernel_class(returns))
        with pytest.raises(ConfigError) as exc:
            MultiHeadAttention(32, 4, attention=f"broken_{case}")
    message = one_line(exc)
    assert message.startswith(f"attention 'broken_{case}' (test_probe.py:") and answer in message, message
    assert "attend must return [B, H, N, D]" in message


def test_the_probe_uses_the_layers_layout() -> None:
    """Grouped key/value heads, cross-attention (other key positions), padded keys, causal, a score bias: each is in
    the probe's input, so a kernel that breaks under one of them is refused for that use alone."""
    seen: list[dict] = []

    class Recorder(Attention):
        supports_bias = True

        def attend(self, q, k, v, *, key_padding_mask=None, causal=False, bias=None):
            seen.append({"q": q.shape, "k": k.shape, "pad": key_padding_mask, "causal": causal, "bias": bias})
            return softmax(q, k, v, key_padding_mask, causal)

    with restored_registry():
        attnkit.register("attention", "recorder")(Recorder)
        MultiHeadAttention(32, 4, kv_heads=2, attention="recorder", cross=True, key_padding=True, max_keys=40)
        MultiHeadAttention(32, 4, attention="recorder", causal=True, pos_enc=Alibi(heads=4))
    cross, _, causal, _ = seen  # each probe, then its check of the masks
    assert cross["q"] == (2, 4, 5, 8) and cross["k"] == (2, 2, 7, 8) and not cross["causal"]
    assert cross["pad"].tolist() == [[False] * 7, [False] * 6 + [True]] and cross["bias"] is None
    assert causal["causal"] and causal["pad"] is None and causal["bias"].shape == (1, 4, 5, 5)


def test_a_kernel_broken_only_when_causal_is_refused_only_there() -> None:
    class Acausal(Attention):
        def attend(self, q, k, v, *, key_padding_mask=None, causal=False, bias=None):
            out = softmax(q, k, v, key_padding_mask, causal)
            return out[:, :, -1:] if causal else out

    with restored_registry():
        attnkit.register("attention", "acausal")(Acausal)
        MultiHeadAttention(32, 4, attention="acausal")
        with pytest.raises(ConfigError, match=r"returned shape \[2, 4, 1, 8\] for q of .* \(causal\)"):
            MultiHeadAttention(32, 4, attention="acausal", causal=True)


def test_a_kernel_that_ignores_its_masks_is_refused() -> None:
    """A kernel that lets earlier queries see later keys (a decoder that would train well and decode nonsense), or
    that attends to padded keys: the probe changes the last key, or the padded one, and looks."""

    class Unmasked(Attention):
        def attend(self, q, k, v, *, key_padding_mask=None, causal=False, bias=None):
            return unmasked(q, k, v)

    with restored_registry():
        attnkit.register("attention", "unmasked")(Unmasked)
        MultiHeadAttention(32, 4, attention="unmasked")  # nothing to mask: fine
        with pytest.raises(ConfigError) as exc:
            MultiHeadAttention(32, 4, attention="unmasked", causal=True)
        assert "changed its output where the last key (which causal attention hides from earlier queries) changed" in (
            one_line(exc)
        )
        with pytest.raises(ConfigError) as exc:
            MultiHeadAttention(32, 4, attention="unmasked", key_padding=True)
        assert "changed its output where the padded key (which key_padding_mask hides) changed for q of" in (
            one_line(exc)
        )


def test_the_probe_runs_once_per_class_options_and_layout_and_changes_nothing() -> None:
    """A deep model pays for one call; the probe draws from no global generator and changes no state of the kernel
    it is given (it runs a copy, in eval mode, without gradients)."""
    calls: list[bool] = []

    class Counting(Attention):
        def __init__(self, scale: float = 1.0) -> None:
            super().__init__()
            self.scale = scale
            self.register_buffer("steps", torch.zeros(()))
            self.w = nn.Parameter(torch.ones(()))

        def attend(self, q, k, v, *, key_padding_mask=None, causal=False, bias=None):
            calls.append(self.training)
            self.steps += 1
            torch.rand(1)  # a kernel drawing random numbers (random features, dropout)
            return softmax(q * self.scale * self.w, k, v, key_padding_mask, causal)

    with restored_registry():
        attnkit.register("attention", "counting")(Counting)
        torch.manual_seed(0)
        layers = [MultiHeadAttention(32, 4, attention="counting") for _ in range(3)]
        after = torch.rand(1)
        assert calls == [False]  # one probe for three layers, in eval mode
        assert all(float(layer.attention.steps) == 0 and layer.attention.training for layer in layers)
        assert layers[0].attention.w.grad is None
        MultiHeadAttention(32, 4, attention={"name": "counting", "scale": 2.0})  # other options
        MultiHeadAttention(32, 2, attention="counting")  # another layout
        MultiHeadAttention(32, 4, attention="counting", causal=True)  # and its check of the causal mask
        assert len(calls) == 5
    torch.manual_seed(0)
    for _ in range(3 * 4):  # the layers' four projections each, without a probe: the same numbers drawn
        nn.Linear(32, 32)
    assert torch.equal(torch.rand(1), after)


LAYOUTS = {  # (heads, kv_heads, use): the uses every model of attnkit builds
    "self": (4, 4, {}),
    "grouped": (4, 2, {}),
    "padded": (4, 4, {"key_padding": True}),
    "causal": (4, 1, {"causal": True}),
    "causal_padded": (4, 2, {"causal": True, "key_padding": True}),
    "cross": (2, 2, {"cross": True, "key_padding": True}),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name", attnkit.available("attention"))
def test_every_registered_kernel_keeps_the_contract_on_every_use_it_supports(name, layout) -> None:
    heads, kv_heads, use = LAYOUTS[layout]
    kernel = attnkit.get("attention", name)
    flags = {"causal": "supports_causal", "cross": "supports_cross", "key_padding": "supports_key_padding"}
    if not all(getattr(kernel, flags[key]) for key in use):
        pytest.skip(f"attention={name} does not support {layout}")
    probe._passed.clear()  # probe again, whatever was built before in this process
    layer = MultiHeadAttention(32, heads, kv_heads=kv_heads, attention=name, max_keys=64, **use)
    assert any(key[0] is type(layer.attention) for key in probe._passed)


def test_probe_serves_any_kind_that_maps_tensors_to_a_known_shape() -> None:
    """The mechanism is not the kernel's alone: a token-mixing layer `[B, N, D] -> [B, N, D]` (here an ffn) is
    probed by giving its input and the shape it must return."""
    x = torch.randn(2, 5, 16)

    class Widening(nn.Module):
        def forward(self, x):
            return torch.cat([x, x], dim=-1)

    with restored_registry():
        attnkit.register("ffn", "widening")(Widening)
        layer = attnkit.build_spec("ffn", "widening")
        with pytest.raises(ConfigError) as exc:
            probe.probe(
                layer,
                "ffn",
                lambda m: m(x),
                expected=x.shape,
                dtype=x.dtype,
                given="x of [2, 5, 16]",
                rule="forward must return [B, N, D]",
            )
    assert one_line(exc).startswith("ffn 'widening' (test_probe.py:")
    assert one_line(exc).endswith("returned shape [2, 5, 32] for x of [2, 5, 16]; forward must return [B, N, D]")
    probe.probe(nn.Identity(), "ffn", lambda m: m(x), expected=x.shape, dtype=x.dtype, given="x", rule="-")
