"""Nyströmformer attention: landmark Nyström approximation of softmax (Xiong et al. 2021, arXiv:2102.03902)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from attnkit.errors import ConfigError
from attnkit.nn.attention.base import Attention, repeat_kv
from attnkit.ranges import PositiveInt
from attnkit.registry import register


def segment_means(x: Tensor, m: int, keep: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Landmarks `[B, H, m, D]`: means of m contiguous near-equal segments of x `[B, H, N, D]` (m <= N).

    With `keep` `[B, N]` (True = real key), padded positions are left out; returns which landmarks have any
    real position (`[B, m]`, or None without `keep`).
    """
    n = x.shape[2]
    segment = torch.arange(n, device=x.device) * m // n
    assign = F.one_hot(segment, m).T.to(x.dtype)  # [m, N]
    if keep is None:
        return (assign @ x) / assign.sum(-1, keepdim=True), None
    weights = assign * keep[:, None, :].to(x.dtype)  # [B, m, N]
    counts = weights.sum(-1)
    return (weights[:, None] @ x) / counts.clamp_min(1.0)[:, None, :, None], counts > 0


def iterative_pinv(a: Tensor, iterations: int) -> Tensor:
    """Moore–Penrose pseudo-inverse of `[..., m, n]` by the iteration of Razavi et al. 2014 (as in the paper)."""
    scale = a.abs().sum(-2).amax(-1) * a.abs().sum(-1).amax(-1)
    z = a.transpose(-2, -1) / scale[..., None, None]
    eye = torch.eye(a.shape[-2], device=a.device, dtype=a.dtype)
    for _ in range(iterations):
        az = a @ z
        z = 0.25 * z @ (13 * eye - az @ (15 * eye - az @ (7 * eye - az)))
    return z


@register("attention", "nystrom")
class NystromAttention(Attention):
    """softmax(QK̃ᵀ)·pinv(softmax(Q̃K̃ᵀ))·softmax(Q̃Kᵀ)V, with Q̃, K̃ segment-mean landmarks (scores scaled by 1/√d).

    q `[B, H, Nq, D]`, k, v `[B, Hkv, Nk, D]` -> `[B, H, Nq, D]`; O(N·m) for m = `num_landmarks` (min(N, m) are
    used). Padded keys are left out of the landmark means and the scores. No causal mask; no cache, since a query's
    output depends on the other queries through the query landmarks. Exact (up to the pinv iterations) when
    Nq, Nk <= num_landmarks.
    """

    supports_causal = False
    supports_cross = True
    supports_key_padding = True
    supports_bias = False
    supports_weights = False
    supports_cache = False

    def __init__(self, num_landmarks: PositiveInt = 16, pinv_iterations: PositiveInt = 6) -> None:
        super().__init__()
        if num_landmarks <= 0:
            raise ConfigError(f"nystrom: num_landmarks must be positive; got {num_landmarks} (attention.num_landmarks)")
        if pinv_iterations < 0:
            raise ConfigError(
                f"nystrom: pinv_iterations must be >= 0; got {pinv_iterations} (attention.pinv_iterations)"
            )
        self.num_landmarks, self.pinv_iterations = num_landmarks, pinv_iterations

    def attend(
        self, q: Tensor, k: Tensor, v: Tensor, *, key_padding_mask: Tensor | None, causal: bool, bias: Tensor | None
    ) -> Tensor:
        dtype, heads, nq, nk, d = q.dtype, q.shape[1], q.shape[2], k.shape[2], q.shape[3]
        q = q.float() * d**-0.25
        k, v = repeat_kv(k, heads).float() * d**-0.25, repeat_kv(v, heads).float()
        keep = dead = None
        if key_padding_mask is not None:
            keep = ~key_padding_mask.bool()
            dead_b = ~keep.any(-1)
            keep = keep | dead_b[:, None]  # rows with no key: computed on all keys, zeroed below
            if dead_b.any():
                dead = dead_b[:, None, None, None]
        q_land, _ = segment_means(q, min(self.num_landmarks, nq))
        k_land, valid = segment_means(k, min(self.num_landmarks, nk), keep)

        def softmax(scores: Tensor, cols: Tensor | None) -> Tensor:
            if cols is not None:
                scores = scores.masked_fill(~cols[:, None, None, :], float("-inf"))
            return torch.softmax(scores, dim=-1)

        kernel_1 = softmax(q @ k_land.transpose(-2, -1), valid)  # [B, H, Nq, mk]
        kernel_2 = softmax(q_land @ k_land.transpose(-2, -1), valid)  # [B, H, mq, mk]
        kernel_3 = softmax(q_land @ k.transpose(-2, -1), keep)  # [B, H, mq, Nk]
        out = kernel_1 @ (iterative_pinv(kernel_2, self.pinv_iterations) @ (kernel_3 @ v))
        out = out if dead is None else out.masked_fill(dead, 0.0)
        return out.to(dtype)
