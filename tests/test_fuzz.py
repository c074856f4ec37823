"""Config fuzzing: combinations drawn from the registry either train a step with finite loss and decode or predict,
or are refused when the model is built, with one line. Never a traceback, never a NaN.

The suite runs a fixed number of examples; for many more (with counts of what trained and what was refused):

    ATTNKIT_FUZZ_EXAMPLES=3000 python -m pytest tests/test_fuzz.py -q --hypothesis-show-statistics
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import attnkit
from attnkit import AttnkitError
from attnkit.nn.decoding import greedy

EXAMPLES = int(os.environ.get("ATTNKIT_FUZZ_EXAMPLES", "60"))
OPTIONS = {  # attention and pos_enc options worth drawing, with values from sensible to odd
    "dropout": st.sampled_from([0.0, 0.1, 0.5, 1.0, -0.1]),
    "window": st.sampled_from([0, 1, 2, 8]),
    "num_features": st.sampled_from([0, 4, 16]),
    "redraw": st.booleans(),
    "num_landmarks": st.sampled_from([0, 1, 3, 8]),
    "proj_dim": st.sampled_from([0, 4, 16]),
    "max_length": st.sampled_from([None, 4, 64]),
    "fraction": st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5]),
    "base": st.sampled_from([0.5, 100.0, 10000.0]),
    "num_buckets": st.sampled_from([0, 4, 32]),
    "max_distance": st.sampled_from([1, 16, 128]),
    "interpolate": st.booleans(),
    "chunk": st.sampled_from([1, 3, 64]),  # token mixers
    "expand_k": st.sampled_from([0.25, 0.5, 1.0]),
    "state_size": st.sampled_from([1, 8]),
    "conv_size": st.sampled_from([1, 4]),
    "lower_bound": st.sampled_from([0.0, 0.5, 1.0]),
}


@st.composite
def component(draw, kind: str, exclude: tuple[str, ...] = ()) -> dict:
    """A registered component with some of its options drawn (the rest at their defaults)."""
    name = draw(st.sampled_from([n for n in attnkit.available(kind) if n not in exclude]))
    spec = {"name": name}
    for key in attnkit.registry.defaults(kind, name):
        if key in OPTIONS and draw(st.booleans()):
            spec[key] = draw(OPTIONS[key])
    return spec


@st.composite
def model_config(draw) -> tuple[str, dict]:
    """(model name, its spec): task-shaped models with drawn width, heads, attention, positions, norm and ffn, and
    at times a token mixer in the first layer."""
    model = draw(st.sampled_from(["vit", "transformer", "classifier"]))
    spec = {
        "name": model,
        "dim": draw(st.sampled_from([16, 24, 32])),
        "depth": draw(st.sampled_from([1, 2])),
        "heads": draw(st.sampled_from([1, 2, 3, 4, 8])),
        "kv_heads": draw(st.sampled_from([None, 1, 2, 3])),
        "qk_norm": draw(st.sampled_from([None, "layernorm", "rmsnorm"])),
        "attention": draw(component("attention")),
        "pos_enc": draw(component("pos_enc")),
        "norm": draw(component("norm")),
        "ffn": draw(component("ffn")),
        "dropout": draw(st.sampled_from([0.0, 0.1, 1.5])),
    }
    if model == "vit":
        spec.update(patch_size=draw(st.sampled_from([2, 4])), pool=draw(st.sampled_from(["cls", "mean"])))
    elif model == "transformer":
        spec.update(max_len=32)
        if draw(st.booleans()):
            spec["decoder"] = {"cross_attention": draw(component("attention"))}
    else:
        spec.update(max_len=32, pool=draw(st.sampled_from(["cls", "mean"])))
    if draw(st.booleans()):  # a token mixer in the first layer's place
        layers = [draw(component("mixer", exclude=("attention",)))] + [None] * (spec["depth"] - 1)
        if model == "transformer":
            spec.setdefault(draw(st.sampled_from(["encoder", "decoder"])), {})["layers"] = layers
        else:
            spec["layers"] = layers
    return model, spec


def refused_in_one_line(exc: AttnkitError) -> None:
    message = str(exc)
    assert message and "\n" not in message, message


def finite(loss: torch.Tensor, model: torch.nn.Module) -> None:
    assert math.isfinite(loss.item()), loss
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), name


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 60,  # the suite's examples are the same every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(model_config())
def test_a_drawn_config_trains_or_is_refused_in_one_line(drawn) -> None:
    name, spec = drawn
    args = {k: v for k, v in spec.items() if k != "name"}
    torch.manual_seed(0)
    try:
        if name == "vit":
            model = attnkit.build("model", "vit", image_size=8, in_channels=1, num_classes=3, **args)
        elif name == "transformer":
            model = attnkit.build("model", "transformer", src_vocab=20, tgt_vocab=20, pad_id=0, **args)
        else:
            model = attnkit.build("model", "classifier", vocab_size=20, num_classes=3, pad_id=0, **args)
    except AttnkitError as exc:
        refused_in_one_line(exc)
        event(f"{name}: refused")
        return
    event(f"{name}: trained")
    if name == "vit":
        images = torch.randn(2, 1, 8, 8)
        finite(F.cross_entropy(model(images), torch.tensor([0, 2])), model)
        assert torch.isfinite(model.eval()(images)).all()
    elif name == "transformer":
        src = torch.tensor([[5, 6, 7, 2, 0, 0], [8, 9, 10, 11, 12, 2]])
        tgt_in = torch.tensor([[1, 5, 6, 7], [1, 8, 9, 0]])
        logits = model(src, tgt_in)
        finite(F.cross_entropy(logits.flatten(0, 1), torch.tensor([5, 6, 7, 2, 8, 9, 2, 0]), ignore_index=0), model)
        model.eval()
        cache = bool(getattr(model, "supports_cache", True))
        out = greedy(model, src, src.eq(0), bos_id=1, eos_id=2, max_len=8, use_cache=cache)
        assert out.shape[0] == 2 and out.dtype == torch.long
    else:
        tokens = torch.tensor([[3, 4, 5, 6, 0], [7, 8, 9, 10, 11]])
        finite(F.cross_entropy(model(tokens), torch.tensor([0, 2])), model)
        assert torch.isfinite(model.eval()(tokens)).all()
