"""Loading a Hugging Face dataset for any data source: builder choice and one-line failures (local files, offline)."""

from __future__ import annotations

import json

import pytest
from checks import one_line

from attnkit import ConfigError, DataError
from attnkit.data.hf import HFDataset, builder_for, first_file, load_splits

BUILDERS = ((".jsonl", "json"), (".csv", "csv"))


@pytest.mark.parametrize(
    ("files", "first"),
    [("a.jsonl", "a.jsonl"), (["b.csv", "c.csv"], "b.csv"), ({"train": ["d.csv"], "test": "e.csv"}, "d.csv"), ([], "")],
)
def test_first_file_of_any_data_files_shape(files, first) -> None:
    assert first_file(files) == first


@pytest.mark.parametrize(
    ("files", "builder"),
    [("x/train.jsonl", "json"), ({"train": ["a.csv.gz"]}, "csv"), (["a.txt"], None), ([], None)],
)
def test_builder_follows_the_first_files_extension(files, builder) -> None:
    assert builder_for(files, BUILDERS) == builder


def test_load_splits_reads_local_files(tmp_path, offline) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"a": i}) + "\n" for i in range(3)))
    loaded = load_splits("json", data_files={"train": str(path)}, cache_dir=str(tmp_path / "cache"))
    assert list(loaded) == ["train"] and loaded["train"]["a"] == [0, 1, 2]
    with pytest.raises(DataError) as exc:
        load_splits("json", data_files={"train": str(path)}, train_split="fit", cache_dir=str(tmp_path))
    assert "no split 'fit'" in one_line(exc) and "data.train_split" in one_line(exc)


@pytest.mark.parametrize("kwargs", [{"data_dir": "/nonexistent/dir"}, {"data_files": "/nonexistent/train.jsonl"}])
def test_load_splits_failures_are_one_line(tmp_path, offline, kwargs) -> None:
    with pytest.raises(DataError) as exc:
        load_splits("json", cache_dir=str(tmp_path), **kwargs)
    message = one_line(exc)
    assert "nonexistent" in message and "data." in message


@pytest.mark.parametrize(
    ("options", "builder"),
    [
        ({"dataset": "wmt16", "data_files": "a.csv"}, "wmt16"),  # a named dataset wins
        ({"data_files": "a.jsonl"}, "json"),
        ({"data_files": ["pics/x.png"]}, "imagefolder"),  # the source's guess for an extension it knows
        ({"data_dir": "."}, "imagefolder"),  # a folder alone: the source's folder builder
        ({"data_files": "a.txt"}, "cannot tell the format of data.data_files="),
        ({}, "data source mine needs a dataset: set data.dataset=<name>"),
    ],
)
def test_hf_dataset_names_its_builder_or_says_what_to_set(options, builder) -> None:
    """The options text and image sources share: a dataset, a folder, or files by extension; else one line."""
    hub = HFDataset("mine", BUILDERS, **options)
    choose = {"dir_builder": "imagefolder", "guess": lambda first: "imagefolder" if first.endswith(".png") else None}
    if " " not in builder:
        assert hub.builder("data.dataset=<name>", **choose) == builder
        return
    with pytest.raises(DataError) as exc:
        hub.builder("data.dataset=<name>", **choose)
    assert builder in one_line(exc)


def test_hf_dataset_resolves_paths_and_refuses_bad_data_files(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    hub = HFDataset("mine", BUILDERS, data_dir="d", data_files={"train": "t.jsonl"}, cache_dir="c")
    assert (hub.data_dir, hub.data_files, hub.cache_dir) == (
        str(tmp_path / "d"),
        {"train": str(tmp_path / "t.jsonl")},
        str(tmp_path / "c"),
    )
    with pytest.raises(ConfigError, match="data.data_files=3 must be a path"):
        HFDataset("mine", BUILDERS, data_files=3)


def test_an_unreachable_hub_is_one_line_at_once(tmp_path, monkeypatch) -> None:
    """No network: the probe fails, offline mode is set for the process, and a dataset not in the cache is one line
    (not a minute of retries)."""
    from attnkit.data import hf

    tried = []

    def no_network(address, timeout):
        tried.append((address, timeout))
        raise OSError("Name or service not known")

    monkeypatch.setattr(hf.socket, "create_connection", no_network)
    for variable in hf.OFFLINE_VARIABLES:
        monkeypatch.setenv(variable, "0")  # restored after the test, whatever go_offline sets
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(DataError) as exc:
        load_splits("no_such_owner/no_such_dataset", cache_dir=str(tmp_path))
    assert tried == [(("huggingface.co", 443), 3.0)]
    assert datasets.config.HF_HUB_OFFLINE is True and huggingface_hub.constants.HF_HUB_OFFLINE is True
    message = one_line(exc)
    assert "is not in the local Hugging Face cache and the hub is not reachable" in message
    assert "data.data_dir" in message


@pytest.mark.parametrize(("builder", "hub"), [("json", False), ("imagefolder", False), ("cifar10", True)])
def test_only_hub_names_probe_the_hub(builder, hub) -> None:
    from attnkit.data.hf import is_hub_name

    assert is_hub_name(builder) is hub


def test_hf_endpoint_names_the_probed_host(monkeypatch) -> None:
    from attnkit.data.hf import hub_address

    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.local:8080")
    assert hub_address() == ("mirror.local", 8080)
