"""Every row of the table of mistakes in docs/mistakes.md, run as a user would: `python -m attnkit <arguments>` (each
in its own process, forked from one that has imported the CLI: tests/forked_cli.py) must exit 2 with one `error: ...`
line holding the row's answer, no traceback, no run directory and no earlier file changed.

The files the rows name (broken.py, garbage.ckpt, vit.ckpt, one_class/, ...) are made here, in every row's own
working directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from forked_cli import run_many

ROOT = Path(__file__).resolve().parents[1]
MISTAKES = ROOT / "docs" / "mistakes.md"


def table() -> list[tuple[str, list[str], list[str]]]:
    """(row number, arguments, answer fragments) of the table between the mistakes markers."""
    text = MISTAKES.read_text()
    block = text.split("<!-- mistakes:start -->", 1)[1].split("<!-- mistakes:end -->", 1)[0]
    rows = []
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].isdigit():
            continue
        arguments = re.findall(r"`([^`]*)`", cells[2])[0].split()
        answers = re.findall(r"`([^`]*)`", cells[3])
        rows.append((cells[0], arguments, answers))
    return rows


ROWS = table()


# attention plugins that break the contract: their constructors, or what attend returns (rows name their lines)
KERNELS = """import attnkit
from attnkit.nn.attention.base import Attention, repeat_kv


class Softmax(Attention):
    def attend(self, q, k, v, *, key_padding_mask=None, causal=False, bias=None):
        k, v = repeat_kv(k, q.shape[1]), repeat_kv(v, q.shape[1])
        return (q @ k.transpose(-2, -1)).softmax(-1) @ v


@attnkit.register("attention", "needs_window")
class NeedsWindow(Softmax):
    def __init__(self, window, dim=64):
        super().__init__()


@attnkit.register("attention", "passes_kwargs")
class PassesKwargs(Softmax):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)


@attnkit.register("attention", "raises")
class Raises(Softmax):
    def __init__(self, head_dim=8):
        super().__init__()
        self.table = {}[head_dim]


@attnkit.register("attention", "transposed")
class Transposed(Softmax):
    def attend(self, q, k, v, **kwargs):
        return super().attend(q, k, v, **kwargs).transpose(1, 2)


@attnkit.register("attention", "one_query")
class OneQuery(Softmax):
    def attend(self, q, k, v, **kwargs):
        return super().attend(q, k, v, **kwargs).mean(2, keepdim=True)


@attnkit.register("attention", "nan_kernel")
class NaNKernel(Softmax):
    def attend(self, q, k, v, **kwargs):
        return super().attend(q, k, v, **kwargs) * float("nan")


@attnkit.register("attention", "sees_the_future")
class SeesTheFuture(Softmax):
    pass
"""


# token-mixer plugins: one without a bidirectional form, one that sees the future
MIXERS = """import attnkit
from torch import nn
from attnkit.nn.mixers import Mixer


@attnkit.register("mixer", "one_way")
class OneWay(Mixer):
    supports_bidirectional = False

    def __init__(self, dim, causal=True):
        super().__init__(dim, causal=causal)
        self.out_proj = nn.Linear(dim, dim)

    def mix(self, x, keep, state):
        return self.out_proj(x.cumsum(1)), {}


@attnkit.register("mixer", "peeks")
class Peeks(OneWay):
    def mix(self, x, keep, state):
        return self.out_proj(x.sum(1, keepdim=True).expand_as(x)), {}
