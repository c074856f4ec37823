"""The scans every linear-time mixer shares, each in its three forms: naive (quadratic, for tests), recurrent (a token
at a time: decoding) and chunked (quadratic inside chunks of C tokens, a state carried between them: training, O(N C)).

Two recurrences cover the six built-in mixers. With per-head state S `[Dk, Dv]`, read by o_t = S_tᵀ q_t (the
current token included):

- gated: S_t = diag(exp g_t) S_{t-1} + k_t v_tᵀ, with a log decay g_t ≤ 0 per head (`g` `[B, H, N]`: retention,
  Mamba-2) or per key channel (`g` `[B, H, N, Dk]`: GLA, HGRN-2);
- delta: S_t = exp(g_t) (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ (DeltaNet with g = 0, Gated DeltaNet), chunked by
  the WY form of Yang et al. 2024: inside a chunk, U = (I + tril(diag β (K Kᵀ ⊙ Γ), -1))⁻¹ diag β (V - diag γ K S₀)
  with Γ_ts = γ_t / γ_s, then O = diag γ Q S₀ + (tril(Q Kᵀ) ⊙ Γ) U and S = γ_C S₀ + (K ⊙ γ_C / γ)ᵀ U.

Decays stay in log space and every exponent used is a difference G_t - G_s with s ≤ t (or the chunk's last position
against an earlier one), so no factor exceeds 1 and nothing overflows in float32, however strong the gates. A mixer
makes padded positions inert before a scan (k = 0, g = 0, β = 0): they neither write to the state nor decay it.
Shapes: q, k `[B, H, N, Dk]`, v `[B, H, N, Dv]`, β and a per-head g `[B, H, N]`; the state `[B, H, Dk, Dv]`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _state(q: Tensor, v: Tensor, state: Tensor | None) -> Tensor:
    if state is not None:
        return state
    return q.new_zeros(q.shape[0], q.shape[1], q.shape[-1], v.shape[-1])


def _decay(g: Tensor) -> Tensor:
    """A step's multiplier of the state `[B, H, Dk|1, 1]` from its log decay `[B, H]` or `[B, H, Dk]`."""
    return (g[..., None, None] if g.dim() == 2 else g[..., None]).exp()


def _pad(x: Tensor, pad: int) -> Tensor:
    """x `[B, H, N, ...]` with `pad` zero positions appended along N."""
    if pad == 0:
        return x
    return F.pad(x, (0, 0) * (x.dim() - 3) + (0, pad))


def _lower(diff: Tensor, dims: int) -> Tensor:
    """exp(diff) below and on the diagonal, 0 above; the diagonal pair sits at dims -2-dims, -1-dims."""
    c = diff.shape[-1 - dims]
    keep = torch.ones(c, c, dtype=torch.bool, device=diff.device).tril()
    keep = keep.view(c, c, *([1] * dims))
    return torch.where(keep, diff, torch.full_like(diff, float("-inf"))).exp()


# -- gated: S_t = diag(exp g_t) S_{t-1} + k_t v_tᵀ -----------------------------------------------------------------


