"""The manual: `mkdocs build --strict` passes (no broken link or anchor, no page left out of the navigation), and the
README stays the front door: at most 400 lines, every relative link pointing to a file that exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_mkdocs_build_is_strict_clean(tmp_path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "api" / "index.html").is_file()


def test_readme_is_short() -> None:
    lines = README.read_text().count("\n")
    assert lines <= 400, f"README.md has {lines} lines; move the detail into docs/"


def slug(heading: str) -> str:
    """The anchor MkDocs gives a heading (Python-Markdown's toc slugify, after dropping inline markup)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def test_readme_links_point_to_files() -> None:
    text = README.read_text()
    targets = [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert targets, "the README links to no docs page"
    missing = [t for t in targets if not (ROOT / t.split("#", 1)[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
    broken = [t for t in targets if "#" in t and t.split("#", 1)[1] not in anchors(ROOT / t.split("#", 1)[0])]
    assert not broken, f"README.md links to missing headings: {broken}"


def test_readme_keeps_the_two_quick_start_commands() -> None:
    lines = [line for line in README.read_text().splitlines() if line.startswith("python3 -m venv .venv && ")]
    assert any("-m attnkit " in line for line in lines) and any("pytest" in line for line in lines), lines