"""


class Payload:
    def __reduce__(self):
        return (exec, ("open('pwned', 'w').write('ran')",))


def tiny_vit_checkpoint(path: Path) -> None:
    """A checkpoint as a `task=vit` run writes it (its weights random): for the rows that get past loading."""
    from attnkit import registry

    spec = {"name": "vit", "dim": 16, "depth": 1, "heads": 2, "patch_size": 4}
    context = {"image_size": [8, 8], "in_channels": 1, "num_classes": 10}
    model = registry.build_spec("model", spec, **context)
    info = {**context, "class_names": [str(i) for i in range(10)], "mean": [0.3], "std": [0.4]}
    torch.save(
        {
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "hyper_parameters": {"task": registry.defaults("task", "vit"), "model": spec, "context": context},
            "attnkit": {"task": "vit", "data": {"name": "digits"}, "data_info": info},
        },
        path,
    )


def tiny_lm_checkpoint(path: Path) -> None:
    """A checkpoint as a `task=lm` run on the default MQAR data writes it, with a learned position table of the
    default context's 32 positions (its weights random)."""
    from attnkit import registry

    spec = {"name": "decoder", "dim": 16, "depth": 1, "heads": 2, "max_len": 32, "pos_enc": "learned"}
    context = {"vocab_size": 32}
    model = registry.build_spec("model", spec, **context)
    torch.save(
        {
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "hyper_parameters": {"task": registry.defaults("task", "lm"), "model": spec, "context": context},
            "attnkit": {"task": "lm", "data": {"name": "mqar"}, "unit": "token"},
        },
        path,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    from PIL import Image

    folder = tmp_path_factory.mktemp("files")
    (folder / "broken.py").write_text("raise RuntimeError('broken on purpose')\n")
    (folder / "exits.py").write_text("import sys\n\nsys.exit(3)\n")
    (folder / "kernels.py").write_text(KERNELS)
    (folder / "mixers.py").write_text(MIXERS)
    (folder / "notes.txt").write_text("not a plugin, not an image\n")
    (folder / "garbage.ckpt").write_text("not a checkpoint\n")
    torch.save(
        {"state_dict": {}, "hyper_parameters": {}, "attnkit": {"task": "vit"}, "x": Payload()}, folder / "evil.ckpt"
    )
    torch.save({"state_dict": {"w": torch.ones(2)}}, folder / "foreign.ckpt")
    tiny_vit_checkpoint(folder / "vit.ckpt")
    tiny_lm_checkpoint(folder / "lm_learned.ckpt")
    (folder / "prompt.txt").write_text(" ".join(str(i) for i in range(1, 11)) + "\n")  # ten MQAR token ids
    (folder / "empty").mkdir()
    for i in range(4):
        (folder / "one_class" / "cat").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(folder / "one_class" / "cat" / f"{i}.png")
    for i in range(3):
        (folder / "three_images" / f"class{i}").mkdir(parents=True)
        Image.new("RGB", (8, 8), (0, i * 40, 0)).save(folder / "three_images" / f"class{i}" / "0.png")
    (folder / "one_label").mkdir()
    rows = [json.dumps({"text": f"text number {i}", "label": "same"}) for i in range(40)]
    (folder / "one_label" / "train.jsonl").write_text("\n".join(rows) + "\n")
    (folder / "pairs.jsonl").write_text(
        "".join(json.dumps({"source": f"s{i}", "target": f"t{i}"}) + "\n" for i in range(40))
    )
    (folder / "array.json").write_text('[{"source": "a", "target": "b"}]\n')
    for name in ("run", "finished"):  # a run's folder, and one that trained its one epoch
        (folder / name / "checkpoints").mkdir(parents=True)
        (folder / name / ".hydra").mkdir()
        (folder / name / ".hydra" / "overrides.yaml").write_text("- trainer.max_epochs=1\n")
        (folder / name / "config.yaml").write_text("trainer:\n  max_epochs: 1\n")
        (folder / name / "metrics.json").write_text('{"test/acc": 0.5}\n')
        payload = torch.load(folder / "vit.ckpt", weights_only=True)
        done = {"epoch_progress": {"current": {"processed": 1}}}
        torch.save({**payload, "epoch": 0, "global_step": 4, "loops": {"fit_loop": done}}, folder / name / "last.ckpt")
        (folder / name / "last.ckpt").rename(folder / name / "checkpoints" / "last.ckpt")
    segmentation_folders(folder)
    (folder / "empty.txt").write_text("")
    (folder / "latin1.txt").write_bytes(("café au lait\n" * 50).encode("latin-1"))
    (folder / "short.txt").write_text("a short text\n" * 20)
    (folder / "ascii.txt").write_text("plain ascii text\n" * 50)
    (folder / "accents.txt").write_text("naïve café, ¿qué?\n" * 5)
    return folder


def segmentation_folders(folder: Path) -> None:
    """Image and label-map folders (`images/` + `masks/`) that break one rule each: a mask of another size
    (seg_size), a label that is no class (seg_label, with data.classes=[a,b,c]), an image without its mask
    (seg_nomask), a colour in no class of the palette (seg_colour, palette black and red)."""
    import numpy as np
    from PIL import Image

    def pair(root: Path, name: str, mask_size: tuple[int, int] = (16, 12), top: int = 2, colour=None) -> None:
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 12), (90, 40, 10)).save(root / "images" / f"{name}.png")
        width, height = mask_size
        if colour is None:
            labels = np.zeros((height, width), np.uint8)
            labels[:, width // 2 :], labels[: height // 2] = 1, top
            Image.fromarray(labels, "L").save(root / "masks" / f"{name}.png")
        else:
            rgb = np.zeros((height, width, 3), np.uint8)
            rgb[:, width // 2 :] = colour
            Image.fromarray(rgb, "RGB").save(root / "masks" / f"{name}.png")

    for name in ("seg_size", "seg_label", "seg_nomask", "seg_colour"):
        for i in range(3):
            pair(folder / name, str(i), colour=(255, 0, 0) if name == "seg_colour" else None)
    pair(folder / "seg_size", "odd", mask_size=(16, 10))
    pair(folder / "seg_label", "odd", top=7)
    Image.new("RGB", (16, 12)).save(folder / "seg_nomask" / "images" / "lonely.png")
    pair(folder / "seg_colour", "odd", colour=(0, 255, 0))


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(folder.rglob("*"))
    }


def row_env(cwd: Path) -> dict[str, str]:
    cache = cwd.with_name(cwd.name + "-cache")  # outside the working directory, whose files must stay as they were
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "ATTNKIT_CACHE": str(cache)}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


@pytest.fixture(scope="module")
def answers(files, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess[str], Path, dict]]:
    """Every row run in its own process and its own copy of the files, two at a time."""
    base = tmp_path_factory.mktemp("rows")
    work: dict[str, tuple[Path, dict]] = {}
    for number, _, _ in ROWS:
        cwd = base / f"row{number}"
        shutil.copytree(files, cwd)
        work[number] = (cwd, snapshot(cwd))
    done = run_many({number: (args, work[number][0], row_env(work[number][0])) for number, args, _ in ROWS})
    return {number: (done[number], *work[number]) for number, _, _ in ROWS}


def test_the_table_has_every_area() -> None:
    text = MISTAKES.read_text()
    assert len(ROWS) >= 40
    for area in ("config", "sweep", "plugin", "hardware", "trainer", "data", "checkpoint", "resume"):
        assert f"| {area} |" in text, area


@pytest.mark.parametrize(("number", "args", "fragments"), ROWS, ids=[f"row{n}" for n, _, _ in ROWS])
def test_mistake(answers, number, args, fragments) -> None:
    proc, cwd, before = answers[number]
    err = proc.stderr.strip()
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout[-1500:]}\n{err[-1500:]}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in proc.stdout + proc.stderr
    assert snapshot(cwd) == before, "a file was added or changed (a run directory left behind?)"