def gated_naive(q: Tensor, k: Tensor, v: Tensor, g: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The quadratic form: o_t = Σ_{s≤t} (q_t ⊙ exp(G_t - G_s))·k_s v_s + (q_t ⊙ exp G_t) S₀, G the cumulative log
    decay. Memory `[B, H, N, N(, Dk)]`: for tests."""
    S0 = _state(q, v, state)
    G = g.cumsum(2)
    if g.dim() == 3:
        scores = (q @ k.transpose(-1, -2)) * _lower(G[..., :, None] - G[..., None, :], 0)
        carried = (q * G.exp()[..., None]) @ S0
        last = G[..., -1:]
        final = last[..., None].exp() * S0 + (k * (last - G).exp()[..., None]).transpose(-1, -2) @ v
    else:
        weights = _lower(G[..., :, None, :] - G[..., None, :, :], 1)
        scores = (q[..., :, None, :] * k[..., None, :, :] * weights).sum(-1)
        carried = (q * G.exp()) @ S0
        last = G[..., -1:, :]
        final = last.transpose(-1, -2).exp() * S0 + (k * (last - G).exp()).transpose(-1, -2) @ v
    return scores @ v + carried, final


def gated_recurrent(q: Tensor, k: Tensor, v: Tensor, g: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One token at a time, the decoding path: (o `[B, H, N, Dv]`, the state after the last token)."""
    S = _state(q, v, state)
    out = []
    for q_t, k_t, v_t, g_t in zip(*(x.unbind(2) for x in (q, k, v, g)), strict=True):
        S = _decay(g_t) * S + k_t[..., :, None] * v_t[..., None, :]
        out.append((q_t[..., None, :] @ S).squeeze(-2))
    return torch.stack(out, 2), S


def gated_chunked(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor, state: Tensor | None = None, chunk: int = 64
) -> tuple[Tensor, Tensor]:
    """The training path: quadratic inside chunks of `chunk` tokens (a product mask of decays), the state carried
    from chunk to chunk. A per-channel decay builds a `[C, C, Dk]` weight per chunk: use a small chunk (16)."""
    B, H, N, Dk = q.shape
    Dv = v.shape[-1]
    chunk = max(1, min(chunk, N))  # a sequence shorter than a chunk is one chunk of its own length (no padding)
    pad = (-N) % chunk
    n = (N + pad) // chunk
    q, k, v, g = (_pad(x, pad).unflatten(2, (n, chunk)) for x in (q, k, v, g))  # [B, H, n, C, ...]
    G = g.cumsum(3)
    if g.dim() == 4:  # one decay per head
        last = G[..., -1:]  # [B, H, n, 1]
        scores = (q @ k.transpose(-1, -2)) * _lower(G[..., :, None] - G[..., None, :], 0)
        q_in = q * G.exp()[..., None]
        k_out = k * (last - G).exp()[..., None]
        decay = last[..., None].exp()  # [B, H, n, 1, 1]
    else:
        last = G[..., -1:, :]  # [B, H, n, 1, Dk]
        weights = _lower(G[..., :, None, :] - G[..., None, :, :], 1)
        scores = (q[..., :, None, :] * k[..., None, :, :] * weights).sum(-1)
        q_in = q * G.exp()
        k_out = k * (last - G).exp()
        decay = last.transpose(-1, -2).exp()  # [B, H, n, Dk, 1]
    updates = k_out.transpose(-1, -2) @ v  # [B, H, n, Dk, Dv]
    S = _state(q, v, state)
    entering = []
    for decay_c, update_c in zip(decay.unbind(2), updates.unbind(2), strict=True):  # unbind: one backward, not n
        entering.append(S)
        S = decay_c * S + update_c
    out = scores @ v + q_in @ torch.stack(entering, 2)
    return out.reshape(B, H, n * chunk, Dv)[:, :, :N], S


# -- delta: S_t = exp(g_t) (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ ------------------------------------------------


def delta_recurrent(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Tensor | None = None, state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The delta rule a token at a time: S ← exp(g) S, then S ← S + k (β (v - Sᵀ k))ᵀ, o = Sᵀ q."""
    S = _state(q, v, state)
    out = []
    gates = g.unbind(2) if g is not None else [None] * q.shape[2]
    for q_t, k_t, v_t, beta_t, g_t in zip(*(x.unbind(2) for x in (q, k, v, beta)), gates, strict=True):
        if g_t is not None:
            S = _decay(g_t) * S
        k_t = k_t[..., None, :]  # [B, H, 1, Dk]
        u = beta_t[..., None, None] * (v_t[..., None, :] - k_t @ S)  # [B, H, 1, Dv]
        S = S + k_t.transpose(-1, -2) @ u
        out.append((q_t[..., None, :] @ S).squeeze(-2))
    return torch.stack(out, 2), S


def delta_chunked(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    beta: Tensor,
    g: Tensor | None = None,
    state: Tensor | None = None,
    chunk: int = 64,
) -> tuple[Tensor, Tensor]:
    """The delta rule over chunks (the WY form, see the module's notes): a unit lower-triangular solve per chunk,
    computed for all chunks at once, then four products per chunk to carry the state."""
    B, H, N, Dk = q.shape
    Dv = v.shape[-1]
    chunk = max(1, min(chunk, N))  # a sequence shorter than a chunk is one chunk of its own length (no padding)
    pad = (-N) % chunk
    n = (N + pad) // chunk
    g = torch.zeros_like(beta) if g is None else g
    q, k, v, beta, g = (_pad(x, pad).unflatten(2, (n, chunk)) for x in (q, k, v, beta, g))
    G = g.cumsum(3)  # [B, H, n, C]
    last = G[..., -1:]
    gamma = _lower(G[..., :, None] - G[..., None, :], 0)  # Γ_ts = γ_t / γ_s below the diagonal
    system = ((k @ k.transpose(-1, -2)) * gamma * beta[..., None]).tril(-1)
    system = system + torch.eye(chunk, dtype=q.dtype, device=q.device)
    solve = torch.linalg.solve_triangular
    w = solve(system, (beta * G.exp())[..., None] * k, upper=False, unitriangular=True)  # [B, H, n, C, Dk]
    u0 = solve(system, beta[..., None] * v, upper=False, unitriangular=True)  # [B, H, n, C, Dv]
    scores = (q @ k.transpose(-1, -2)) * gamma
    q_in = q * G.exp()[..., None]
    k_out = (k * (last - G).exp()[..., None]).transpose(-1, -2)  # [B, H, n, Dk, C]
    decay = last[..., None].exp()  # [B, H, n, 1, 1]
    S = _state(q[:, :, 0], v[:, :, 0], state)
    out = []
    per_chunk = (t.unbind(2) for t in (u0, w, q_in, scores, decay, k_out))  # unbind: one backward each, not n
    for u0_c, w_c, q_c, scores_c, decay_c, k_c in zip(*per_chunk, strict=True):
        u = u0_c - w_c @ S
        out.append(q_c @ S + scores_c @ u)
        S = decay_c * S + k_c @ u
    return torch.stack(out, 2).reshape(B, H, n * chunk, Dv)[:, :, :N], S


def delta_naive(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Tensor | None = None, state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The quadratic form of the delta rule: one chunk as long as the sequence (a solve over all N tokens)."""
    return delta_chunked(q, k, v, beta, g, state, chunk=q.shape[2])
