"""init_from=<path>: what a file holds is read and mapped (unit tests), and from the command line a run starts from a
ViT checkpoint or a timm state dict with another attention, reporting what it copied; bad inputs are one line."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from forked_cli import run_many

from attnkit import ConfigError
from attnkit.nn import ViT
from attnkit.nn.seq2seq import EncoderDecoder
from attnkit.train import init_from

# the digits ViT, shrunk (patches without overlap, so that a timm ViT has the same shape)
TINY_VIT = (
    "task=vit",
    "model.dim=16",
    "model.depth=1",
    "heads=2",
    "model.patch_size=4",
    "model.patch_stride=4",
    "ffn.mlp_ratio=2",
    "task.attention_maps=0",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "trainer.enable_progress_bar=false",
)
DIGITS_VIT = {"image_size": 8, "in_channels": 1, "num_classes": 10, "patch_size": 4, "dim": 16, "depth": 1, "heads": 2}


def timm_digits_vit():
    vision_transformer = pytest.importorskip("timm.models.vision_transformer")
    return vision_transformer.VisionTransformer(
        img_size=8, patch_size=4, in_chans=1, num_classes=10, embed_dim=16, depth=1, num_heads=2, mlp_ratio=2.0
    )


def env(cwd: Path) -> dict[str, str]:
    out = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "ATTNKIT_CACHE": str(cwd / "cache")}
    out.pop("HYDRA_FULL_ERROR", None)
    return out


def apply(tmp_path: Path, net: torch.nn.Module, value: object, task: str = "vit", **cfg: object) -> dict | None:
    """What a run of `task` with `init_from=value` (and `cfg`) does before training: read the file, copy into `net`."""
    start = init_from.read({"init_from": value, **cfg}, task=task, run_dir=tmp_path / "run")
    return init_from.apply(start, net, task=task, run_dir=tmp_path / "run")


# -- reading and loading, without the command line ----------------------------------------------------------------


def test_timm_state_dicts_in_every_container(tmp_path) -> None:
    safetensors = pytest.importorskip("safetensors.torch")
    timm_model = timm_digits_vit()
    state = timm_model.state_dict()
    safetensors.save_file(state, tmp_path / "w.safetensors")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        weights = init_from.read_weights(tmp_path / name, "vit")
        assert weights.kind == "timm VisionTransformer state dict", name
        assert torch.equal(weights.tensors["blocks.0.attn.k_proj.weight"], state["blocks.0.attn.qkv.weight"][16:32])
    net = ViT(**DIGITS_VIT, attention="linear", ffn={"name": "mlp", "mlp_ratio": 2.0})
    summary = apply(tmp_path, net, tmp_path / "w.safetensors")
    assert summary["copied"] == len(net.state_dict()) and summary["reinitialised"] == summary["dropped"] == 0
    saved = json.loads((tmp_path / "run" / init_from.REPORT_FILE).read_text())
    assert saved["reinitialised"] == [] and "pos_enc.weight" in saved["copied"] and saved["notes"]


def test_safetensors_without_the_package_names_the_extra(tmp_path, monkeypatch) -> None:
    (tmp_path / "w.safetensors").write_bytes(b"\0" * 16)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(ConfigError, match=r"pip install 'attnkit\[timm\]'"):
        init_from.read_weights(tmp_path / "w.safetensors", "vit")


@pytest.mark.parametrize(
    ("content", "answer"),
    [
        (None, "no such file"),
        (b"not a checkpoint", "cannot be read as a checkpoint or a state dict"),
        ([1, 2, 3], "holds no tensors"),
        ({"w": torch.ones(2)}, "none of its 1 tensors (w, ...) fits the model of task=vit"),
    ],
    ids=["missing", "garbage", "no-tensors", "nothing-fits"],
)
def test_bad_files_are_one_line_with_the_fix(tmp_path, content, answer) -> None:
    path = tmp_path / "weights.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(ConfigError) as info:
        apply(tmp_path, ViT(**DIGITS_VIT), path)
    assert answer in str(info.value) and "\n" not in str(info.value)
    assert "give a .ckpt of a task=vit run" in str(info.value) or "give weights of this kind" in str(info.value)
    assert not (tmp_path / "run").exists()


def test_a_vit_state_dict_fits_no_encoder_decoder(tmp_path) -> None:
    torch.save(ViT(**DIGITS_VIT).state_dict(), tmp_path / "vit.pt")
    net = EncoderDecoder(12, 12, dim=16, depth=1, heads=2)
    with pytest.raises(ConfigError, match="fits the model of task=translation"):
        apply(tmp_path, net, str(tmp_path / "vit.pt"), task="translation")


def test_resume_conflicts_unless_it_is_the_runs_own_start(tmp_path) -> None:
    torch.save(ViT(**DIGITS_VIT).state_dict(), tmp_path / "w.pt")
    with pytest.raises(ConfigError, match="init_from and resume conflict"):
        apply(tmp_path, ViT(**DIGITS_VIT), tmp_path / "w.pt", resume="last.ckpt")
    first = apply(tmp_path, ViT(**DIGITS_VIT), tmp_path / "w.pt")  # the run's start wrote init_from.json
    net = ViT(**DIGITS_VIT)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert apply(tmp_path, net, tmp_path / "w.pt", resume="last.ckpt") == first  # resumed: the checkpoint's weights
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


# -- from the command line ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny ViT run (its last.ckpt) and the working directory of the runs that start from it."""
    cwd = tmp_path_factory.mktemp("init_from")
    done = run_many({"base": ([*TINY_VIT, f"hydra.run.dir={cwd / 'base'}"], cwd, env(cwd))})["base"]
    assert done.returncode == 0, done.stderr[-2000:]
    return cwd


