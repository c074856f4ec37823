"""GPU checks (a script for a machine with CUDA, not part of the CPU test suite): every registered attention in
bfloat16 autocast against float32, the softmax kernel on SDPA's flash backend, bottom-right causal masks and cached
decoding on the GPU.

    python benchmarks/cuda_check.py

Prints one line per check and exits non-zero if any check fails.
"""

from __future__ import annotations

import sys

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

import attnkit
from attnkit.nn import EncoderDecoder, MultiHeadAttention
from attnkit.nn.decoding import beam_search, greedy

failures: list[str] = []


def report(name: str, ok: bool, detail: str) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
    if not ok:
        failures.append(name)


def flag(name: str, capability: str) -> bool:
    return getattr(attnkit.get("attention", name), capability)


def attention_in_bf16() -> None:
    """Forward and backward of every variant in each mode it supports: bf16 autocast vs float32, same weights."""
    dim, heads = 512, 8
    for name in attnkit.available("attention"):
        for mode in ("self", "causal", "cross"):
            if (mode == "causal" and not flag(name, "supports_causal")) or (
                mode == "cross" and not flag(name, "supports_cross")
            ):
                continue
            torch.manual_seed(0)
            spec = {"name": name, "max_length": 512} if name == "linformer" else name
            layer = MultiHeadAttention(dim, heads, kv_heads=2, attention=spec).cuda()
            x = torch.randn(4, 256, dim, device="cuda", requires_grad=True)
            context = torch.randn(4, 192, dim, device="cuda") if mode == "cross" else None
            reference = layer(x, context, causal=mode == "causal")
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = layer(x, context, causal=mode == "causal")
            out.float().sum().backward()
            error = ((out.float() - reference).norm() / reference.norm()).item()
            finite = bool(torch.isfinite(out).all() and torch.isfinite(x.grad).all())
            report(f"bf16 {name} {mode}", finite and error < 0.05, f"relative error {error:.4f}, finite={finite}")


def flash_path() -> None:
    """attnkit's softmax kernel runs on the flash backend (it refuses otherwise) and matches the math backend."""
    kernel = attnkit.build("attention", "softmax").cuda()
    q, k, v = (torch.randn(2, 8, 1024, 64, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    for causal in (False, True):
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            fast = kernel(q, k, v, causal=causal)
        with sdpa_kernel([SDPBackend.MATH]):
            slow = kernel(q, k, v, causal=causal)
        error = (fast.float() - slow.float()).abs().max().item()
        report(f"flash softmax causal={causal}", error < 2e-2, f"max |flash - math| {error:.2e}")


def bottom_right_causal() -> None:
    """Causal with fewer queries than keys (cached decoding) and padding: softmax (SDPA) equals eager on the GPU."""
    q = torch.randn(2, 8, 5, 64, device="cuda")
    k, v = torch.randn(2, 2, 17, 64, device="cuda"), torch.randn(2, 2, 17, 64, device="cuda")
    mask = torch.zeros(2, 17, dtype=torch.bool, device="cuda")
    mask[1, :3] = True
    soft = attnkit.build("attention", "softmax").cuda()(q, k, v, causal=True, key_padding_mask=mask)
    eager = attnkit.build("attention", "eager").cuda()(q, k, v, causal=True, key_padding_mask=mask)
    error = (soft - eager).abs().max().item()
    report("causal Nq<Nk with padding, softmax vs eager", error < 1e-4, f"max error {error:.2e}")


def cached_decoding() -> None:
    """Greedy and beam search give the same tokens with and without the KV cache, for each text encoding."""
    for pos_enc in ("sinusoidal", "rope", "alibi", "t5"):
        torch.manual_seed(0)
        model = EncoderDecoder(100, 100, dim=128, depth=2, heads=4, pos_enc=pos_enc).cuda().eval()
        src = torch.randint(4, 100, (8, 20), device="cuda")
        same = True
        for decode in (greedy, beam_search):
            a = decode(model, src, bos_id=1, eos_id=2, use_cache=True)
            b = decode(model, src, bos_id=1, eos_id=2, use_cache=False)
            same = same and torch.equal(a, b)
        report(f"cached decoding {pos_enc}", same, "greedy and beam: identical tokens" if same else "tokens differ")


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device; this script checks the GPU paths")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    attention_in_bf16()
    flash_path()
    bottom_right_causal()
    cached_decoding()
    print(f"\n{len(failures)} failed" + (f": {', '.join(failures)}" if failures else ""))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
