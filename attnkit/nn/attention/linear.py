"""Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"): softmax replaced by a kernel feature map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from attnkit.errors import ConfigError
from attnkit.nn.attention.base import Attention, repeat_kv
from attnkit.ranges import PositiveFloat
from attnkit.registry import register


def _phi(x: Tensor) -> Tensor:
    return F.elu(x) + 1.0


def causal_sums(
    fq: Tensor, fk: Tensor, v: Tensor, chunk_size: int = 64, log_scale: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Causal numerator Σ_{j≤i} (fq_i·fk_j) v_j `[B, H, N, D]` and normaliser Σ_{j≤i} fq_i·fk_j `[B, H, N, 1]`,
    for aligned features fq, fk `[B, H, N, M]` and values v `[B, H, N, D]`.

    Prefix sums over chunks of `chunk_size` positions: state between chunks, an explicit triangle inside one, so
    memory grows as N·M·D / chunk_size rather than N·M·D. `log_scale` `[B, H, N / chunk_size]` (rounded up), if
    given, says that the keys of chunk c were divided by exp(log_scale[c]) (non-decreasing in c, to keep exp small):
    earlier chunks' state is rescaled to each chunk's constant, which then cancels between numerator and normaliser.
    """
    n = fq.shape[2]
    c = max(1, min(chunk_size, n))
    pad = -n % c
    fq, fk, v = (F.pad(t, (0, 0, 0, pad)).unflatten(2, (-1, c)) for t in (fq, fk, v))  # [B, H, n/c, c, ·]
    kv = fk.transpose(-2, -1) @ v  # [B, H, n/c, M, D] per chunk
    ks = fk.sum(dim=-2, keepdim=True)  # [B, H, n/c, 1, M]
    if log_scale is None:  # earlier chunks: exclusive prefix sums
        state = torch.cat([torch.zeros_like(kv[:, :, :1]), kv.cumsum(dim=2)[:, :, :-1]], dim=2)
        kstate = torch.cat([torch.zeros_like(ks[:, :, :1]), ks.cumsum(dim=2)[:, :, :-1]], dim=2)
    else:  # weights exp(s[c'] - s[c]) <= 1 for the chunks c' < c
        chunks = kv.shape[2]
        earlier = torch.ones(chunks, chunks, dtype=torch.bool, device=fq.device).tril(-1)
        weights = torch.exp((log_scale[..., None, :] - log_scale[..., :, None]).masked_fill(~earlier, float("-inf")))
        state = (weights @ kv.flatten(3)).view_as(kv)
        kstate = (weights @ ks.flatten(3)).view_as(ks)
    scores = (fq @ fk.transpose(-2, -1)).tril()  # within the chunk, [B, H, n/c, c, c]
    num = fq @ state + scores @ v
    den = (fq * kstate).sum(dim=-1, keepdim=True) + scores.sum(dim=-1, keepdim=True)
    return num.flatten(2, 3)[:, :, :n], den.flatten(2, 3)[:, :, :n]


