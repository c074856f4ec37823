"""A component is run once, when it is built, on a tiny input of the layout it is built for, and must keep its
contract: a tensor of the contract's shape and dtype, with finite values. Otherwise it is refused in one line that
says what it returned (a kernel that returned `[B, N, H, D]`, or `[B, H, 1, D]`, which would broadcast and train to
chance, or NaN), before anything is trained.

`probe` is the mechanism, for any kind: it runs a copy of the component in eval mode, without gradients and with
the random generators left as they were (the model built next, and the run, are those an unprobed build gives),
and remembers each (class, options, layout) that passed, so a model of many layers pays for one call.
`probe_attention` gives it a kernel's input: q `[B, H, N, D]` and k, v `[B, Hkv, Nk, D]` with the model's heads,
key/value heads and head width, causal or cross as built, a padding mask and a score bias where the model gives
them; and checks that the masks hold: a causal kernel's earlier queries do not change when the last key does, and no
output changes when a padded key does (a kernel that lets a decoder see the future would train well and decode
nonsense). A token mixer (`[B, N, D] -> [B, N, D]`) is probed the same way, with x `[B, N, D]` and its expected shape.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from attnkit.errors import AttnkitError, ConfigError
from attnkit.nn.capabilities import component_name
from attnkit.registry import location

_passed: set[Hashable] = set()  # the (class, options, layout) keys whose probe passed, in this process


def options_key(spec: Any) -> str | None:
    """A spec's options as a hashable key (a name or a mapping); None for an object built by the caller."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping):
        return json.dumps({str(k): v for k, v in spec.items()}, sort_keys=True, default=repr)
    return None


def probe(
    component: nn.Module,
    kind: str,
    call: Callable[[nn.Module], Any],
    *,
    expected: Sequence[int],
    dtype: torch.dtype,
    given: str,
    rule: str,
    key: Hashable | None = None,
    checks: Sequence[Callable[[nn.Module, Tensor], tuple[str, str] | None]] = (),
) -> None:
    """Run `call(copy of component)` once and refuse, in one line, an output that is not a tensor of shape `expected`
    and `dtype` with finite values, or that one of `checks(copy, output)` finds wrong (each returns None, or what is
    wrong and the rule it breaks). `given` says the input (`q of [2, 4, 5, 8]`), `rule` what the contract asks;
    `key` (None: no memory) skips a probe that passed before."""
    if key is not None and key in _passed:
        return
    if any(t.is_meta for t in [*component.parameters(), *component.buffers()]):
        return  # built without storage (to be materialized later): nothing to run
    name = f"{kind} {component_name(component, kind)!r}"
    trial = copy.deepcopy(component).eval()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            out = call(trial)
            problem = _problem(out, tuple(expected), dtype)
            if problem:
                raise ConfigError(f"{name} ({_where(component)}) returned {problem} for {given}; {rule}")
            for check in checks:
                if (broken := check(trial, out)) is not None:
                    raise ConfigError(f"{name} ({_where(component)}) {broken[0]} for {given}; {broken[1]}")
        except AttnkitError:
            raise
        except Exception as exc:
            message = " ".join(str(exc).split())[:300] or "(no message)"
            raise ConfigError(
                f"{name} ({_where(component, exc)}) failed on a probe input ({given}): {type(exc).__name__}: "
                f"{message}; {rule}"
            ) from exc
    if key is not None:
        _passed.add(key)


def _problem(out: Any, expected: tuple[int, ...], dtype: torch.dtype) -> str | None:
    """What is wrong with a probe's output, said as what it returned; None when it keeps the contract."""
    if not isinstance(out, Tensor):
        return f"a {type(out).__name__}, not a tensor,"
    if tuple(out.shape) != expected:
        return f"shape {list(out.shape)}"
    if out.dtype != dtype:
        return f"dtype {str(out.dtype).removeprefix('torch.')} (not {str(dtype).removeprefix('torch.')})"
    bad = ~torch.isfinite(out)
    if bad.any():
        kinds = [word for word, found in (("NaN", out.isnan().any()), ("inf", out.isinf().any())) if found]
        return f"{int(bad.sum())} non-finite values ({' and '.join(kinds)}) of {out.numel()}"
    return None


def _where(component: nn.Module, exc: BaseException | None = None) -> str:
    """file:line of the component's computing method (`attend`, else `forward`), or of the line that raised."""
    cls = type(component)
    method = next((vars(c)[m] for c in cls.__mro__ for m in ("attend", "forward") if m in vars(c)), cls)
    return location(method, exc)


def probe_length(limit: int | None, *taken: int) -> int:
    """A probe's sequence length: small, unlike every other size of the input (so that a transposed output shows),
    and at most `limit` (a kernel's most keys)."""
    n = next(n for n in range(5, 64) if n not in taken)
    return n if limit is None else max(1, min(n, limit))


