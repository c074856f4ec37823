"""Shared test set-up: no network, reproducible random numbers, one torch thread per process, and the suite spread
over the cores (tests/parallel.py)."""

import os

os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

pytest_plugins = ["parallel"]


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread per test process, and per command the tests start (OMP_NUM_THREADS, unless set): the tensors
    here are tiny, and the cores are shared with the other worker and with commands run side by side; threads that
    wait for a busy core slow small operations down several times over."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same random state."""
    torch.manual_seed(0)


@pytest.fixture
def offline(monkeypatch):
    """Offline even if `datasets` was imported before HF_*_OFFLINE were set (it reads them at import)."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
