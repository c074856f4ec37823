"""Rotary, bias and image encodings against their papers' formulas; their bad inputs; a ViT at another size."""

from __future__ import annotations

import math

import pytest
import torch
from checks import one_line
from hypothesis import given, settings
from hypothesis import strategies as st

import attnkit
from attnkit import ConfigError
from attnkit.nn import ViT
from attnkit.nn.pos_enc import (
    Alibi,
    Learned,
    Rope,
    Rope2d,
    SinCos2d,
    T5Bias,
    alibi_slopes,
    relative_buckets,
    sinusoidal_table,
)

# --- rope ---------------------------------------------------------------------------------------------------


def rope_by_hand(x: torch.Tensor, positions: list[int], base: float, rot: int) -> torch.Tensor:
    """Su et al. eq. 34: pair (2i, 2i+1) at position p turns by p·base^(-2i/rot); features past `rot` stay."""
    out = x.clone().double()
    for row, p in enumerate(positions):
        for i in range(rot // 2):
            angle = p * base ** (-2 * i / rot)
            a, b = x[..., row, 2 * i].double(), x[..., row, 2 * i + 1].double()
            out[..., row, 2 * i] = a * math.cos(angle) - b * math.sin(angle)
            out[..., row, 2 * i + 1] = a * math.sin(angle) + b * math.cos(angle)
    return out


@pytest.mark.parametrize(("fraction", "rot"), [(1.0, 8), (0.5, 4), (0.3, 2)])
@pytest.mark.parametrize("offset", [0, 5])
def test_rope_rotates_pairs_as_in_the_paper(fraction, rot, offset) -> None:
    pe = Rope(dim=16, heads=2, base=100.0, fraction=fraction)  # head_dim 8
    assert pe.rot == rot
    q, k = torch.randn(2, 2, 4, 8), torch.randn(2, 1, 4, 8)
    rq, rk = pe.rotate(q, k, offset=offset)
    positions = list(range(offset, offset + 4))
    torch.testing.assert_close(rq.double(), rope_by_hand(q, positions, 100.0, rot), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rk.double(), rope_by_hand(k, positions, 100.0, rot), atol=1e-5, rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(0, 2000),
    n=st.integers(0, 2000),
    shift=st.integers(0, 2000),
    fraction=st.sampled_from([0.25, 0.5, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_rope_score_depends_only_on_the_offset(m, n, shift, fraction, seed) -> None:
    """q_m·k_n = q_{m+s}·k_{n+s}: moving both tokens by the same shift leaves every score unchanged."""
    gen = torch.Generator().manual_seed(seed)
    pe = Rope(dim=16, heads=1, fraction=fraction)
    q, k = torch.randn(1, 1, 1, 16, generator=gen), torch.randn(1, 1, 1, 16, generator=gen)

    def score(pq: int, pk: int) -> float:
        rq, _ = pe.rotate(q, q, offset=pq)
        _, rk = pe.rotate(k, k, offset=pk)
        return float((rq * rk).sum())

    assert score(m, n) == pytest.approx(score(m + shift, n + shift), abs=2e-3, rel=1e-3)


def test_rope_keeps_dtype_and_norm() -> None:
    pe = Rope(dim=16, heads=2)
    q = torch.randn(1, 2, 5, 8, dtype=torch.bfloat16)
    rq, _ = pe.rotate(q, q)
    assert rq.dtype == torch.bfloat16
    torch.testing.assert_close(rq.float().norm(dim=-1), q.float().norm(dim=-1), atol=0.05, rtol=0.02)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"dim": 6, "heads": 2}, "even head dimension"),  # head_dim 3
        ({"dim": 16, "heads": 2, "fraction": 0.0}, "(0, 1]"),
        ({"dim": 16, "heads": 2, "fraction": 1.5}, "(0, 1]"),
        ({"dim": 16, "heads": 2, "fraction": 0.1}, "rotates no pair"),
        ({"dim": 16, "heads": 2, "base": 1.0}, "base"),
    ],
)
def test_rope_bad_options_are_one_line(kwargs, word) -> None:
    with pytest.raises(ConfigError) as exc:
        attnkit.build("pos_enc", "rope", **kwargs)
    assert word in one_line(exc)


# --- rope2d -------------------------------------------------------------------------------------------------


