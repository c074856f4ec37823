"""Token mixers, over the registry: the three scans agree (naive, recurrent, chunked), padding is inert, gradients are
finite, the decoding state is fixed-size and decodes what the parallel form computes, and every model takes them
where their forms allow (refused in one line elsewhere)."""

from __future__ import annotations

import pytest
import torch

import attnkit
from attnkit import ConfigError
from attnkit.nn.decoding import beam_search, greedy
from attnkit.nn.mixers import Mixer, scan

MIXERS = [name for name in attnkit.available("mixer") if name != "attention"]
N = 37  # not a multiple of any chunk below


def build(name: str, *, causal: bool = True, dtype: torch.dtype = torch.float64, chunk: int = 8) -> Mixer:
    torch.manual_seed(0)
    mixer = attnkit.build("mixer", name, dim=32, heads=4, causal=causal).to(dtype)
    if hasattr(mixer, "chunk"):
        mixer.chunk = chunk  # several chunks, the last one short
    return mixer


def run(mixer: Mixer, x: torch.Tensor, form: str, **kwargs) -> torch.Tensor:
    mixer.form = form
    try:
        return mixer(x, **kwargs)
    finally:
        mixer.form = None


@pytest.mark.parametrize("name", MIXERS)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-4)])
@pytest.mark.parametrize("causal", [True, False])
def test_the_three_forms_agree(name: str, dtype: torch.dtype, tol: float, causal: bool) -> None:
    mixer = build(name, causal=causal, dtype=dtype)
    x = torch.randn(2, N, 32, dtype=dtype)
    recurrent = run(mixer, x, "recurrent")
    for form in ("chunked", "naive"):
        torch.testing.assert_close(run(mixer, x, form), recurrent, atol=tol, rtol=tol, msg=f"{name} {form}")