def test_runs_start_from_a_checkpoint_or_timm_weights_and_bad_inputs_are_refused(trained) -> None:
    cwd = trained
    torch.save(timm_digits_vit().state_dict(), cwd / "timm_vit.pth")
    torch.save({"w": torch.ones(2)}, cwd / "foreign.pth")
    shutil.copytree(cwd / "base", cwd / "resumable")
    ckpt = "base/checkpoints/last.ckpt"
    tiny = [a for a in TINY_VIT if a != "model.depth=1"]
    commands = {
        "ckpt": [*tiny, "model.depth=2", f"init_from={ckpt}", "attention=linear", f"hydra.run.dir={cwd / 'ckpt'}"],
        "timm": [*tiny, "model.depth=1", "init_from=timm_vit.pth", "attention=linear", f"hydra.run.dir={cwd / 'timm'}"],
        "missing": [*TINY_VIT, "init_from=missing.pth"],
        "nothing fits": [*TINY_VIT, "init_from=foreign.pth"],
        "other task": [
            "task=translation",
            "data.train_size=64",
            "data.val_size=8",
            "data.test_size=8",
            f"init_from={ckpt}",
        ],
        "resume": ["resume=resumable", "init_from=timm_vit.pth", "trainer.max_epochs=2"],  # extends the finished run
    }
    done = run_many({name: (args, cwd, env(cwd)) for name, args in commands.items()})
    for name, file in (("ckpt", "last.ckpt"), ("timm", "timm_vit.pth")):
        proc = done[name]
        assert proc.returncode == 0, f"{name}: {proc.stdout[-1500:]}\n{proc.stderr[-2000:]}"
        assert proc.stdout.count(f"init_from {file} (") == 1, proc.stdout  # the table, printed once
        report = json.loads((cwd / name / init_from.REPORT_FILE).read_text())
        metrics = json.loads((cwd / name / "metrics.json").read_text())
        assert metrics["init_from"]["copied"] == len(report["copied"]) and report["dropped"] == []
        assert "blocks.0.attn.q_proj.weight" in report["copied"] and "head.weight" in report["copied"]
    ckpt_report = json.loads((cwd / "ckpt" / init_from.REPORT_FILE).read_text())
    assert ckpt_report["kind"] == "attnkit checkpoint of task=vit, model vit"
    assert ckpt_report["reinitialised"] and all(n.startswith("blocks.1.") for n in ckpt_report["reinitialised"])
    assert "copied            2  blocks.0.attn.q_proj.{weight,bias}" in done["ckpt"].stdout
    assert "re-initialised    2  blocks.1.attn.q_proj.{weight,bias}" in done["ckpt"].stdout
    timm_report = json.loads((cwd / "timm" / init_from.REPORT_FILE).read_text())
    assert timm_report["kind"] == "timm VisionTransformer state dict" and timm_report["reinitialised"] == []
    answers = {
        "missing": "init_from='missing.pth': no such file",
        "nothing fits": "none of its 1 tensors (w, ...) fits the model of task=vit",
        "other task": "is a checkpoint of task=vit, not task=translation",
        "resume": "init_from and resume conflict",
    }
    for name, answer in answers.items():
        proc = done[name]
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (name, proc.stderr[-2000:])
        assert answer in lines[0], (name, lines[0])
    assert not (cwd / "outputs").exists()  # the refused runs left no run directory
    assert not (cwd / "resumable" / init_from.REPORT_FILE).exists()