def test_rope2d_rotates_by_row_and_column_and_skips_the_class_token() -> None:
    pe = Rope2d(dim=16, heads=2, grid=(2, 3), prefix_tokens=1, base=10.0)  # head_dim 8: 2 row + 2 column pairs
    q = torch.randn(1, 2, 7, 8)
    rq, _ = pe.rotate(q, q)
    torch.testing.assert_close(rq[:, :, 0], q[:, :, 0])  # class token untouched
    for token in range(6):
        r, c = divmod(token, 3)
        rows = rope_by_hand(q[..., 1 + token : 2 + token, :4], [r], 10.0, 4)  # theta over rot/2 = 4 features
        cols = rope_by_hand(q[..., 1 + token : 2 + token, 4:], [c], 10.0, 4)
        torch.testing.assert_close(
            rq[..., 1 + token : 2 + token, :].double(), torch.cat((rows, cols), -1), atol=1e-5, rtol=1e-5
        )


def test_rope2d_score_depends_only_on_the_2d_offset() -> None:
    pe = Rope2d(dim=8, heads=1, grid=(4, 4))
    q1, k1 = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    q, k = q1.expand(1, 1, 16, 8).clone(), k1.expand(1, 1, 16, 8).clone()
    rq, rk = pe.rotate(q, k)
    scores = (rq[0, 0] @ rk[0, 0].T).reshape(4, 4, 4, 4)  # [qr, qc, kr, kc]
    torch.testing.assert_close(scores[0, 0, 1, 2], scores[2, 1, 3, 3])  # both offsets (+1, +2)
    torch.testing.assert_close(scores[3, 3, 1, 0], scores[2, 3, 0, 0])  # both (-2, -3)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"dim": 16, "heads": 2}, "image tasks"),  # no grid: a text model
        ({"dim": 12, "heads": 2, "grid": (2, 2)}, "multiple of 4"),  # head_dim 6
        ({"dim": 6, "heads": 2, "grid": (2, 2)}, "even head dimension"),
        ({"dim": 16, "heads": 2, "grid": (2, 2), "fraction": 2.0}, "(0, 1]"),
    ],
)
def test_rope2d_bad_options_are_one_line(kwargs, word) -> None:
    with pytest.raises(ConfigError) as exc:
        attnkit.build("pos_enc", "rope2d", **kwargs)
    assert word in one_line(exc)


def test_rope2d_refuses_a_grid_that_does_not_match_the_tokens() -> None:
    pe = Rope2d(dim=16, heads=2, grid=(3, 3), prefix_tokens=1)
    q = torch.randn(1, 2, 12, 8)
    with pytest.raises(ConfigError) as exc:
        pe.rotate(q, q)
    assert "3x3" in one_line(exc) and "12 tokens" in str(exc.value)


# --- alibi --------------------------------------------------------------------------------------------------


def test_alibi_slopes_for_8_heads_are_half_to_1_over_256() -> None:
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([1 / 2**i for i in range(1, 9)]))


@pytest.mark.parametrize(
    ("heads", "expected"),
    [
        (1, [2**-8]),
        (2, [2**-4, 2**-8]),
        (6, [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3]),  # 4 heads' slopes, then every other slope of 8
        (12, [2 ** -(i + 1) for i in range(8)] + [2**-0.5, 2**-1.5, 2**-2.5, 2**-3.5]),
    ],
)
def test_alibi_slopes_for_other_head_counts(heads, expected) -> None:
    torch.testing.assert_close(alibi_slopes(heads), torch.tensor(expected))


@pytest.mark.parametrize("causal", [False, True])
def test_alibi_bias_is_minus_slope_times_distance(causal) -> None:
    bias = Alibi(heads=2, causal=causal).score_bias(3, 5)  # queries are positions 2, 3, 4 of 5
    assert bias.shape == (1, 2, 3, 5)
    for h, slope in enumerate([2**-4, 2**-8]):
        for i, qp in enumerate([2, 3, 4]):
            for kp in range(5):
                distance = max(qp - kp, 0) if causal else abs(qp - kp)
                assert bias[0, h, i, kp].item() == pytest.approx(-slope * distance)


# --- t5 -----------------------------------------------------------------------------------------------------

# relative = key − query; the buckets of Raffel et al.'s bucketing (32 buckets, max distance 128), worked by hand
BIDIRECTIONAL = {
    0: 0,
    -1: 1,
    -7: 7,
    -8: 8,
    -16: 10,
    -32: 12,
    -64: 14,
    -127: 15,
    -500: 15,
    1: 17,
    8: 24,
    16: 26,
    500: 31,
}
CAUSAL = {0: 0, -1: 1, -15: 15, -16: 16, -32: 21, -64: 26, -127: 31, -1000: 31, 1: 0, 50: 0}