def grouped_readout(fq: Tensor, kv: Tensor, k_sum: Tensor) -> tuple[Tensor, Tensor]:
    """What queries' features fq `[B, H, N, M]` read from a recurrent state kept per key/value head: kv
    `[B, Hkv, M, D]` (Σ φ(k) vᵀ) and k_sum `[B, Hkv, M]` (Σ φ(k)) -> numerator `[B, H, N, D]` and normaliser
    `[B, H, N, 1]`; query head h reads kv head h // (H / Hkv), as `repeat_kv` lays them out."""
    b, heads, n, m = fq.shape
    grouped = fq.view(b, kv.shape[1], heads // kv.shape[1], n, m)
    num = grouped @ kv[:, :, None]
    den = grouped @ k_sum[:, :, None, :, None]
    return num.flatten(1, 2), den.flatten(1, 2)


@register("attention", "linear")
class LinearAttention(Attention):
    """Linear attention: phi(Q)(phi(K)ᵀV) / (phi(Q)·Σphi(K)) with phi = elu + 1 (Katharopoulos et al. 2020).

    q `[B, H, Nq, D]`, k and v `[B, Hkv, Nk, D]` -> `[B, H, Nq, D]`. Time and memory grow linearly in N: the
    non-causal form sums phi(K)ᵀV once; the causal form (bottom-right aligned) takes prefix sums of it over chunks
    of `chunk_size` keys. Padded keys get zero features; a query with no key to see returns zeros. Computed in
    float32 at least. It approximates softmax attention, so it has no score bias and no weights.

    Recurrent (`step`, Katharopoulos et al. §3.4): causal decoding keeps S = Σ phi(k)vᵀ `[B, Hkv, D, D]` and
    z = Σ phi(k) `[B, Hkv, D]` instead of the keys and values; `recurrent=False` makes the multi-head layer keep
    its key/value cache instead (for comparison).
    """

    supports_causal = True
    supports_cross = True
    supports_key_padding = True
    supports_bias = False
    supports_weights = False
    supports_cache = True  # recomputes over the cached keys: equal to the full pass
    supports_recurrent = True
    max_length = None
    chunk_size = 64

    def __init__(self, eps: PositiveFloat = 1e-6, recurrent: bool = True) -> None:
        super().__init__()
        if not eps > 0:
            raise ConfigError(f"linear attention eps={eps} must be > 0 (e.g. 1e-6)")
        self.eps, self.recurrent = eps, bool(recurrent)

    def attend(
        self, q: Tensor, k: Tensor, v: Tensor, *, key_padding_mask: Tensor | None, causal: bool, bias: Tensor | None
    ) -> Tensor:
        heads, nq, nk = q.shape[1], q.shape[2], k.shape[2]
        dtype = torch.promote_types(q.dtype, torch.float32)
        fq = _phi(q.to(dtype))
        fk = _phi(repeat_kv(k, heads).to(dtype))
        v = repeat_kv(v, heads).to(dtype)
        keep = None
        if key_padding_mask is not None:
            keep = ~key_padding_mask.bool()  # [B, Nk]
            fk = fk.masked_fill(~keep[:, None, :, None], 0.0)
        if causal:
            if nq > nk:
                raise ConfigError(f"LinearAttention: causal needs Nq <= Nk; got Nq={nq}, Nk={nk}")
            fq = F.pad(fq, (0, 0, nk - nq, 0))  # align query i with key position nk - nq + i
            num, den = causal_sums(fq, fk, v, self.chunk_size)
            num, den = num[:, :, nk - nq :], den[:, :, nk - nq :]
        else:
            num = fq @ (fk.transpose(-2, -1) @ v)
            den = fq @ fk.sum(dim=2).unsqueeze(-1)  # [B, H, Nq, 1]
        out = num / den.clamp_min(self.eps)
        dead = None
        if keep is not None:
            seen = keep.cumsum(dim=1)[:, nk - nq :] if causal else keep.sum(dim=1, keepdim=True)  # [B, Nq|1]
            dead = (seen == 0)[:, None, :, None]
        if dead is not None:
            out = out.masked_fill(dead, 0.0)
        return out.to(q.dtype)

    def step(
        self, q: Tensor, k: Tensor, v: Tensor, state: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Causal attention of the next N positions given the state {"kv": S, "k_sum": z} of the earlier ones (None:
        none): q `[B, H, N, D]`, k, v `[B, Hkv, N, D]` -> (`[B, H, N, D]`, the state with these positions added)."""
        self.check_step(q, k, v, state)
        heads = q.shape[1]
        dtype = torch.promote_types(q.dtype, torch.float32)
        fq, fk, v32 = _phi(q.to(dtype)), _phi(k.to(dtype)), v.to(dtype)
        kv, k_sum = fk.transpose(-2, -1) @ v32, fk.sum(dim=2)
        if state is not None:
            kv, k_sum = state["kv"] + kv, state["k_sum"] + k_sum
        if q.shape[2] == 1:  # one new position sees itself and every earlier one: the updated state
            num, den = grouped_readout(fq, kv, k_sum)
        else:  # prefix sums over the new positions, plus the earlier ones
            num, den = causal_sums(fq, repeat_kv(fk, heads), repeat_kv(v32, heads), self.chunk_size)
            if state is not None:
                old_num, old_den = grouped_readout(fq, state["kv"], state["k_sum"])
                num, den = num + old_num, den + old_den
        out = num / den.clamp_min(self.eps)
        return out.to(q.dtype), {"kv": kv, "k_sum": k_sum}