@pytest.mark.parametrize("name", MIXERS)
@pytest.mark.parametrize("causal", [True, False])
def test_padded_tokens_are_inert(name: str, causal: bool) -> None:
    """A row padded at its end gives its tokens the outputs of the row alone, in either direction."""
    mixer = build(name, causal=causal)
    x = torch.randn(2, N, 32, dtype=torch.float64)
    pad = torch.zeros(2, N, dtype=torch.bool)
    pad[1, 29:] = True
    x[1, 29:] = 1e3  # what padding holds must not matter
    both = mixer(x, key_padding_mask=pad)
    alone = mixer(x[1:, :29])
    torch.testing.assert_close(both[1:, :29], alone, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(both[:1], mixer(x[:1]), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("name", MIXERS)
def test_gradients_are_finite(name: str) -> None:
    mixer = build(name, dtype=torch.float32, chunk=16)
    x = torch.randn(2, N, 32, requires_grad=True)
    mixer(x).square().mean().backward()
    grads = [x.grad, *(p.grad for p in mixer.parameters())]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads[1:])


@pytest.mark.parametrize("name", MIXERS)
def test_a_state_carries_decoding_token_by_token(name: str) -> None:
    """A prompt through the chunked form, then one token at a time through the recurrent form, gives the outputs of
    one parallel pass; the state's size does not grow."""
    mixer = build(name)
    x = torch.randn(2, N, 32, dtype=torch.float64)
    whole = mixer(x)
    cache: dict = {}
    parts = [mixer(x[:, :20], cache=cache)]
    sizes = set()
    for t in range(20, N):
        parts.append(mixer(x[:, t : t + 1], cache=cache))
        sizes.add(sum(v.numel() for v in cache["state"].values()))
    torch.testing.assert_close(torch.cat(parts, 1), whole, atol=1e-10, rtol=1e-10)
    assert cache["length"] == N and len(sizes) == 1
    assert mixer.state_size() * 2 == sizes.pop()


def test_the_scans_keep_float32_finite_under_strong_decays() -> None:
    """Decays of e^-30 per token: products of gates underflow, differences of cumulative logs do not."""
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 2, 40, 8), torch.randn(1, 2, 40, 8), torch.randn(1, 2, 40, 8)
    g = -30 * torch.rand(1, 2, 40, 8)
    chunked, state = scan.gated_chunked(q, k, v, g, chunk=16)
    recurrent, state_r = scan.gated_recurrent(q, k, v, g)
    assert torch.isfinite(chunked).all() and torch.isfinite(state).all()
    torch.testing.assert_close(chunked, recurrent, atol=1e-4, rtol=1e-4)
    beta = torch.rand(1, 2, 40)
    kn = torch.nn.functional.normalize(k, dim=-1)
    out, _ = scan.delta_chunked(q, kn, v, beta, g[..., 0], chunk=16)
    torch.testing.assert_close(out, scan.delta_recurrent(q, kn, v, beta, g[..., 0])[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", MIXERS)
def test_the_decoder_generates_the_same_tokens_with_and_without_its_state(name: str) -> None:
    torch.manual_seed(0)
    model = attnkit.build("model", "decoder", vocab_size=40, dim=32, depth=2, heads=4, layers=[name, "softmax"])
    model.eval()
    prompt = torch.randint(3, 40, (2, 7))
    kwargs = {"bos_id": 0, "eos_id": 1, "pad_id": 2, "max_len": 12}
    cached = greedy(model, prompt, **kwargs)
    uncached = greedy(model, prompt, use_cache=False, **kwargs)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("name", ["gated_deltanet", "mamba2"])
def test_beam_search_reorders_a_mixer_state_as_it_does_keys_and_values(name: str) -> None:
    """The encoder–decoder's decoder with a mixer layer: beam search with the cache (states reordered along the
    batch as beams move) gives the hypotheses of beam search without it."""
    torch.manual_seed(0)
    model = attnkit.build(
        "model",
        "transformer",
        src_vocab=30,
        tgt_vocab=30,
        dim=32,
        depth=1,
        decoder_depth=2,
        heads=4,
        decoder={"layers": [name, "softmax"]},
    ).eval()
    src = torch.randint(3, 30, (2, 9))
    kwargs = {"bos_id": 1, "eos_id": 2, "pad_id": 0, "beam": 3, "max_len": 8}
    assert torch.equal(beam_search(model, src, **kwargs), beam_search(model, src, use_cache=False, **kwargs))


@pytest.mark.parametrize("name", MIXERS)
@pytest.mark.parametrize("model", ["decoder", "classifier", "vit", "transformer"])
def test_every_model_trains_a_step_with_a_mixer_layer(name: str, model: str) -> None:
    torch.manual_seed(0)
    common = {"dim": 32, "depth": 2, "heads": 4}
    if model == "decoder":
        net = attnkit.build("model", model, vocab_size=30, layers=[name, "softmax"], **common)
        out = net(torch.randint(0, 30, (2, 19)))
    elif model == "classifier":
        net = attnkit.build("model", model, vocab_size=30, num_classes=3, layers=[name, "softmax"], **common)
        ids = torch.randint(1, 30, (2, 19))
        ids[1, 11:] = 0
        out = net(ids, padding_mask=ids == 0)
    elif model == "vit":
        net = attnkit.build(
            "model", model, image_size=8, patch_size=2, in_channels=1, num_classes=3, layers=[name, name], **common
        )
        out = net(torch.randn(2, 1, 8, 8))
    else:
        net = attnkit.build(
            "model",
            model,
            src_vocab=30,
            tgt_vocab=30,
            **common,
            encoder={"layers": [name, "softmax"]},
            decoder={"layers": [name, "softmax"]},
        )
        src = torch.randint(3, 30, (2, 11))
        out = net(src, torch.randint(3, 30, (2, 9)), src_padding_mask=src == 0)
    out.float().square().mean().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


class OneWay(Mixer):
    """A causal-only plugin mixer (no bidirectional form), for the refusal below."""

    supports_bidirectional = False

    def __init__(self, dim: int, causal: bool = True) -> None:
        super().__init__(dim, causal=causal)
        self.out_proj = torch.nn.Linear(dim, dim)

    def mix(self, x, keep, state):
        return self.out_proj(x.cumsum(1)), {}


def test_a_mixer_without_a_bidirectional_form_is_refused_by_encoders_in_one_line() -> None:
    attnkit.register("mixer", "one_way_test", override=True)(OneWay)
    with pytest.raises(ConfigError, match=r"model.layers\[0\].mixer=one_way_test has no bidirectional form"):
        attnkit.build(
            "model",
            "vit",
            image_size=8,
            patch_size=2,
            in_channels=1,
            num_classes=3,
            dim=32,
            depth=2,
            heads=4,
            layers=["one_way_test", None],
        )
    model = attnkit.build("model", "decoder", vocab_size=30, dim=32, depth=2, heads=4, layers=["one_way_test", None])
    assert model(torch.randint(0, 30, (1, 5))).shape == (1, 5, 30)


def test_a_mixer_refuses_attention_weights_in_one_line() -> None:
    model = attnkit.build("model", "decoder", vocab_size=30, dim=32, depth=1, heads=4, layers=["gla"])
    with pytest.raises(ConfigError, match="has no attention weights"):
        model.attention_weights(torch.randint(0, 30, (1, 5)))


def test_layer_entries_name_mixers_and_attention_alike() -> None:
    from attnkit.nn.layers import layer_plan

    plan = layer_plan(3, ["gla", {"name": "mamba2", "state_size": 16}, "local"], {"attention": "softmax"})
    assert plan[0]["mixer"] == "gla" and plan[1]["mixer"] == {"name": "mamba2", "state_size": 16}
    assert plan[2] == {"attention": "local"}


def test_the_example_mixer_is_one_file_and_keeps_the_contract() -> None:
    from pathlib import Path

    attnkit.load_plugins(str(Path(__file__).resolve().parents[2] / "examples" / "my_mixer.py"))
    mixer = build("decayed_linear")
    x = torch.randn(2, N, 32, dtype=torch.float64)
    torch.testing.assert_close(run(mixer, x, "chunked"), run(mixer, x, "recurrent"), atol=1e-10, rtol=1e-10)
    model = attnkit.build(
        "model", "decoder", vocab_size=30, dim=32, depth=2, heads=4, layers=["decayed_linear", "softmax"]
    )
    assert model(torch.randint(0, 30, (1, 9))).shape == (1, 9, 30)


class Leaky(Mixer):
    """A 'causal' mixer that sums the whole sequence: it sees the future."""

    def __init__(self, dim: int, causal: bool = True) -> None:
        super().__init__(dim, causal=causal)
        self.out_proj = torch.nn.Linear(dim, dim)

    def mix(self, x, keep, state):
        return self.out_proj(x.sum(1, keepdim=True).expand_as(x)), {}


class Squeezed(Leaky):
    """A mixer that returns one vector per sequence instead of one per token."""

    def mix(self, x, keep, state):
        return self.out_proj(x.cumsum(1)[:, -1]), {}


@pytest.mark.parametrize(
    ("cls", "message"),
    [(Leaky, "changed its output where the last token"), (Squeezed, r"returned shape \[2, 32\] for x of \[2, 5, 32\]")],
)
def test_a_mixer_that_breaks_its_contract_is_refused_when_built(cls: type, message: str) -> None:
    attnkit.register("mixer", "broken_test", override=True)(cls)
    with pytest.raises(ConfigError, match=message):
        attnkit.build("model", "decoder", vocab_size=30, dim=32, depth=1, heads=4, layers=["broken_test"])
