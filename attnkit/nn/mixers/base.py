"""The token-mixer contract: a layer `[B, N, D] -> [B, N, D]` that brings its own projections, gates and state.

Attention kernels see q, k and v after the multi-head layer's projections; the gated linear-time mixers (retention,
GLA, DeltaNet, Mamba-2, ...) need their own projections, gates, decays and short convolutions, so they sit one level
up, in the block's attention slot: `block.attn` is a mixer. Multi-head attention with any registered kernel is one
mixer among them (registered as `attention`), so blocks, `model.layers` and `mode=info` see a single kind of thing.

A mixer written on `Mixer` implements one method, `mix(x, keep, state)`: one causal pass over x `[B, N, D]`, with
`keep` `[B, N]` (1 = a token, 0 = padding, None = no padding) and the recurrent `state` (a dict of batch-first
tensors, None = empty) -> (out `[B, N, D]`, the state after the last token). `forward` serves the uses from it:

- causal (language models, decoders): one pass; with `cache` (a dict, filled in place) the state carries over from
  call to call, so decoding costs the same per token however long the text (`cache["state"]`, `cache["length"]`);
- bidirectional (encoders, the ViT): a forward and a backward pass with the same weights, summed;
- padded keys: `mix` makes padded tokens inert (they neither write to the state nor decay it), so a padded row gives
  its tokens the outputs of the row alone, in both directions.

The class-level flags say which uses a mixer serves; `attnkit.nn.capabilities.check_mixer` refuses the others in one
line when the model is built. A mixer names its output projection `out_proj` (models scale its initial weights with
the depth, as they do attention's). `form` picks the scan a mixer runs ("chunked", "recurrent", "naive"; None: chunked,
and recurrent for a single token): the three must agree, which the tests check.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnkit.errors import ConfigError
from attnkit.nn.mixers import scan

State = dict[str, Tensor]


class Mixer(nn.Module):
    """Base class of token mixers `[B, N, D] -> [B, N, D]` with a recurrent state (see the module's notes)."""

    supports_causal: ClassVar[bool] = True
    supports_bidirectional: ClassVar[bool] = True
    supports_key_padding: ClassVar[bool] = True
    supports_state: ClassVar[bool] = True  # a fixed-size decoding state
    supports_weights: ClassVar[bool] = False
    paper: ClassVar[str] = ""  # the reference its equations come from, for `mode=list`

    form: str | None = None  # the scan: None = chunked (recurrent for one token), or "chunked", "recurrent", "naive"

    def __init__(self, dim: int, *, causal: bool = True, where: str = "mixer") -> None:
        super().__init__()
        self.dim, self.causal, self.where = dim, causal, where

    def mix(self, x: Tensor, keep: Tensor | None, state: State | None) -> tuple[Tensor, State]:
        """One causal pass: x `[B, N, D]`, keep `[B, N]` or None, state or None -> (out `[B, N, D]`, new state)."""
        raise NotImplementedError(f"{type(self).__name__} implements no mix")

    def forward(
        self,
        x: Tensor,
        *,
        key_padding_mask: Tensor | None = None,
        bias: Tensor | None = None,
        cache: dict[str, Any] | None = None,
        need_weights: bool = False,
    ) -> Tensor:
        """x `[B, N, D]` -> `[B, N, D]`. `bias` (a score bias meant for attention layers) is not used: a mixer's order
        comes from its recurrence. `cache`: decoding, see the module's notes."""
        if need_weights:
            raise ConfigError(f"{self.where}: the mixer {type(self).__name__} has no attention weights to show")
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ConfigError(f"{self.where}: a mixer's input must be [B, N, dim={self.dim}]; got {tuple(x.shape)}")
        keep = None if key_padding_mask is None else (~key_padding_mask.bool()).to(x.dtype)
        if cache is not None:
            if not self.causal:
                raise ConfigError(f"{self.where}: only a causal mixer keeps a decoding state")
            out, cache["state"] = self.mix(x, keep, cache.get("state"))
            cache["length"] = int(cache.get("length", 0)) + x.shape[1]
            return out
        out, _ = self.mix(x, keep, None)
        if self.causal:
            return out
        back, _ = self.mix(x.flip(1), None if keep is None else keep.flip(1), None)
        return out + back.flip(1)

    def state_size(self) -> int:
        """Numbers in one sequence's decoding state (the same for any length): read from a state built on one token."""
        param = next(self.parameters())
        with torch.no_grad():
            _, state = self.mix(torch.zeros(1, 1, self.dim, dtype=param.dtype, device=param.device), None, None)
        return sum(t.numel() for t in state.values())

    # -- the shared pieces ---------------------------------------------------------------------------------------

    def scan_form(self, tokens: int) -> str:
        """The scan to run on `tokens` new tokens: `form` if set, else chunked (recurrent for a single token)."""
        return self.form or ("recurrent" if tokens == 1 else "chunked")

    def gated(
        self, q: Tensor, k: Tensor, v: Tensor, g: Tensor, state: Tensor | None, chunk: int
    ) -> tuple[Tensor, Tensor]:
        """The gated scan (attnkit.nn.mixers.scan) in this mixer's form."""
        form = self.scan_form(q.shape[2])
        if form == "chunked":
            return scan.gated_chunked(q, k, v, g, state, chunk)
        return (scan.gated_recurrent if form == "recurrent" else scan.gated_naive)(q, k, v, g, state)

    def delta(
        self, q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Tensor | None, state: Tensor | None, chunk: int
    ) -> tuple[Tensor, Tensor]:
        """The delta-rule scan in this mixer's form."""
        form = self.scan_form(q.shape[2])
        if form == "chunked":
            return scan.delta_chunked(q, k, v, beta, g, state, chunk)
        return (scan.delta_recurrent if form == "recurrent" else scan.delta_naive)(q, k, v, beta, g, state)


def heads_first(x: Tensor, heads: int) -> Tensor:
    """`[B, N, heads * d]` -> `[B, heads, N, d]`."""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def heads_last(x: Tensor) -> Tensor:
    """`[B, H, N, d]` -> `[B, N, H * d]`."""
    return x.transpose(1, 2).flatten(2)


def masked(x: Tensor, keep: Tensor | None) -> Tensor:
    """x `[B, H, N, ...]` zeroed at padded tokens (keep `[B, N]`, None = none)."""
    if keep is None:
        return x
    return x * keep.view(keep.shape[0], 1, keep.shape[1], *([1] * (x.dim() - 3)))


def check_divides(where: str, dim: int, heads: int, what: str = "the width") -> int:
    """`dim / heads`, refused in one line unless heads divides it."""
    if heads <= 0 or dim % heads:
        divisors = [d for d in range(1, dim + 1) if dim % d == 0]
        raise ConfigError(f"{where}: heads={heads} does not divide {what} {dim}; choose heads among {divisors}")
    return dim // heads


class ShortConv(nn.Module):
    """A causal depthwise convolution over time with SiLU (`kernel` taps), as DeltaNet and Mamba-2 put before their
    scan; its decoding state is the last `kernel - 1` inputs."""

    def __init__(self, channels: int, kernel: int = 4) -> None:
        super().__init__()
        if kernel < 1:
            raise ConfigError(f"conv_size={kernel} must be at least 1 (the short convolution's taps)")
        self.kernel = kernel
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x `[B, N, C]`, state `[B, kernel - 1, C]` or None -> (silu(conv(x)) `[B, N, C]`, the new state)."""
        past = x.new_zeros(x.shape[0], self.kernel - 1, x.shape[2]) if state is None else state
        full = torch.cat([past, x], dim=1)
        out = F.conv1d(full.transpose(1, 2), self.weight, groups=x.shape[2]).transpose(1, 2)
        return F.silu(out), full[:, full.shape[1] - (self.kernel - 1) :]
