"""A second check of the shared scans: flash-linear-attention's own reference (naive) recurrences, where its package
is installed (`pip install "attnkit[fla]"`: fla-core, without Triton; never the training path on a CPU). The files
are loaded by path, so that the package's Triton kernels are not imported. Skipped when it is absent."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F

from attnkit.nn.mixers import scan

spec = importlib.util.find_spec("fla")
if spec is None or not spec.submodule_search_locations:
    pytest.skip("flash-linear-attention (fla-core) is not installed", allow_module_level=True)
FLA = Path(next(iter(spec.submodule_search_locations))) / "ops"


def naive(name: str) -> ModuleType:
    path = FLA / name / "naive.py"
    loader = importlib.util.spec_from_file_location(f"fla_naive_{name}", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


def inputs(dk: int = 8, dv: int = 6, n: int = 29) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(0)
    q, k = torch.randn(2, 3, n, dk), torch.randn(2, 3, n, dk)
    return q, k, torch.randn(2, 3, n, dv), torch.randn(2, 3, dk, dv)


def bthd(*xs: torch.Tensor) -> list[torch.Tensor]:
    """Our `[B, H, N, D]` as fla's `[B, N, H, D]`."""
    return [x.transpose(1, 2).contiguous() for x in xs]


def test_the_gated_scan_matches_fla_gla_and_simple_gla() -> None:
    q, k, v, S0 = inputs()
    g = F.logsigmoid(torch.randn(2, 3, 29, 8)) / 4
    ours, state = scan.gated_chunked(q * 8**-0.5, k, v, g, S0, chunk=8)
    theirs, their_state = naive("gla").naive_recurrent_gla(*bthd(q, k, v, g), initial_state=S0, output_final_state=True)
    torch.testing.assert_close(ours, theirs.transpose(1, 2), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(state, their_state, atol=1e-4, rtol=1e-4)
    g = g[..., 0]
    ours, state = scan.gated_chunked(q, k, v, g, S0, chunk=8)
    simple = naive("simple_gla").naive_recurrent_simple_gla
    theirs, their_state = simple(*bthd(q, k, v, g), scale=1.0, initial_state=S0, output_final_state=True)
    torch.testing.assert_close(ours, theirs.transpose(1, 2), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(state, their_state, atol=1e-4, rtol=1e-4)


def test_the_delta_scan_matches_fla_delta_rule_and_gated_delta_rule() -> None:
    q, k, v, S0 = inputs()
    k = F.normalize(k, dim=-1)
    beta = torch.rand(2, 3, 29)
    ours, state = scan.delta_chunked(q * 8**-0.5, k, v, beta, None, S0, chunk=8)
    theirs, their_state = naive("delta_rule").delta_rule_recurrence(q, k, v, beta, initial_state=S0)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(state, their_state, atol=1e-4, rtol=1e-4)
    g = F.logsigmoid(torch.randn(2, 3, 29))
    ours, state = scan.delta_chunked(q, k, v, beta, g, S0, chunk=8)
    gated = naive("gated_delta_rule").naive_recurrent_gated_delta_rule
    theirs, their_state = gated(*bthd(q, k, v, beta, g), scale=1.0, initial_state=S0, output_final_state=True)
    torch.testing.assert_close(ours, theirs.transpose(1, 2), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(state, their_state, atol=1e-4, rtol=1e-4)
