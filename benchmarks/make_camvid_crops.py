"""Build a folder of 32x32 colour photographs in 10 classes from CamVid's street scenes, for `data=image_folder`.

    python benchmarks/make_camvid_crops.py --out /tmp/camvid32          # or --out outputs/camvid32
    python -m attnkit task=vit data=image_folder data.path=/tmp/camvid32

A real-photo stand-in for "60,000 32x32 colour photographs in 10 classes" (CIFAR-10's shape), built offline from
../shared/data/camvid (its README: 468 RGB frames of 480x360, `train/` and `val/`, with label maps in `trainannot/`
and `valannot/`, 11 classes + void). A crop is labelled by the majority class of its label-map pixels (the most
frequent one). Of the 12 labels, void (11, Unlabelled) and Pole (2, the rarest: about 40 crops on the 32-pixel grid,
poles being a few pixels wide) are left out: crops whose majority is either are not written. The other 10 classes
are the folders: sky, building, road, pavement, tree, sign_symbol, fence, car, pedestrian, bicyclist.

Crops come from both CamVid splits and never overlap within a frame, so no test crop repeats pixels of a training crop
(frames a second apart in one drive still look alike: a proxy, not a benchmark). Candidate windows lie every 8 pixels;
the rare classes (under 2 % of the candidates: pedestrian, sign_symbol, bicyclist, fence) take theirs first, rarest
first and purest first, then one scan in reading order fills each frame with windows of the other classes, which packs
them as a 32-pixel grid would. That gives about 72,000 crops, of which about 2,200 are pixel-identical to another
(saturated white sky) and are kept once; `--count` (60,000) of them are kept at their natural frequencies with a
floor: every class keeps at least `--min-per-class` (500; all it has if fewer), and the rest of the count is shared in
proportion to what each class has (road, building and sky are most of it, as they are most of the pixels). Which crops
are kept, and their numbering, follow `--seed`. Writes `<out>/<class>/<n>.png` (a single tree: `data=image_folder`
carves validation and test from it, stratified) and prints the count per class and the majority-class share (the
accuracy of always answering it).

`--out` is replaced if it exists; inside the repository only under outputs/ (ignored by git).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SIZE, STEP = 32, 8  # crop side, spacing of the candidate windows (pixels)
RARE_SHARE = 0.02  # classes under this share of the candidates pick their windows first
CLASSES = {  # CamVid label id -> folder; 2 (Pole) and 11 (void) are left out
    0: "sky",
    1: "building",
    3: "road",
    4: "pavement",
    5: "tree",
    6: "sign_symbol",
    7: "fence",
    8: "car",
    9: "pedestrian",
    10: "bicyclist",
}
LABELS = 12
REPO = Path(__file__).resolve().parent.parent


def frames(src: Path) -> list[tuple[Path, Path]]:
    """(image, label map) pairs of both splits, as `train.txt` and `val.txt` list them."""
    pairs = []
    for listing in ("train.txt", "val.txt"):
        for line in (src / listing).read_text().split("\n"):
            if line.strip():
                image, labels = line.split()
                pairs.append((src / image, src / labels))
    return pairs


def windows(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, x, counts): the top-left corner of every candidate window and its label counts `[n, LABELS]`."""
    h, w = labels.shape
    onehot = (labels[..., None] == np.arange(LABELS)).astype(np.int32)
    integral = np.zeros((h + 1, w + 1, LABELS), np.int32)
    integral[1:, 1:] = onehot.cumsum(0).cumsum(1)
    y, x = np.meshgrid(np.arange(0, h - SIZE + 1, STEP), np.arange(0, w - SIZE + 1, STEP), indexing="ij")
    y, x = y.ravel(), x.ravel()
    counts = integral[y + SIZE, x + SIZE] - integral[y, x + SIZE] - integral[y + SIZE, x] + integral[y, x]
    return y, x, counts


def select(label_maps: list[np.ndarray]) -> list[tuple[int, int, int, int]]:
    """Non-overlapping windows (frame, y, x, label) of the kept classes: the rare classes first, then the rest."""
    found = [windows(labels) for labels in label_maps]
    majority = [counts.argmax(1) for _, _, counts in found]
    share = np.bincount(np.concatenate(majority), minlength=LABELS) / sum(len(m) for m in majority)
    rare = sorted((c for c in CLASSES if share[c] < RARE_SHARE), key=lambda c: share[c])
    taken = [np.zeros(labels.shape, bool) for labels in label_maps]
    chosen = []

    def take(frame: int, k: int) -> None:
        y, x, _ = found[frame]
        window = taken[frame][y[k] : y[k] + SIZE, x[k] : x[k] + SIZE]
        if not window.any():
            window[...] = True
            chosen.append((frame, int(y[k]), int(x[k]), int(majority[frame][k])))

    for c in rare:  # rarest first; in a frame, the purest windows first
        for frame, (_, _, counts) in enumerate(found):
            ks = np.flatnonzero(majority[frame] == c)
            for k in ks[np.argsort(-counts[ks, c], kind="stable")]:
                take(frame, k)
    common = [c for c in CLASSES if c not in rare]
    for frame in range(len(found)):  # reading order: packs like a grid
        for k in np.flatnonzero(np.isin(majority[frame], common)):
            take(frame, k)
    return chosen


