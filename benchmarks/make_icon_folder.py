"""Build an image folder of 32x32 colour images from the desktop icons installed here, for `data=image_folder`.

    python benchmarks/make_icon_folder.py --out outputs/icons
    python -m attnkit task=vit data=image_folder data.path=outputs/icons

No photo data set is available offline on this machine; the icon themes under /usr/share/icons (Adwaita: about 4,800
PNG files) are real, hand-drawn colour and symbolic images. The class of an icon is its context folder
(`<theme>/<size>/<context>/<name>.png`: actions, devices, emblems, legacy, mimetypes, places, status, ...).

The same icon is drawn at several sizes (and may appear in several themes): keeping every copy would put copies of test
images into training. So each icon name is kept once, from the rendering closest to `--size` pixels (the smallest one
at least that large, else the largest), and images that come out pixel-identical after resizing are kept once too.
Transparent pixels are composited on white; every image is resized to `--size` x `--size` RGB (Lanczos). Classes with
fewer than `--min-per-class` icons are left out. Writes `<out>/<class>/<n>.png` (a single tree: `data=image_folder`
carves its validation and test splits from it, stratified by class) and prints the classes and the majority-class
share, the accuracy of always answering the largest class.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

from PIL import Image

SIZE_DIR = re.compile(r"^(\d+)x(\d+)(@\d+)?$")


def find_icons(root: Path) -> dict[str, list[tuple[int, str, Path]]]:
    """icon name -> [(size in pixels, context, file)] over every theme under `root` (fixed-size folders only)."""
    found: dict[str, list[tuple[int, str, Path]]] = {}
    for path in sorted(root.glob("*/*/*/*.png")):
        size_dir, context = path.parent.parent.name, path.parent.name
        match = SIZE_DIR.match(size_dir)
        if not match or path.is_symlink():
            continue
        name = path.name.removesuffix(".png").removesuffix(".symbolic")
        found.setdefault(name, []).append((int(match.group(1)), context, path))
    return found


def pick(renderings: list[tuple[int, str, Path]], size: int) -> tuple[int, str, Path]:
    """The rendering to keep: the smallest one at least `size` pixels, else the largest."""
    large = sorted(r for r in renderings if r[0] >= size)
    return large[0] if large else max(renderings)


def render(path: Path, size: int) -> Image.Image:
    """The icon as `size` x `size` RGB, transparency composited on white."""
    with Image.open(path) as image:
        rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB")
    return rgb if rgb.size == (size, size) else rgb.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", default="/usr/share/icons", help="folder of icon themes")
    parser.add_argument("--out", required=True, help="the image folder to write (replaced if it exists)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--min-per-class", type=int, default=10)
    args = parser.parse_args()

    icons = find_icons(Path(args.src))
    if not icons:
        sys.exit(f"no <theme>/<size>/<context>/<name>.png icons under {args.src}")
    images: dict[str, list[Image.Image]] = {}
    seen: set[str] = set()
    duplicates = 0
    for name in sorted(icons):
        _, context, path = pick(icons[name], args.size)
        image = render(path, args.size)
        digest = hashlib.sha256(image.tobytes()).hexdigest()
        if digest in seen:
            duplicates += 1
            continue
        seen.add(digest)
        images.setdefault(context, []).append(image)
    kept = {c: imgs for c, imgs in sorted(images.items()) if len(imgs) >= args.min_per_class}
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    for context, imgs in kept.items():
        (out / context).mkdir(parents=True)
        for n, image in enumerate(imgs):
            image.save(out / context / f"{n}.png")
    counts = Counter({c: len(imgs) for c, imgs in kept.items()})
    total = sum(counts.values())
    left_out = sorted(set(images) - set(kept))
    print(f"{total:,} icons ({len(icons):,} names, {duplicates} pixel-identical left out), {len(kept)} classes: {out}")
    print("  " + ", ".join(f"{c} {n}" for c, n in sorted(counts.items())))
    if left_out:
        print(f"  classes under {args.min_per_class} icons left out: {', '.join(left_out)}")
    top, n = counts.most_common(1)[0]
    print(f"majority class: {top}, {n / total:.1%} of the icons (the accuracy of always answering it)")


if __name__ == "__main__":
    main()
