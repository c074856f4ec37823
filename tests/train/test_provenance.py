"""Provenance: what a run records of its code, plugins and data; what `mode=test` says when they changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import forked_cli
import torch

from attnkit.cli import reserve_dir
from attnkit.train import provenance

ROOT = Path(__file__).resolve().parents[2]


def test_record_holds_versions_code_plugins_and_data(tmp_path, monkeypatch) -> None:
    data = tmp_path / "corpus"
    data.mkdir()
    (data / "train.jsonl").write_text('{"source": "a", "target": "b"}\n')
    info = provenance.record(tmp_path, {"name": "text_files", "path": str(data)}, "abc")
    saved = json.loads((tmp_path / "provenance.json").read_text())
    assert saved == json.loads(json.dumps(info))
    assert torch.__version__.startswith(saved["versions"]["torch"]) and saved["versions"]["pytorch-lightning"]
    assert len(saved["code_sha256"]) == 64 and saved["command"].startswith("python")
    assert saved["git"] is None or len(saved["git"]["commit"]) == 40  # a checkout records its commit
    (entry,) = saved["data"]["files"]
    assert entry["path"].endswith("train.jsonl") and entry["bytes"] == 31 and len(entry["sha256"]) == 64
    assert saved["data"]["content_sha256"] == "abc"


def test_content_digest_tells_data_apart() -> None:
    class Splits:
        def __init__(self, train):
            self.train, self.val, self.test = train, [("v", "w")], [("t", "u")]

    a, b = provenance.content_digest(Splits([("a", "b")])), provenance.content_digest(Splits([("a", "c")]))
    assert a and b and a != b and a == provenance.content_digest(Splits([("a", "b")]))


def test_runs_started_in_the_same_second_get_their_own_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    folders = [reserve_dir(Path("outputs")) for _ in range(5)]
    assert len(set(folders)) == 5 and all(f.is_dir() for f in folders)


def test_test_mode_warns_when_a_plugin_changed(tmp_path) -> None:
    plugin = tmp_path / "my_attention.py"
    plugin.write_text((ROOT / "examples" / "my_attention.py").read_text())
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    common = [f"plugins=[{plugin}]", "trainer.enable_progress_bar=false"]
    tiny = ["attention=my_attention", "model.dim=16", "model.depth=1", "heads=2", "trainer.max_epochs=1"]
    train = forked_cli.run([*common, *tiny, "hydra.run.dir=run"], tmp_path, env)
    assert train.returncode == 0, train.stderr[-2000:]
    recorded = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert [p["file"] for p in recorded["plugins"]] == [str(plugin)]
    plugin.write_text(plugin.read_text() + "\n# edited after training\n")
    tested = forked_cli.run(
        [*common, "mode=test", "ckpt_path=run/checkpoints/last.ckpt", "hydra.run.dir=tested"], tmp_path, env
    )
    assert tested.returncode == 0, tested.stderr[-2000:]
    warnings = [line for line in tested.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: plugin {plugin} changed since the run; its scores may differ from the run's"]