def pixels_once(
    chosen: list[tuple[int, int, int, int]], images: list[Path]
) -> tuple[dict[tuple[int, int, int, int], np.ndarray], int]:
    """The pixels `[SIZE, SIZE, 3]` of each chosen window, a crop pixel-identical to an earlier one left out (the
    saturated white of an over-exposed sky, mostly); and how many were left out."""
    by_frame: dict[int, list[tuple[int, int, int, int]]] = {}
    for crop in chosen:
        by_frame.setdefault(crop[0], []).append(crop)
    tiles, seen, duplicates = {}, set(), 0
    for frame, crops in sorted(by_frame.items()):
        pixels = np.array(Image.open(images[frame]).convert("RGB"))
        for crop in crops:
            tile = pixels[crop[1] : crop[1] + SIZE, crop[2] : crop[2] + SIZE].copy()
            digest = hashlib.sha256(tile.tobytes()).digest()
            if digest in seen:
                duplicates += 1
                continue
            seen.add(digest)
            tiles[crop] = tile
    return tiles, duplicates


def quotas(available: dict[int, int], count: int, floor: int) -> dict[int, int]:
    """Crops to keep per class: natural frequencies with a floor of `floor` (all a class has if fewer), `count`
    in all (everything when there are fewer)."""
    keep, left, pool = {}, min(count, sum(available.values())), sum(available.values())
    for c in sorted(available, key=lambda c: available[c]):  # rarest first: the floor, then its share of the rest
        keep[c] = min(available[c], left, max(floor, round(left * available[c] / pool)))
        left, pool = left - keep[c], pool - available[c]
    return keep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", default="../shared/data/camvid", help="the CamVid folder (train.txt, val.txt)")
    parser.add_argument("--out", required=True, help="the image folder to write (replaced if it exists)")
    parser.add_argument("--count", type=int, default=60_000, help="crops to write")
    parser.add_argument("--min-per-class", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    src, out = Path(args.src).resolve(), Path(args.out).resolve()
    if out.is_relative_to(REPO) and not out.is_relative_to(REPO / "outputs"):
        sys.exit(f"--out {out} is inside the repository: give a folder under {REPO / 'outputs'} or outside it")
    if not (src / "train.txt").is_file():
        sys.exit(f"{src} is not the CamVid folder (no train.txt); give --src ../shared/data/camvid")
    pairs = frames(src)
    chosen = select([np.array(Image.open(labels)) for _, labels in pairs])
    tiles, duplicates = pixels_once(chosen, [image for image, _ in pairs])
    by_class: dict[int, list[tuple[int, int, int, int]]] = {c: [] for c in CLASSES}
    for crop in tiles:
        by_class[crop[3]].append(crop)
    keep = quotas({c: len(crops) for c, crops in by_class.items()}, args.count, args.min_per_class)
    rng = np.random.default_rng(args.seed)
    if out.exists():
        shutil.rmtree(out)
    for c in CLASSES:
        (out / CLASSES[c]).mkdir(parents=True)
        kept = [by_class[c][i] for i in sorted(rng.permutation(len(by_class[c]))[: keep[c]])]
        for n, crop in zip(rng.permutation(len(kept)), kept, strict=True):  # numbered in no order of place
            Image.fromarray(tiles[crop]).save(out / CLASSES[c] / f"{n}.png")

    total = sum(keep.values())
    found = f"{len(tiles):,} non-overlapping found, {duplicates:,} pixel-identical to another left out"
    print(f"{total:,} crops of {SIZE}x{SIZE} from {len(pairs)} frames ({found}): {out}")
    print("  " + ", ".join(f"{CLASSES[c]} {keep[c]:,}" for c in CLASSES))
    top = max(keep, key=keep.get)
    print(f"majority class: {CLASSES[top]}, {keep[top] / total:.1%} of the crops (the accuracy of always answering it)")


if __name__ == "__main__":
    main()
