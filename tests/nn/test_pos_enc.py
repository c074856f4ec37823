"""Positional encodings: the sinusoidal formula, the learned table's limit, and every registered encoding."""

from __future__ import annotations

import math

import pytest
import torch
from checks import one_line

import attnkit
from attnkit import ConfigError, registry
from attnkit.nn.pos_enc import Learned, PositionalEncoding, Sinusoidal, sinusoidal_table

POS_ENCS = attnkit.available("pos_enc")
DIM, HEADS, MAX_LEN = 8, 2, 16
CONTEXT = {
    "dim": DIM,
    "heads": HEADS,
    "head_dim": DIM // HEADS,
    "max_len": MAX_LEN,
    "grid": (3, 5),
    "prefix_tokens": 1,
}


def kind(name: str) -> str:
    return getattr(attnkit.get("pos_enc", name), "kind", "absolute")


def of_kind(wanted: str) -> list[str]:
    return [name for name in POS_ENCS if kind(name) == wanted]


def formula(length: int, dim: int, offset: int = 0) -> torch.Tensor:
    """PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(p / 10000^(2i/d)), element by element."""
    table = torch.empty(length, dim, dtype=torch.float64)
    for row in range(length):
        p = row + offset
        for j in range(dim):
            angle = p / 10000 ** (2 * (j // 2) / dim)
            table[row, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return table


# --- sinusoidal ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [8, 6, 5])
def test_sinusoidal_table_is_the_formula(dim) -> None:
    torch.testing.assert_close(sinusoidal_table(12, dim).double(), formula(12, dim), atol=1e-6, rtol=0)
    torch.testing.assert_close(
        sinusoidal_table(4, dim, offset=7).double(), formula(4, dim, offset=7), atol=1e-6, rtol=0
    )


def test_sinusoidal_module_adds_the_formula() -> None:
    pe = Sinusoidal(DIM)
    x = torch.randn(2, 10, DIM)
    torch.testing.assert_close(pe.add_to_tokens(x) - x, formula(10, DIM).float().expand(2, -1, -1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("offset", [0, 1, 5, 40])
def test_sinusoidal_offset(offset) -> None:
    pe = Sinusoidal(DIM)
    x = torch.zeros(1, 3, DIM)
    torch.testing.assert_close(
        pe.add_to_tokens(x, offset=offset)[0].double(), formula(3, DIM, offset), atol=1e-6, rtol=0
    )


def test_sinusoidal_any_length_and_growth_is_consistent() -> None:
    pe = Sinusoidal(DIM)
    short = pe.add_to_tokens(torch.zeros(1, 2, DIM))
    long = pe.add_to_tokens(torch.zeros(1, 300, DIM))  # the table grows on demand
    torch.testing.assert_close(long[:, :2], short)
    torch.testing.assert_close(pe.add_to_tokens(torch.zeros(1, 2, DIM)), short)


def test_sinusoidal_follows_dtype_and_scale() -> None:
    x = torch.zeros(1, 4, DIM, dtype=torch.bfloat16)
    assert Sinusoidal(DIM).add_to_tokens(x).dtype == torch.bfloat16
    torch.testing.assert_close(
        Sinusoidal(DIM, scale=2.0).add_to_tokens(torch.zeros(1, 4, DIM)),
        2 * Sinusoidal(DIM).add_to_tokens(torch.zeros(1, 4, DIM)),
    )


# --- learned ------------------------------------------------------------------------------------------------


def test_learned_adds_table_rows() -> None:
    pe = Learned(DIM, max_len=8)
    x = torch.randn(2, 5, DIM)
    torch.testing.assert_close(pe.add_to_tokens(x), x + pe.weight[:5])
    torch.testing.assert_close(pe.add_to_tokens(x[:, :2], offset=6), x[:, :2] + pe.weight[6:8])
    assert pe.add_to_tokens(torch.zeros(1, 8, DIM)).shape == (1, 8, DIM)  # exactly max_len is fine


@pytest.mark.parametrize(("length", "offset"), [(9, 0), (3, 6), (1, 8)])
def test_learned_refuses_positions_past_max_len(length, offset) -> None:
    pe = Learned(DIM, max_len=8)
    with pytest.raises(ConfigError) as exc:
        pe.add_to_tokens(torch.zeros(1, length, DIM), offset=offset)
    message = one_line(exc)
    assert "max_len=8" in message and str(length + offset) in message


def test_learned_refuses_non_positive_max_len() -> None:
    with pytest.raises(ConfigError) as exc:
        attnkit.build("pos_enc", "learned", dim=DIM, max_len=0)
    one_line(exc)


def test_learned_gets_gradients() -> None:
    pe = Learned(DIM, max_len=8)
    pe.add_to_tokens(torch.zeros(1, 3, DIM)).sum().backward()
    assert pe.weight.grad[:3].abs().sum() > 0 and pe.weight.grad[3:].abs().sum() == 0


# --- every registered encoding ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", POS_ENCS)
@pytest.mark.parametrize("spec", ["name", "defaults"])
def test_every_pos_enc_builds_from_spec_with_context(name, spec) -> None:
    spec = name if spec == "name" else registry.defaults("pos_enc", name)
    pe = attnkit.build_spec("pos_enc", spec, **CONTEXT)
    assert isinstance(pe, PositionalEncoding)
    assert pe.kind in ("absolute", "rotary", "bias")
    assert pe.max_len is None or pe.max_len >= 1


def run(pe: PositionalEncoding, n: int, dtype: torch.dtype = torch.float32, offset: int = 0):
    """Call the three hooks as a model does; check that the two of other kinds are no-ops; return the outputs of the
    encoding's own hook."""
    x = torch.randn(2, n, DIM, dtype=dtype, requires_grad=True)
    q = torch.randn(2, HEADS, n, DIM // HEADS, dtype=dtype, requires_grad=True)
    k = torch.randn(2, HEADS, n, DIM // HEADS, dtype=dtype, requires_grad=True)
    tokens, (rq, rk), bias = pe.add_to_tokens(x, offset=offset), pe.rotate(q, k, offset=offset), pe.score_bias(n, n)
    assert tokens.shape == x.shape and rq.shape == q.shape and rk.shape == k.shape
    assert tokens is x or pe.kind == "absolute"
    assert (rq is q and rk is k) or pe.kind == "rotary"
    assert (bias is None) == (pe.kind != "bias")
    if pe.kind == "absolute":
        return (tokens,)
    if pe.kind == "rotary":
        return rq, rk
    assert bias.dim() == 4 and bias.shape[-2:] == (n, n) and bias.shape[1] in (1, HEADS)
    return (bias,)


@pytest.mark.parametrize("name", POS_ENCS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
def test_every_pos_enc_runs(name, dtype) -> None:
    pe = attnkit.build_spec("pos_enc", name, **CONTEXT).to(dtype)
    n = min(MAX_LEN, pe.max_len or MAX_LEN)
    outputs = run(pe, n, dtype)
    for out in outputs:
        assert torch.isfinite(out.float()).all()
        if pe.kind != "bias":
            assert out.dtype == dtype
    total = sum(o.float().sum() for o in outputs)
    if total.requires_grad:  # alibi has nothing to learn
        total.backward()
    for p in pe.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", of_kind("absolute"))
def test_absolute_offset_selects_later_positions(name) -> None:
    pe = attnkit.build_spec("pos_enc", name, **CONTEXT)
    x = torch.randn(1, MAX_LEN, DIM)  # the full image grid of CONTEXT: 1 + 3·5 tokens
    torch.testing.assert_close(pe.add_to_tokens(x[:, 4:], offset=4), pe.add_to_tokens(x)[:, 4:])


@pytest.mark.parametrize("name", of_kind("rotary"))
def test_rotary_offset_selects_later_positions(name) -> None:
    pe = attnkit.build_spec("pos_enc", name, **CONTEXT)
    q, k = torch.randn(2, HEADS, MAX_LEN, DIM // HEADS), torch.randn(2, HEADS, MAX_LEN, DIM // HEADS)
    full_q, full_k = pe.rotate(q, k)
    part_q, part_k = pe.rotate(q[:, :, 4:], k[:, :, 4:], offset=4)
    torch.testing.assert_close(part_q, full_q[:, :, 4:])
    torch.testing.assert_close(part_k, full_k[:, :, 4:])


@pytest.mark.parametrize("name", [n for n in of_kind("absolute") if n != "none"])
def test_absolute_encodings_distinguish_positions(name) -> None:
    pe = attnkit.build_spec("pos_enc", name, **CONTEXT)
    out = pe.add_to_tokens(torch.zeros(1, MAX_LEN, DIM))[0, 1:]  # the patch rows (row 0 may be a class token)
    assert len({tuple(row.tolist()) for row in out}) == MAX_LEN - 1


def test_none_adds_nothing() -> None:
    x = torch.randn(2, 5, DIM)
    pe = attnkit.build_spec("pos_enc", "none", **CONTEXT)
    assert pe.add_to_tokens(x) is x and pe.score_bias(5, 5) is None
    q, k = torch.randn(2, HEADS, 5, DIM // HEADS), torch.randn(2, HEADS, 5, DIM // HEADS)
    assert pe.rotate(q, k) == (q, k)


def test_an_encoding_with_forward_but_no_hook_is_refused() -> None:
    """The interface before the hooks: a `forward` that no model would call. Refused when the class is defined."""
    with pytest.raises(TypeError) as exc:

        class OldStyle(PositionalEncoding):
            kind = "bias"

            def forward(self, nq: int, nk: int) -> torch.Tensor:
                return torch.zeros(1, 1, nq, nk)

    assert "OldStyle" in one_line(exc) and "score_bias" in one_line(exc)
