"""What decoding only real words (task.words=real) costs per output token, against free decoding, on a trained run.

    python benchmarks/word_constraint.py --run outputs/<date>/<time>              # a summarization or translation run
    python benchmarks/word_constraint.py --run <run> --limit 500 --rounds 3 --beam 1

Decodes the first `--limit` test sources of the run (its test_outputs.jsonl) with the run's decoding options, free
and real alternately for `--rounds` rounds, with the run's checkpoint (`--checkpoint`, default best.ckpt), and
prints per mode the median time, the output tokens, the time per output token and the non-word rate, then the ratio
real / free. The lexicon is the checkpoint's (or, for a checkpoint that predates it, rebuilt from the run's training
data); building the constraint (the tries) is timed on its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import torch

from attnkit.registry import get
from attnkit.tasks.seq2seq.generate import DecodeOptions, translate
from attnkit.text import Tokenizers, text_pair_source
from attnkit.text.words import Lexicon, WordConstraint, non_word_rate
from attnkit.train.checkpoints import model_from_checkpoint


def lexicon_of(payload: dict) -> Lexicon:
    """The checkpoint's known words, else those of the training pairs of the data it was trained on."""
    saved = payload["attnkit"]
    if "words" in saved:
        return Lexicon(saved["words"])
    pairs = text_pair_source(saved["data"], saved["task"]).load()
    return Lexicon.of(text for pair in pairs.train for text in pair)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a translation or summarization run directory")
    parser.add_argument("--checkpoint", default="best.ckpt")
    parser.add_argument("--limit", type=int, default=400, help="test sources decoded per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--beam", type=int, default=None, help="default: the run's")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    payload = torch.load(args.run / "checkpoints" / args.checkpoint, map_location="cpu", weights_only=False)
    saved = payload["attnkit"]
    get("task", saved["task"])  # registers the task's data sources
    model = model_from_checkpoint(payload).eval()
    tokenizers = Tokenizers.from_state(saved["tokenizers"])
    rows = [json.loads(line) for line in (args.run / "test_outputs.jsonl").read_text().splitlines()][: args.limit]
    sources = [row["source"] for row in rows]
    recipe = payload["hyper_parameters"]["task"]
    options = DecodeOptions.of(recipe)
    if args.beam is not None:
        options = dataclasses.replace(options, beam=args.beam)

    start = time.perf_counter()
    lexicon = lexicon_of(payload)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    constraint = WordConstraint.for_tokenizers(tokenizers.tgt, lexicon, tokenizers.src)
    build_s = time.perf_counter() - start
    print(f"lexicon: {len(lexicon):,} words ({read_s:.2f} s to read); constraint built in {build_s:.2f} s")

    modes = {"free": dataclasses.replace(options, words="free"), "real": dataclasses.replace(options, words="real")}
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    outputs: dict[str, list[str]] = {}
    for _ in range(args.rounds):
        for mode, opts in modes.items():
            start = time.perf_counter()
            texts, _ = translate(
                model, sources, tokenizers, opts, max_source_len=saved.get("max_source_len"), words=constraint
            )
            times[mode].append(time.perf_counter() - start)
            outputs[mode] = texts
    print(
        f"\n{args.run}: {len(sources)} test sources, beam {options.beam}, {args.threads} threads, "
        f"median of {args.rounds} alternating rounds\n"
    )
    print("| words | time (s) | output tokens | ms per output token | non-word rate |")
    print("|---|---:|---:|---:|---:|")
    per_token = {}
    for mode in modes:
        tokens = sum(len(ids) + 1 for ids in tokenizers.tgt.encode(outputs[mode]))  # + EOS
        seconds = statistics.median(times[mode])
        per_token[mode] = 1000 * seconds / tokens
        rate = non_word_rate(lexicon, outputs[mode], sources)
        print(f"| {mode} | {seconds:.2f} | {tokens:,} | {per_token[mode]:.2f} | {100 * rate:.2f} % |")
    print(f"\nreal / free per output token: {per_token['real'] / per_token['free']:.2f}x")


if __name__ == "__main__":
    main()