def probe_attention(
    kernel: nn.Module,
    *,
    heads: int,
    kv_heads: int,
    head_dim: int,
    causal: bool = False,
    cross: bool = False,
    key_padding: bool = False,
    bias: bool = False,
    max_keys: int | None = None,
    options: Any = None,
) -> None:
    """Probe an attention kernel on the layout a multi-head layer gives it: q `[2, heads, N, head_dim]`, k and v
    `[2, kv_heads, Nk, head_dim]` (Nk = N, or N + 2 for cross-attention), `causal`, the last key of the second sample
    padded with `key_padding`, a zero score bias `[1, heads, N, Nk]` with `bias`; the masks checked by changing the
    last key (causal) and the padded one. `options`: the kernel's spec."""
    batch = 2
    limits = [n for n in (max_keys, getattr(kernel, "max_length", None)) if isinstance(n, int)]
    limit = min(limits) if limits else None  # the most keys the model gives, or the kernel takes
    nq = probe_length(limit, batch, heads, kv_heads, head_dim)
    nk = nq if not cross else probe_length(limit, batch, heads, kv_heads, head_dim, nq, nq + 1)
    dtype = torch.get_default_dtype()
    device = next((t.device for t in [*kernel.parameters(), *kernel.buffers()]), torch.device("cpu"))
    layout = (heads, kv_heads, head_dim, causal, cross, key_padding, bias, max_keys, dtype, device.type)
    spec = options_key(options)
    seeded = torch.Generator(device="cpu").manual_seed(0)
    q = torch.randn(batch, heads, nq, head_dim, generator=seeded).to(device, dtype)
    k, v = (torch.randn(batch, kv_heads, nk, head_dim, generator=seeded).to(device, dtype) for _ in range(2))
    padding = torch.zeros(batch, nk, dtype=torch.bool, device=device)
    padding[1, -1] = True
    extras = {
        "key_padding_mask": padding if key_padding else None,
        "causal": causal,
        "bias": torch.zeros(1, heads, nq, nk, device=device, dtype=dtype) if bias else None,
    }
    uses = [word for word, on in (("causal", causal), ("padded keys", key_padding), ("a bias", bias)) if on]
    given = f"q of {list(q.shape)}, k and v of {list(k.shape)}" + (f" ({', '.join(uses)})" if uses else "")

    def unchanged_by(changed: str, rows: tuple[slice, slice], k2: Tensor, v2: Tensor, must: str) -> Callable[..., Any]:
        """A check: the output in `rows` (batch, query positions) stays the same when keys and values become k2, v2."""

        def check(trial: nn.Module, out: Tensor) -> tuple[str, str] | None:
            again = trial(q, k2, v2, **extras)
            index = (rows[0], slice(None), rows[1])
            if torch.allclose(again[index], out[index], rtol=1e-4, atol=1e-5):
                return None
            return f"changed its output where the {changed} changed", must

        return check

    checks = []
    if causal and not cross:  # no query but the last may see the last key
        k2, v2 = k.clone(), v.clone()
        k2[:, :, -1], v2[:, :, -1] = k2[:, :, -1] + 1.0, v2[:, :, -1] - 1.0
        hidden = "last key (which causal attention hides from earlier queries)"
        rule = "with causal=True, attend must let query i see keys up to i only"
        checks.append(unchanged_by(hidden, (slice(None), slice(0, -1)), k2, v2, rule))
    if key_padding:
        k2, v2 = k.clone(), v.clone()
        k2[1, :, -1], v2[1, :, -1] = k2[1, :, -1] + 1.0, v2[1, :, -1] - 1.0
        hidden, rule = (
            "padded key (which key_padding_mask hides)",
            "attend must ignore keys where key_padding_mask is True",
        )
        checks.append(unchanged_by(hidden, (slice(1, 2), slice(None)), k2, v2, rule))
    probe(
        kernel,
        "attention",
        lambda trial: trial(q, k, v, **extras),
        expected=q.shape,
        dtype=dtype,
        given=given,
        rule="attend must return [B, H, N, D] (the shape and dtype of q) with finite values",
        key=None if spec is None else (type(kernel), spec, layout),
        checks=checks,
    )


def probe_mixer(mixer: nn.Module, *, causal: bool, key_padding: bool, options: Any = None) -> None:
    """Probe a token mixer (`attnkit.nn.mixers`) on x `[2, N, dim]`: its output must be `[2, N, dim]` and finite; a
    causal mixer's earlier tokens must not change when the last token does, and with `key_padding` no token of the
    second sample may change when its padded last token does."""
    dim = mixer.dim
    batch = 2
    n = probe_length(None, batch, dim)
    dtype = torch.get_default_dtype()
    device = next((t.device for t in [*mixer.parameters(), *mixer.buffers()]), torch.device("cpu"))
    x = torch.randn(batch, n, dim, generator=torch.Generator(device="cpu").manual_seed(0)).to(device, dtype)
    padding = torch.zeros(batch, n, dtype=torch.bool, device=device)
    padding[1, -1] = True
    extras = {"key_padding_mask": padding} if key_padding else {}
    uses = [word for word, on in (("causal", causal), ("padded tokens", key_padding)) if on]
    given = f"x of {list(x.shape)}" + (f" ({', '.join(uses)})" if uses else "")

    def unchanged_by(changed: str, rows: tuple[slice, slice], must: str) -> Callable[..., Any]:
        def check(trial: nn.Module, out: Tensor) -> tuple[str, str] | None:
            x2 = x.clone()
            x2[rows[0], -1] += 1.0
            again = trial(x2, **extras)
            if torch.allclose(again[rows], out[rows], rtol=1e-4, atol=1e-5):
                return None
            return f"changed its output where the {changed} changed", must

        return check

    checks = []
    if causal:
        rule = "a causal mixer's output at token i must depend on tokens up to i only"
        checks.append(
            unchanged_by("last token (which causal mixing hides from earlier ones)", (slice(None), slice(0, -1)), rule)
        )
    if key_padding:
        rule = "mix must make padded tokens inert (keep = 0): no write to the state, no decay"
        checks.append(unchanged_by("padded token", (slice(1, 2), slice(0, -1)), rule))
    layout = (dim, causal, key_padding, dtype, device.type)
    spec = options_key(options)
    probe(
        mixer,
        "mixer",
        lambda trial: trial(x, **extras),
        expected=x.shape,
        dtype=dtype,
        given=given,
        rule="a mixer must return [B, N, dim] (the shape and dtype of x) with finite values",
        key=None if spec is None else (type(mixer), spec, layout),
        checks=checks,
    )
