"""Helpers shared by the tests (importable as `checks`: pyproject puts tests/ on pytest's pythonpath)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from attnkit import registry
from attnkit.nn.attention import repeat_kv
from attnkit.text import TextPairs


def compose(*overrides: str) -> dict:
    """The resolved run config for `python -m attnkit <overrides>`, as a plain dict."""
    from omegaconf import OmegaConf

    from attnkit import config

    registry.kinds()
    config.store_components()
    return OmegaConf.to_container(config.compose(list(overrides)), resolve=True)


def make_task(cfg: dict):
    """The task that a composed config names, built through the registry."""
    return registry.build_spec("task", cfg["task"])


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    """The error's message, checked to be a single non-empty line."""
    message = str(exc.value)
    assert message and "\n" not in message, message
    return message


def reference(q, k, v, allowed=None):
    """softmax(QKᵀ/√d)V with an explicit boolean mask (True = attend), in float64."""
    q, k, v = q.double(), repeat_kv(k, q.shape[1]).double(), repeat_kv(v, q.shape[1]).double()
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


@contextmanager
def restored_registry() -> Iterator[None]:
    """Register freely inside: every table is restored afterwards (new names and new kinds removed)."""
    registry._ensure_builtins()
    saved = {kind: dict(table) for kind, table in registry._registry.items()}
    replaced = dict(registry.replaced)
    try:
        yield
    finally:
        registry.replaced.clear()
        registry.replaced.update(replaced)
        for kind in list(registry._registry):
            if kind not in saved:
                del registry._registry[kind]
        for kind, table in saved.items():
            registry._registry[kind].clear()
            registry._registry[kind].update(table)


# -- text pairs shared by the text tests ------------------------------------------------------------------------

DE_EN = [
    ("Ein Hund läuft im Park.", "A dog runs in the park."),
    ("Zwei Kinder spielen Fußball.", "Two children play football."),
    ("Eine Frau liest ein Buch.", "A woman reads a book."),
    ("Ein Mann fährt Fahrrad.", "A man rides a bike."),
    ("Drei Hunde schlafen.", "Three dogs sleep."),
    ("Ein Kind isst einen Apfel.", "A child eats an apple."),
    ("Die Sonne scheint hell.", "The sun shines brightly."),
    ("Ein Vogel singt laut.", "A bird sings loudly."),
    ("Zwei Frauen gehen spazieren.", "Two women go for a walk."),
    ("Der Zug kommt spät.", "The train is late."),
]


def write_jsonl(path, rows) -> str:
    """JSON lines (None: an empty line) at `path`; the path as a string."""
    path.write_text("".join((json.dumps(r, ensure_ascii=False) if r is not None else "") + "\n" for r in rows))
    return str(path)


def hf_rows(pairs):
    """Rows in the Hugging Face translation layout."""
    return [{"id": i, "translation": {"de": de, "en": en}} for i, (de, en) in enumerate(pairs)]


def text_pairs(train) -> TextPairs:
    """`train` as the training split (and its first two pairs as val and test)."""
    return TextPairs(train=list(train), val=list(train[:2]), test=list(train[:2]), src="de", tgt="en")