@pytest.mark.parametrize(("bidirectional", "table"), [(True, BIDIRECTIONAL), (False, CAUSAL)])
def test_t5_buckets_match_the_published_bucketing(bidirectional, table) -> None:
    relative = torch.tensor(list(table))
    assert relative_buckets(relative, bidirectional, 32, 128).tolist() == list(table.values())


def test_t5_bias_reads_the_learned_table() -> None:
    pe = T5Bias(heads=3, num_buckets=8, max_distance=16)
    torch.nn.init.normal_(pe.bias.weight)
    bias = pe.score_bias(2, 4)  # queries at positions 2, 3
    relative = torch.tensor([[-2, -1, 0, 1], [-3, -2, -1, 0]])
    expected = pe.bias.weight[relative_buckets(relative, True, 8, 16)].permute(2, 0, 1)[None]
    torch.testing.assert_close(bias, expected)
    assert T5Bias(heads=3, causal=True).causal


@pytest.mark.parametrize("kwargs", [{"num_buckets": 2}, {"num_buckets": 32, "max_distance": 4}])
def test_t5_bad_options_are_one_line(kwargs) -> None:
    with pytest.raises(ConfigError) as exc:
        attnkit.build("pos_enc", "t5", heads=2, **kwargs)
    assert "num_buckets" in one_line(exc)


# --- sincos2d, learned tables and other image sizes ---------------------------------------------------------


def test_sincos2d_is_row_then_column_sinusoids() -> None:
    pe = SinCos2d(dim=8, grid=(2, 3), prefix_tokens=1)
    out = pe.add_to_tokens(torch.zeros(1, 7, 8))[0]
    assert out[0].abs().sum() == 0
    rows, cols = sinusoidal_table(2, 4), sinusoidal_table(3, 4)
    for token in range(6):
        r, c = divmod(token, 3)
        torch.testing.assert_close(out[1 + token], torch.cat((rows[r], cols[c])))


def test_sincos2d_bad_width_and_grid() -> None:
    with pytest.raises(ConfigError) as exc:
        attnkit.build("pos_enc", "sincos2d", dim=6, grid=(2, 2))
    assert "divisible by 4" in one_line(exc)
    with pytest.raises(ConfigError) as exc:
        SinCos2d(dim=8, grid=(2, 2)).add_to_tokens(torch.zeros(1, 5, 8))
    assert "2x2" in one_line(exc)


TINY = {"image_size": 8, "in_channels": 1, "num_classes": 3, "patch_size": 2, "dim": 16, "depth": 1, "heads": 2}


@pytest.mark.parametrize("pos_enc", ["sincos2d", {"name": "learned", "interpolate": True}, "rope", "alibi", "t5"])
def test_vit_runs_at_another_image_size(pos_enc) -> None:
    model = ViT(**{**TINY, "pos_enc": pos_enc}).eval()
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    assert model(torch.randn(2, 1, 12, 10)).shape == (2, 3)  # a 6x5 grid instead of 4x4


def test_learned_interpolation_keeps_the_table_at_its_own_size() -> None:
    pe = Learned(8, max_len=1 + 9, interpolate=True, grid=(3, 3), prefix_tokens=1)
    x = torch.zeros(1, 10, 8)
    torch.testing.assert_close(pe.add_to_tokens(x, grid=(3, 3)), pe.add_to_tokens(x))
    resized = pe.add_to_tokens(torch.zeros(1, 1 + 36, 8), grid=(6, 6))
    torch.testing.assert_close(resized[0, 0], pe.weight[0])  # the class token's row is kept
    assert resized.shape == (1, 37, 8)


@pytest.mark.parametrize("pos_enc", ["learned", "rope2d"])
def test_vit_at_another_image_size_is_refused_with_the_fix(pos_enc) -> None:
    model = ViT(**{**TINY, "pos_enc": pos_enc}).eval()
    with pytest.raises(ConfigError) as exc:
        model(torch.randn(1, 1, 12, 12))
    message = one_line(exc)
    assert "4x4" in message and ("interpolate" in message or "6x6" in message or "37 tokens" in message)


def test_text_model_refuses_image_encodings() -> None:
    for name in ("sincos2d", "rope2d"):
        with pytest.raises(ConfigError) as exc:
            attnkit.build_spec("pos_enc", name, dim=16, heads=2, max_len=32)
        assert "image tasks" in one_line(exc)
