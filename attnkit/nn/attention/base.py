"""The attention kernel contract and the mask logic every kernel shares.

A kernel sees projected heads: q `[B, H, Nq, D]`, k and v `[B, Hkv, Nk, D]` (Hkv divides H), an optional
`key_padding_mask` `[B, Nk]` (True = ignore), `causal` (bottom-right aligned when Nq < Nk, as in cached
decoding) and an optional additive `bias` broadcastable to `[B, H, Nq, Nk]`. It returns `[B, H, Nq, D]`.

`Attention.forward(q, k, v, *, key_padding_mask=None, causal=False, bias=None)` is the contract's one entry: it
refuses what the kernel cannot serve (`check`, with the capability flags) and then calls `attend`, with the same
arguments, which is all a kernel implements. A kernel with `supports_weights` takes `need_weights` in `attend` too
and returns (out, weights) `[B, H, Nq, Nk]` when it is true; `forward` passes it only then.

A kernel written against the older form overrides `forward` itself (and may call `check` in it): it keeps working,
and stays checked, because `__init_subclass__` wraps every `forward` a subclass defines so that `check` runs first.

A kernel with `supports_recurrent` also has a recurrent form, `step(q, k, v, state) -> (out, state)`, for causal
self-attention decoded a few tokens at a time: a fixed-size state (a dict of tensors, batch first) replaces the
growing key/value cache, with the numerics of the causal parallel form.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn import capabilities
from attnkit.nn.rates import check_rate


class Attention(nn.Module):
    """Base class for attention kernels: capability flags (read by `attnkit.nn.capabilities`) plus input checks."""

    supports_causal: ClassVar[bool] = True
    supports_cross: ClassVar[bool] = True
    supports_key_padding: ClassVar[bool] = True
    supports_bias: ClassVar[bool] = False
    supports_weights: ClassVar[bool] = False
    supports_cache: ClassVar[bool] = True
    supports_recurrent: ClassVar[bool] = False  # has `step`: causal decoding with a fixed-size state
    supports_compile: ClassVar[bool] = True  # torch.compile gives the eager outputs (compile=true refuses it if not)
    max_length: int | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap a `forward` the subclass defines itself (the form before `attend`) so that `check` runs first."""
        super().__init_subclass__(**kwargs)
        if "forward" in vars(cls):
            cls.forward = _checked(vars(cls)["forward"])

    def forward(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        *,
        key_padding_mask: Tensor | None = None,
        causal: bool = False,
        bias: Tensor | None = None,
        need_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """`check` the inputs, then `attend`: q `[B, H, Nq, D]`, k and v `[B, Hkv, Nk, D]` -> `[B, H, Nq, D]`, or
        (out, weights `[B, H, Nq, Nk]`) with `need_weights` (refused unless `supports_weights`)."""
        self.check(q, k, v, key_padding_mask, bias, causal)
        if not need_weights:
            return self.attend(q, k, v, key_padding_mask=key_padding_mask, causal=causal, bias=bias)
        capabilities.check_weights(self)
        return self.attend(q, k, v, key_padding_mask=key_padding_mask, causal=causal, bias=bias, need_weights=True)

    def attend(
        self, q: Tensor, k: Tensor, v: Tensor, *, key_padding_mask: Tensor | None, causal: bool, bias: Tensor | None
    ) -> Tensor:
        """The kernel itself, on inputs `forward` has checked: q `[B, H, Nq, D]`, k and v `[B, Hkv, Nk, D]` ->
        `[B, H, Nq, D]`. Every kernel implements it (or, in the older form, `forward`)."""
        raise NotImplementedError(f"{type(self).__name__} implements no attend (nor forward)")

    def check(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        key_padding_mask: Tensor | None,
        bias: Tensor | None,
        causal: bool,
    ) -> None:
        """Refuse inputs this kernel cannot serve, with a one-line reason: shapes here, uses by the rules of
        `attnkit.nn.capabilities`."""
        name = type(self).__name__
        if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
            raise ConfigError(
                f"{name}: q, k, v must be [B, H, N, D]; got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
            )
        if k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[-1] != k.shape[-1]:
            raise ConfigError(
                f"{name}: shapes do not match: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
            )
        capabilities.check_kv_heads(q.shape[1], k.shape[1])
        if causal:
            capabilities.check_causal(self)
        if key_padding_mask is not None:
            capabilities.check_key_padding(self)
        if bias is not None:
            capabilities.check_bias(self)
        capabilities.check_max_length(self, k.shape[2])
        if key_padding_mask is not None and key_padding_mask.shape != (k.shape[0], k.shape[2]):
            raise ConfigError(
                f"{name}: key_padding_mask must be [B, Nk] = {(k.shape[0], k.shape[2])}; "
                f"got {tuple(key_padding_mask.shape)}"
            )

    def step(
        self, q: Tensor, k: Tensor, v: Tensor, state: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """One recurrent step of causal self-attention: q `[B, H, N, D]`, k and v `[B, Hkv, N, D]` are the next N
        positions, `state` sums up every earlier one (None: there is none) -> (out `[B, H, N, D]`, the new state).

        Equal to the causal parallel form over all positions so far. The state's tensors are `[B, ...]` (so that
        beam search can reorder them along dim 0), and their shapes do not depend on the number of positions.
        Only kernels with `supports_recurrent` implement it.
        """
        raise NotImplementedError(f"{type(self).__name__} has no recurrent form (supports_recurrent=False)")

    def check_step(self, q: Tensor, k: Tensor, v: Tensor, state: dict[str, Tensor] | None) -> None:
        """Refuse inputs `step` cannot serve: q, k, v of the same new positions, a state of the same batch."""
        name = type(self).__name__
        if q.dim() != 4 or k.shape != v.shape or k.dim() != 4 or q.shape[0] != k.shape[0]:
            raise ConfigError(
                f"{name}.step: q must be [B, H, N, D], k and v [B, Hkv, N, D]; "
                f"got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
            )
        if q.shape[2] != k.shape[2] or q.shape[3] != k.shape[3]:
            raise ConfigError(
                f"{name}.step: q and k must hold the same new positions; got {tuple(q.shape)}, {tuple(k.shape)}"
            )
        capabilities.check_kv_heads(q.shape[1], k.shape[1])
        if state is not None and any(t.shape[0] != q.shape[0] for t in state.values()):
            raise ConfigError(f"{name}.step: the state holds another batch size than the {q.shape[0]} rows given")


def _checked(forward: Callable[..., Any]) -> Callable[..., Any]:
    """`forward` of an older-form kernel, with `Attention.check` called on its inputs first."""

    @functools.wraps(forward)
    def checked(self: Attention, q: Tensor, k: Tensor, v: Tensor, *args: Any, **kwargs: Any) -> Any:
        self.check(q, k, v, kwargs.get("key_padding_mask"), kwargs.get("bias"), kwargs.get("causal", False))
        return forward(self, q, k, v, *args, **kwargs)

    return checked


def check_dropout(kernel: str, p: float) -> float:
    """The attention-weight dropout probability `p`, refused with one line unless 0 <= p < 1."""
    return check_rate(f"attention.dropout ({kernel})", p)


def allowed_mask(
    key_padding_mask: Tensor | None, causal: bool, nq: int, nk: int, device: torch.device
) -> tuple[Tensor | None, Tensor | None]:
    """Combine padding and causal masks into `allowed` `[B|1, 1, Nq, Nk]` (True = attend).

    Rows with no allowed key ("dead" queries) are reopened in `allowed` so that softmax stays finite, and
    returned separately as `dead` `[B|1, 1, Nq, 1]`; the kernel zeroes their output, which also gives them
    zero gradients.
    """
    allowed = None
    if causal and nq > 1:  # one query is the last position: it sees every key
        # bottom-right alignment: query i (of the last Nq positions) sees keys up to nk - nq + i
        q_pos = torch.arange(nq, device=device).unsqueeze(1) + (nk - nq)
        allowed = (torch.arange(nk, device=device).unsqueeze(0) <= q_pos)[None, None]
    if key_padding_mask is not None:
        keep = ~key_padding_mask.bool()[:, None, None, :]
        allowed = keep if allowed is None else allowed & keep
    if allowed is None:
        return None, None
    dead = ~allowed.any(dim=-1, keepdim=True)
    if not torch.compiler.is_compiling() and not dead.any():  # compiled: no data-dependent branch (graph break)
        return allowed, None
    return allowed | dead, dead


def repeat_kv(x: Tensor, heads: int) -> Tensor:
    """Expand `[B, Hkv, N, D]` to `[B, H, N, D]` for grouped-query attention."""
    groups = heads // x.shape[1]
    return x if groups == 1 else x.repeat_interleave(groups, dim=1)
