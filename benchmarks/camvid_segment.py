"""CamVid (or any street-scene folder of a few hundred images): the `experiment=camvid` recipe against a
convolutional peer trained from scratch for the same wall time, on the same data, crops and schedule.

    python benchmarks/camvid_segment.py --data ../shared/data/camvid --seeds 0
    python benchmarks/camvid_segment.py --data ../shared/data/camvid --seeds 0 1 2 --peer none -- attention=linear

Each attnkit run is `python -m attnkit experiment=camvid data.path=<data> seed=<s> <overrides>` in its own run
directory (outputs/benchmarks/...); the peer (`--peer`: torchvision's `lraspp` = LR-ASPP MobileNetV3-Large, or
`fcn` = FCN ResNet-50, both `weights=None, weights_backbone=None`) then trains in this process on the data the run
recorded, with the run's crops, scales, flips, batch size, learning rate and cosine schedule, for the run's training
time (`train_time_s`), and is scored on the run's test split (CamVid: the validation images) at the same resolution
with the same sliding windows, confusion matrix and mean IoU. Prints a Markdown table (mean ± std over seeds).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import torch
from recipe import run

from attnkit.registry import build_spec
from attnkit.tasks.segment.augment import random_crops
from attnkit.tasks.segment.data.base import IGNORE
from attnkit.tasks.segment.metrics import confusion, scores
from attnkit.tasks.segment.window import sliding_window
from attnkit.train.checkpoints import read


def peer_model(name: str, num_classes: int) -> torch.nn.Module:
    from torchvision.models import segmentation

    if name == "lraspp":
        net = segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes)
    else:
        net = segmentation.fcn_resnet50(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
    return net


def train_peer(name: str, run_dir: Path, seconds: float, seed: int) -> dict:
    """The peer trained for `seconds` on the run's data and recipe, then scored on its test split."""
    torch.manual_seed(seed)
    payload = read(run_dir / "checkpoints" / "last.ckpt", "segment")
    saved, hparams = payload["attnkit"], payload["hyper_parameters"]
    recipe, crop = hparams["task"], tuple(hparams["context"]["image_size"])
    source = build_spec("data", saved["data"])
    splits = source.load()
    net = peer_model(name, splits.num_classes)
    forward = lambda x: net(x)["out"]  # noqa: E731
    weights = hparams["context"].get("class_weights")
    weight = None if weights is None else torch.tensor(weights)
    optimizer = torch.optim.AdamW(net.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    loader = torch.utils.data.DataLoader(splits.train, batch_size=source.batch_size, shuffle=True, drop_last=True)
    # the run's schedule in time rather than steps: warm-up, then cosine decay to min_lr_ratio over `seconds`
    warm, floor = recipe["warmup_fraction"], recipe["min_lr_ratio"]
    start, steps, done = time.perf_counter(), 0, False
    net.train()
    while not done:
        for images, masks in loader:
            progress = (time.perf_counter() - start) / seconds
            if progress >= 1:
                done = True
                break
            factor = (
                progress / warm
                if progress < warm
                else floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * (progress - warm) / (1 - warm)))
            )
            for group in optimizer.param_groups:
                group["lr"] = recipe["lr"] * factor
            crops, labels = random_crops(images, masks, crop, recipe["min_scale"], recipe["max_scale"], recipe["flip"])
            loss = torch.nn.functional.cross_entropy(forward(crops), labels, weight=weight, ignore_index=IGNORE)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            steps += 1
    trained = time.perf_counter() - start
    crops_per_s = steps * source.batch_size / trained
    net.eval()
    counts = torch.zeros(splits.num_classes, splits.num_classes, dtype=torch.int64)
    with torch.no_grad():
        for images, masks in torch.utils.data.DataLoader(splits.test, batch_size=source.batch_size):
            predicted = sliding_window(forward, images, crop, recipe["window_overlap"]).argmax(1)
            counts += confusion(predicted, masks, splits.num_classes)
    result = scores(counts, splits.class_names)
    params = sum(p.numel() for p in net.parameters())
    return {
        **{f"test/{k}": result[k] for k in ("miou", "class_acc", "pixel_acc")},
        "train_time_s": trained,
        "train_images_per_s": crops_per_s,
        "params": params,
    }


def summary(values: list[float]) -> str:
    mean = statistics.mean(values)
    return f"{mean:.1%}" + (f" ± {statistics.stdev(values):.1%}" if len(values) > 1 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the data folder (CamVid's layout: train.txt, val.txt)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--peer", choices=["lraspp", "fcn", "none"], default="lraspp")
    parser.add_argument("--out", default="outputs/benchmarks")
    parser.add_argument("overrides", nargs="*", help="further attnkit overrides, after --")
    args = parser.parse_args()
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    ours, peers = [], []
    for seed in args.seeds:
        run_dir = Path(args.out) / stamp / f"camvid-seed{seed}"
        overrides = ["experiment=camvid", f"data.path={Path(args.data).resolve()}", *args.overrides]
        ours.append(run(overrides, seed, run_dir))
        if args.peer != "none":
            peers.append(train_peer(args.peer, run_dir.resolve(), ours[-1]["train_time_s"], seed))
            print(f"peer {args.peer} seed {seed}: mIoU {peers[-1]['test/miou']:.4f}", file=sys.stderr)
    majority = ours[0]["majority_class"]
    command = " ".join(["experiment=camvid", *args.overrides])
    print(f"\n`python -m attnkit {command}`, seeds {args.seeds}, {os.cpu_count()} CPU cores\n")
    print("| model | mIoU | class-average accuracy | pixel accuracy | training time (s) | crops / s | parameters |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = [("attnkit `experiment=camvid`", ours)] + (
        [(f"torchvision {args.peer} (same data, crops, time)", peers)] if peers else []
    )
    for label, runs in rows:
        cells = [summary([r[f"test/{k}"] for r in runs]) for k in ("miou", "class_acc", "pixel_acc")]
        time_s = statistics.mean(r["train_time_s"] for r in runs)
        speed = statistics.mean(r["train_images_per_s"] for r in runs)
        print(f"| {label} | {' | '.join(cells)} | {time_s:.0f} | {speed:.1f} | {runs[0]['params']:,} |")
    cells = " | ".join(f"{majority[k]:.1%}" for k in ("miou", "class_acc", "pixel_acc"))
    print(f"| the training split's majority class | {cells} | 0 | | 0 |")


if __name__ == "__main__":
    main()
