"""GPU checks and timings (a script for a machine with CUDA, not part of the CPU test suite): every registered
attention in bfloat16 autocast against float32, the softmax kernel on SDPA's flash backend, bottom-right causal masks
and cached decoding on the GPU; then the whole-model rows of `vs_peers.py` (attnkit against timm,
`torch.nn.Transformer` and GPT-2) and the softmax kernel's time in bf16 on the flash backend against the math backend.
A few minutes on one GPU.

    python benchmarks/cuda_check.py                               # writes the numbers into docs/measured/gpu.md
    python benchmarks/cuda_check.py --write /tmp/gpu.md --pairs   # another page (with the markers), no peer rows

Prints one line per check and the two tables, replaces the section between `<!-- cuda_check:begin -->` and
`<!-- cuda_check:end -->` of the `--write` page with them (checks that fail included), and exits non-zero if any
check fails. A peer that is not installed skips its rows, one line each. Without a CUDA device it says so, checks and
writes nothing, and exits 0.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import shlex
import statistics
import sys
import warnings
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

import attnkit
from attnkit.nn import EncoderDecoder, MultiHeadAttention
from attnkit.nn.decoding import beam_search, greedy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_peers import MODES, PAIRS, PEERS, compare, spread, verdict  # noqa: E402

PAGE = Path(__file__).resolve().parents[1] / "docs" / "measured" / "gpu.md"
BEGIN, END = "<!-- cuda_check:begin -->", "<!-- cuda_check:end -->"
PEER_PACKAGES = {"vit": "timm", "lm": "transformers"}  # seq2seq's peer is torch.nn.Transformer
FLASH_SHAPES = ((32, 8, 256, 64), (8, 16, 1024, 64), (4, 16, 4096, 128), (1, 16, 8192, 64))  # (B, H, N, D)

failures: list[str] = []
checks: list[str] = []  # the lines printed by report, for the page


def report(name: str, ok: bool, detail: str) -> None:
    line = f"{'ok  ' if ok else 'FAIL'} {name}: {detail}"
    print(line, flush=True)
    checks.append(line)
    if not ok:
        failures.append(name)


def first_line(error: Exception) -> str:
    """`Type: message`, the message cut to its first line (torch's errors run over many)."""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0] if message else ''}"


def guarded(name: str, check: Callable[[], None]) -> None:
    """Run a check; an exception fails it, under `name`, without stopping the checks after it."""
    try:
        check()
    except Exception as error:
        report(name, False, first_line(error))


def flag(name: str, capability: str) -> bool:
    return getattr(attnkit.get("attention", name), capability)


def attention_in_bf16() -> None:
    """Forward and backward of every variant in each mode it supports: bf16 autocast vs float32, same weights."""
    for name in attnkit.available("attention"):
        for mode in ("self", "causal", "cross"):
            if (mode == "causal" and not flag(name, "supports_causal")) or (
                mode == "cross" and not flag(name, "supports_cross")
            ):
                continue
            guarded(f"bf16 {name} {mode}", partial(bf16_case, name, mode))


def bf16_case(name: str, mode: str) -> None:
    """One variant in one mode (self, causal or cross), bf16 autocast against float32."""
    dim, heads = 512, 8
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


def peer_rows(device: str, pairs: list[str], rounds: int, round_s: float) -> tuple[list[str], list[str]]:
    """vs_peers.py's rows (its `compare`, alternating rounds) on `device`: the Markdown table's lines, and one line
    for each row skipped because its peer is not installed."""
    warnings.filterwarnings("ignore", message=".*enable_nested_tensor is True.*")  # nn.Transformer with norm_first
    args = argparse.Namespace(device=device, rounds=rounds, round_s=round_s, steps=0, warmup=2)
    table = [
        "| model | peer | mode | attnkit (ms/step) | peer (ms/step) | attnkit / peer | IQR | verdict |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    skipped = []
    for pair in pairs:
        kind = pair.split("-")[0]
        package = PEER_PACKAGES.get(kind)
        missing = ""
        if package and importlib.util.find_spec(package) is None:
            missing = f"{package} is not installed (`pip install 'attnkit[{package}]'`)"
        for mode in MODES:
            if mode == "generate" and kind != "lm":
                continue
            if missing:
                skipped.append(f"skipped {pair} {mode}: {missing}")
                print(skipped[-1], flush=True)
                continue
            try:
                ours, peer, ratios = compare(pair, mode, args)
            except Exception as error:
                report(f"peer row {pair} {mode}", False, first_line(error))
                continue
            median, q1, q3 = spread(ratios)
            table.append(
                f"| {pair} | {PEERS[kind]} | {mode} | {ours * 1e3:.2f} | {peer * 1e3:.2f} | {median:.2f} | "
                f"{q1:.2f}–{q3:.2f} | {verdict(median, q1, q3)} |"
            )
            print(table[-1], flush=True)
    return table, skipped


def cuda_ms(call: Callable[[], object], repeats: int = 5, calls: int = 10) -> float:
    """Median milliseconds per call of `repeats` runs of `calls` calls, timed with CUDA events after a warm-up."""
    for _ in range(3):
        call()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(calls):
            call()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / calls)
    return statistics.median(times)


def flash_rows() -> list[str]:
    """The softmax kernel's forward in bf16 on SDPA's flash backend against its math backend, per shape, bidirectional
    and causal: the Markdown table's lines."""
    kernel = attnkit.build("attention", "softmax").cuda()
    table = [
        "| B×H×N×D | causal | flash (ms) | math (ms) | math / flash |",
        "|---|---|---:|---:|---:|",
    ]
    for b, h, n, d in FLASH_SHAPES:
        q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        for causal in (False, True):
            try:
                ms = []
                for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.MATH):
                    with sdpa_kernel([backend]), torch.inference_mode():
                        ms.append(cuda_ms(partial(kernel, q, k, v, causal=causal)))
            except Exception as error:
                report(f"flash timing {b}×{h}×{n}×{d} causal={causal}", False, first_line(error))
                continue
            table.append(f"| {b}×{h}×{n}×{d} | {causal} | {ms[0]:.3f} | {ms[1]:.3f} | {ms[1] / ms[0]:.1f} |")
            print(table[-1], flush=True)
    return table


