"""benchmarks/cuda_check.py on a machine without a GPU: it says so, writes nothing and exits 0; and the replacement
of the page's marked section that it does on a GPU."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "cuda_check.py"
PAGE = ROOT / "docs" / "measured" / "gpu.md"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cuda_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_says_so_and_writes_nothing(tmp_path) -> None:
    page = tmp_path / "gpu.md"
    page.write_text(PAGE.read_text())
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--write", str(page)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("no CUDA device: nothing checked, nothing written"), proc.stdout
    assert page.read_text() == PAGE.read_text()


def test_the_page_holds_one_marked_section() -> None:
    text = PAGE.read_text()
    cuda_check = load_script()
    assert text.count(cuda_check.BEGIN) == 1 and text.count(cuda_check.END) == 1
    assert "Not measured on a GPU yet" in text.split(cuda_check.BEGIN)[1]


def test_write_section_replaces_between_the_markers(tmp_path) -> None:
    cuda_check = load_script()
    page = tmp_path / "page.md"
    page.write_text(f"# Title\n\nbefore\n\n{cuda_check.BEGIN}\nold numbers\n{cuda_check.END}\n\nafter\n")
    cuda_check.write_section(page, "| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert page.read_text() == (
        f"# Title\n\nbefore\n\n{cuda_check.BEGIN}\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n{cuda_check.END}\n\nafter\n"
    )
    cuda_check.write_section(page, "new")  # again: the markers stay
    assert page.read_text() == f"# Title\n\nbefore\n\n{cuda_check.BEGIN}\n\nnew\n\n{cuda_check.END}\n\nafter\n"


@pytest.mark.parametrize(
    "text",
    [
        "no markers\n",
        "<!-- cuda_check:begin -->\nonly the first\n",
        "<!-- cuda_check:end -->\nx\n<!-- cuda_check:begin -->\n",
    ],
    ids=["none", "no end", "reversed"],
)
def test_write_section_refuses_a_page_without_its_markers(tmp_path, text) -> None:
    cuda_check = load_script()
    page = tmp_path / "page.md"
    page.write_text(text)
    with pytest.raises(ValueError, match="needs one of each, in that order"):
        cuda_check.write_section(page, "new")
    assert page.read_text() == text
