"""The sequence classifier: shapes, padding, pooling, config errors, every registered attention and pos_enc."""

from __future__ import annotations

import pytest
import torch
from checks import one_line

import attnkit
from attnkit import ConfigError
from attnkit.nn import SequenceClassifier

from .plugin_encodings import PLUGINS, registered

TINY = {"vocab_size": 20, "num_classes": 4, "dim": 16, "depth": 2, "heads": 2, "max_len": 32, "dropout": 0.0}


def tokens(b: int = 3, n: int = 10) -> torch.Tensor:
    return torch.randint(1, 20, (b, n))


def pad(x: torch.Tensor, extra: int) -> torch.Tensor:
    return torch.cat([x, torch.zeros(x.shape[0], extra, dtype=x.dtype)], dim=1)


@pytest.mark.parametrize("pool", ["mean", "cls"])
def test_forward_shape_and_registry(pool) -> None:
    model = attnkit.build("model", "classifier", **{**TINY, "pool": pool})
    assert isinstance(model, SequenceClassifier) and model(tokens()).shape == (3, 4)


@pytest.mark.parametrize("pool", ["mean", "cls"])
@pytest.mark.parametrize("pos_enc", ["sinusoidal", "rope", "alibi", "learned", "none"])
def test_padding_changes_nothing(pool, pos_enc) -> None:
    """Padding is masked out of attention and of the mean: a padded batch gives the unpadded logits."""
    model = SequenceClassifier(**{**TINY, "pool": pool, "pos_enc": pos_enc}).eval()
    x = tokens()
    with torch.no_grad():
        torch.testing.assert_close(model(pad(x, 5)), model(x), atol=1e-5, rtol=1e-5)
        mask = torch.zeros(3, 15, dtype=torch.bool)
        mask[:, 10:] = True
        torch.testing.assert_close(model(pad(x, 5), mask), model(x), atol=1e-5, rtol=1e-5)


def test_rows_of_different_lengths_match_alone() -> None:
    model = SequenceClassifier(**TINY).eval()
    short, long = tokens(1, 4), tokens(1, 9)
    batch = torch.cat([pad(short, 5), long])
    with torch.no_grad():
        out = model(batch)
        torch.testing.assert_close(out[0], model(short)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out[1], model(long)[0], atol=1e-5, rtol=1e-5)


def test_without_positions_order_does_not_matter_and_with_positions_it_does() -> None:
    x = tokens()
    flipped = x.flip(1)
    with torch.no_grad():
        bag = SequenceClassifier(**{**TINY, "pos_enc": "none"}).eval()
        torch.testing.assert_close(bag(x), bag(flipped), atol=1e-5, rtol=1e-5)
        ordered = SequenceClassifier(**TINY).eval()
        assert not torch.allclose(ordered(x), ordered(flipped), atol=1e-4)


def test_config_errors_are_one_line() -> None:
    cases = [
        ({"pool": "max"}, "model.pool='max' is not a pooling"),
        ({"max_len": 0}, "model.max_len=0 must be a positive integer"),
        ({"dim": 15}, "does not divide the width"),
        ({"attention": {"name": "linformer", "max_length": 512}, "max_len": 1000}, "takes at most 512 keys"),
    ]
    for change, fragment in cases:
        with pytest.raises(ConfigError) as exc:
            SequenceClassifier(**{**TINY, **change})
        assert fragment in one_line(exc), (change, one_line(exc))
    with pytest.raises(ConfigError) as exc:
        SequenceClassifier(**TINY)(tokens(2, 40))
    assert "40 tokens exceeds model.max_len=32" in one_line(exc)


def pairs(allowed: bool):
    for attention in attnkit.available("attention"):
        kernel = attnkit.get("attention", attention)
        for pos_enc in attnkit.available("pos_enc"):
            if pos_enc in ("sincos2d", "rope2d"):
                continue  # image encodings: they need a patch grid
            bias = getattr(attnkit.get("pos_enc", pos_enc), "kind", "absolute") == "bias"
            if (not bias or kernel.supports_bias) == allowed:
                yield pytest.param(attention, pos_enc, id=f"{attention}-{pos_enc}")


@pytest.mark.parametrize(("attention", "pos_enc"), list(pairs(allowed=True)))
def test_every_attention_and_pos_enc_trains(attention, pos_enc) -> None:
    model = SequenceClassifier(**{**TINY, "attention": attention, "pos_enc": pos_enc})
    x = pad(tokens(2, 8), 3)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([1, 3]))
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        if name.startswith("embed"):
            continue  # only the ids present get gradients
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize(("attention", "pos_enc"), list(pairs(allowed=False)))
def test_forbidden_pairs_fail_at_build(attention, pos_enc) -> None:
    with pytest.raises(ConfigError) as exc:
        SequenceClassifier(**{**TINY, "attention": attention, "pos_enc": pos_enc})
    assert "needs score bias" in one_line(exc)


@pytest.mark.parametrize("pos_enc", PLUGINS)
def test_plugin_encodings_reach_the_classifier(pos_enc) -> None:
    """Order reaches the logits only through the encoding's hook (rotary and bias ones act on the scores: weights of
    unit scale make the attention peaked enough for the order to show)."""
    with registered():
        model = SequenceClassifier(**{**TINY, "pos_enc": pos_enc}).eval()
    x = tokens()
    with torch.no_grad():
        for block in model.blocks:
            torch.nn.init.normal_(block.attn.q_proj.weight)
            torch.nn.init.normal_(block.attn.k_proj.weight)
        assert not torch.allclose(model(x), model(x.flip(1)), atol=1e-4)


@pytest.mark.parametrize("pos_enc", ["sincos2d", "rope2d"])
def test_image_encodings_are_refused(pos_enc) -> None:
    with pytest.raises(ConfigError) as exc:
        SequenceClassifier(**{**TINY, "pos_enc": pos_enc})
    assert "is for image tasks" in one_line(exc)