def replace_section(text: str, body: str) -> str:
    """`text` with what lies between the marker lines `<!-- cuda_check:begin -->` and `<!-- cuda_check:end -->`
    replaced by `body`; a ValueError that says what to add when the markers are missing, repeated or out of order."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(
            f"found {text.count(BEGIN)} '{BEGIN}' and {text.count(END)} '{END}'; the page needs one of each, in that "
            "order, on their own lines around the section that gets the GPU numbers"
        )
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return f"{text[:start]}\n\n{body.strip()}\n\n{text[end:]}"  # blank lines: Markdown, not HTML


def write_section(path: Path, body: str) -> None:
    """Replace the cuda_check section of the page at `path` with `body` (see `replace_section`)."""
    path.write_text(replace_section(path.read_text(), body))


def section(argv: list[str], args: argparse.Namespace, peers: tuple[list[str], list[str]], flash: list[str]) -> str:
    """The page's section: when, on what, the command, the check lines and the two tables."""
    versions = [f"torch {torch.__version__} (CUDA {torch.version.cuda})"]
    for package in PEER_PACKAGES.values():
        try:
            versions.append(f"{package} {importlib.import_module(package).__version__}")
        except ImportError:
            versions.append(f"no {package}")
    table, skipped = peers
    command = shlex.join(["python", "benchmarks/cuda_check.py", *argv])
    peer_part = ""
    if args.pairs:
        peer_part = (
            "### Whole models against their peers\n\nMilliseconds per step (`generate`: per generated token), median "
            f"of {args.rounds} alternating rounds of about {args.round_s} s a side; attnkit / peer below 1: attnkit is "
            "faster.\n\n" + "\n".join(table if len(table) > 2 else ["No row was measured."])
        )
    parts = [
        f"Measured on {date.today().isoformat()} on one {torch.cuda.get_device_name()}, {', '.join(versions)}:",
        f"```bash\n{command}\n```",
        f"### Checks\n\n{len(failures)} failed{': ' + ', '.join(failures) if failures else ''}.\n\n"
        "```text\n" + "\n".join(checks) + "\n```",
        peer_part,
        "\n".join(f"- {line}" for line in skipped),
        "### The softmax kernel: flash against math, bf16\n\nForward, milliseconds per call (CUDA events, median of "
        "5 runs of 10 calls).\n\n" + "\n".join(flash),
    ]
    return "\n\n".join(part for part in parts if part)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", type=Path, default=PAGE, help="the page whose cuda_check section gets the numbers")
    parser.add_argument(
        "--pairs", nargs="*", choices=PAIRS, default=list(PAIRS), help="vs_peers.py's pairs (none: no peer rows)"
    )
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per peer row")
    parser.add_argument("--round-s", type=float, default=0.25, help="seconds per side and round")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing checked, nothing written (this script checks the GPU paths)")
        return
    try:
        replace_section(args.write.read_text(), "")  # a page without its markers fails now, not after the run
    except (OSError, ValueError) as error:
        sys.exit(f"error: --write {args.write}: {error}")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    for check in (attention_in_bf16, flash_path, bottom_right_causal, cached_decoding):
        guarded(check.__name__, check)
    print()
    peers = peer_rows("cuda", args.pairs, args.rounds, args.round_s)
    print()
    flash = flash_rows()
    write_section(args.write, section(sys.argv[1:], args, peers, flash))
    print(f"\nwritten to {args.write}")
    print(f"{len(failures)} failed" + (f": {', '.join(failures)}" if failures else ""))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
