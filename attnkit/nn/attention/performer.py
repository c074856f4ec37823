"""Performer attention: FAVOR+ positive orthogonal random features (Choromanski et al. 2021, arXiv:2009.14794)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from attnkit.errors import ConfigError
from attnkit.nn.attention.base import Attention, repeat_kv
from attnkit.nn.attention.linear import causal_sums, grouped_readout
from attnkit.ranges import PositiveInt
from attnkit.registry import register


def orthogonal_features(num_features: int, head_dim: int, device: torch.device | None = None) -> Tensor:
    """`[m, D]` Gaussian rows orthogonalised in blocks of D, each row's norm resampled chi(D)-distributed."""
    blocks = []
    for _ in range(math.ceil(num_features / head_dim)):
        qmat, r = torch.linalg.qr(torch.randn(head_dim, head_dim, device=device))
        blocks.append((qmat * torch.sign(torch.diagonal(r))).T)  # sign fix: Haar-distributed, hence unbiased
    rows = torch.cat(blocks)[:num_features]
    return rows * torch.randn(num_features, head_dim, device=device).norm(dim=1, keepdim=True)


@register("attention", "performer")
class PerformerAttention(Attention):
    """FAVOR+: softmax(QKᵀ/√d)V ≈ φ(Q)(φ(K)ᵀV) / φ(Q)φ(K)ᵀ1 in O(N·m·D), φ(x) = exp(wᵀx - |x|²/2)/√m.

    q `[B, H, Nq, D]`, k, v `[B, Hkv, Nk, D]` -> `[B, H, Nq, D]`. `num_features` (m) orthogonal random features,
    shared across heads; a buffer, redrawn at every training forward when `redraw`. Causal attention uses prefix
    sums over chunks of positions (memory O(Nk·m·D / chunk) per head), bottom-right aligned. Padded keys get zero
    features; queries with no key to see give zeros. Unbiased but approximate: the error falls as m grows.
    Computed in float32 at least.

    Recurrent (`step`): causal decoding keeps Σ φ(k)vᵀ `[B, Hkv, m, D]`, Σ φ(k) `[B, Hkv, m]` and the running
    maximum key logit `[B, Hkv]` they are scaled by, instead of the keys and values; it uses the current
    `projection` and never redraws it, so the features stay fixed through a decoding. `recurrent=False` makes the
    multi-head layer keep its key/value cache instead (for comparison).
    """

    supports_causal = True
    supports_cross = True
    supports_key_padding = True
    supports_bias = False
    supports_weights = False
    supports_cache = True  # each query's output depends only on itself and the keys
    supports_recurrent = True
    eps = 1e-6
    chunk_size = 64  # causal prefix sums, in chunks (see linear.causal_sums)

    def __init__(
        self,
        num_features: PositiveInt = 64,
        redraw: bool = False,
        head_dim: PositiveInt | None = None,
        recurrent: bool = True,
    ) -> None:
        super().__init__()
        if num_features <= 0:
            raise ConfigError(f"performer: num_features must be positive; got {num_features} (attention.num_features)")
        self.num_features, self.redraw, self.head_dim = num_features, redraw, head_dim
        self.recurrent = bool(recurrent)
        projection = None if head_dim is None else orthogonal_features(num_features, head_dim)
        self.register_buffer("projection", projection)

    def _projection(self, head_dim: int, device: torch.device, dtype: torch.dtype, redraw: bool = True) -> Tensor:
        fresh = self.projection is None or self.projection.shape[1] != head_dim
        if fresh or (redraw and self.training and self.redraw):  # lazily sized without head_dim; redrawn if asked
            self.projection = orthogonal_features(self.num_features, head_dim, device)
        return self.projection.to(device=device, dtype=dtype)

    def attend(
        self, q: Tensor, k: Tensor, v: Tensor, *, key_padding_mask: Tensor | None, causal: bool, bias: Tensor | None
    ) -> Tensor:
        dtype, (b, heads, nq, d), nk = q.dtype, q.shape, k.shape[2]
        compute = torch.promote_types(dtype, torch.float32)
        w = self._projection(d, q.device, compute)
        scale = d**-0.25  # split 1/√d between queries and keys
        q = q.to(compute) * scale
        k, v = repeat_kv(k, heads).to(compute) * scale, repeat_kv(v, heads).to(compute)
        keep = torch.ones(b, nk, dtype=torch.bool, device=q.device)
        if key_padding_mask is not None:
            keep = ~key_padding_mask.bool()
        keep4 = keep[:, None, :, None]

        q_logits = q @ w.T - q.square().sum(-1, keepdim=True) / 2  # [B, H, Nq, m]
        q_feat = torch.exp(q_logits - q_logits.amax(-1, keepdim=True).detach()) + self.eps
        k_logits = (k @ w.T - k.square().sum(-1, keepdim=True) / 2).masked_fill(~keep4, float("-inf"))
        # Keys are divided by a constant that cancels between numerator and denominator (as are the 1/√m factors),
        # chosen to keep exp() in range. Bidirectional: the largest key logit of the head, plus eps relative to it
        # (as in the reference implementation) so that the denominator and its gradient stay finite. Causal: a
        # constant from the future would leak it into the past, so each chunk of keys gets the running maximum up
        # to itself, earlier chunks are rescaled to it, and no eps is added.
        if not causal:
            k_max = k_logits.amax(dim=(-2, -1), keepdim=True).detach()
            k_feat = (torch.exp(k_logits - torch.where(torch.isfinite(k_max), k_max, 0.0)) + self.eps) * keep4
            num = q_feat @ (k_feat.transpose(-2, -1) @ v)
            den = q_feat @ k_feat.sum(-2).unsqueeze(-1)
            dead = ~keep.any(-1)[:, None, None, None]
        else:
            if nq > nk:
                raise ConfigError(f"performer: causal needs Nq <= Nk; got Nq={nq}, Nk={nk}")
            c = max(1, min(self.chunk_size, nk))
            padded = torch.nn.functional.pad(k_logits, (0, 0, 0, -nk % c), value=float("-inf"))
            running = padded.unflatten(2, (-1, c)).amax(dim=(-2, -1)).cummax(dim=-1).values.detach()  # [B, H, nk/c]
            running = torch.where(torch.isfinite(running), running, 0.0)
            k_feat = torch.exp(k_logits - running.repeat_interleave(c, dim=-1)[..., :nk, None]) * keep4
            # query i is key position nk - nq + i (bottom-right): align, take chunked prefix sums, keep the last nq
            aligned = torch.nn.functional.pad(q_feat, (0, 0, nk - nq, 0))
            num, den = causal_sums(aligned, k_feat, v, c, log_scale=running)
            num, den = num[:, :, nk - nq :], den[:, :, nk - nq :]
            seen = torch.cumsum(keep.long(), dim=1)[:, nk - nq :]  # [B, Nq]
            dead = (seen == 0)[:, None, :, None]
            # features can still underflow within a chunk for extreme inputs: such a query sees nothing
            dead = dead | (den <= torch.finfo(den.dtype).tiny)
        den = torch.where(dead, 1.0, den)
        return (num / den).masked_fill(dead, 0.0).to(dtype)

    def step(
        self, q: Tensor, k: Tensor, v: Tensor, state: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Causal attention of the next N positions given the state of the earlier ones (None: none): q
        `[B, H, N, D]`, k, v `[B, Hkv, N, D]` -> (`[B, H, N, D]`, the state with these positions added).

        The state holds "kv" = Σ φ(k)vᵀ and "k_sum" = Σ φ(k), each key's features divided by exp("log_scale"), the
        largest key logit so far; the new positions are taken in chunks as in `forward`, each chunk scaled by the
        running maximum up to itself, and the earlier state rescaled to it (the constants cancel in the quotient).
        """
        self.check_step(q, k, v, state)
        dtype, (_, heads, n, d) = q.dtype, q.shape
        compute = torch.promote_types(dtype, torch.float32)
        w = self._projection(d, q.device, compute, redraw=False)
        scale = d**-0.25
        q, k, v = q.to(compute) * scale, k.to(compute) * scale, v.to(compute)
        q_logits = q @ w.T - q.square().sum(-1, keepdim=True) / 2  # [B, H, N, m]
        q_feat = torch.exp(q_logits - q_logits.amax(-1, keepdim=True).detach()) + self.eps
        k_logits = k @ w.T - k.square().sum(-1, keepdim=True) / 2  # [B, Hkv, N, m]
        c = max(1, min(self.chunk_size, n))
        padded = torch.nn.functional.pad(k_logits, (0, 0, 0, -n % c), value=float("-inf"))
        chunk_max = padded.unflatten(2, (-1, c)).amax(dim=(-2, -1)).detach()  # [B, Hkv, N / c]
        if state is not None:
            chunk_max = torch.cat([state["log_scale"][..., None], chunk_max], dim=-1)
        running = chunk_max.cummax(dim=-1).values  # [B, Hkv, N / c]: each chunk's scale
        if state is not None:
            running = running[..., 1:]
        last = running[..., -1]  # [B, Hkv]: the new state's scale, the largest key logit so far
        kv_feat = torch.exp(k_logits - last[..., None, None])
        kv, k_sum = kv_feat.transpose(-2, -1) @ v, kv_feat.sum(dim=2)
        if state is not None:
            carry = torch.exp(state["log_scale"] - last)[..., None]
            kv, k_sum = state["kv"] * carry[..., None] + kv, state["k_sum"] * carry + k_sum
        if n == 1:  # one new position sees itself and every earlier one: the updated state
            num, den = grouped_readout(q_feat, kv, k_sum)
        else:  # chunked prefix sums over the new positions, plus the earlier ones at the scale of each chunk
            groups = heads // k.shape[1]
            k_feat = torch.exp(k_logits - running.repeat_interleave(c, dim=-1)[..., :n, None])
            log_scale = running.repeat_interleave(groups, dim=1)
            num, den = causal_sums(q_feat, repeat_kv(k_feat, heads), repeat_kv(v, heads), c, log_scale=log_scale)
            if state is not None:
                decay = torch.exp(state["log_scale"][..., None] - running).repeat_interleave(c, dim=-1)[..., :n]
                decay = decay.repeat_interleave(groups, dim=1)[..., None]  # [B, H, N, 1]
                old_num, old_den = grouped_readout(q_feat, state["kv"], state["k_sum"])
                num, den = num + old_num * decay, den + old_den * decay
        dead = den <= torch.finfo(den.dtype).tiny  # features underflowed for extreme inputs: as in `forward`
        out = (num / torch.where(dead, 1.0, den)).masked_fill(dead, 0.0)
        return out.to(dtype), {"kv": kv, "k_sum": k_sum, "log_scale": last}
