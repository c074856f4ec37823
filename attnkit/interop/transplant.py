"""`transplant`: copy into a model every tensor of a state dict whose name and shape fit, and say what it copied, left
as initialised and dropped: the core of `init_from` when the attention or positions change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn


@dataclass
class TransplantReport:
    """What `transplant` did: `copied` (target names filled from the source), `reinitialised` (target names not
    filled: they keep the target's initialisation), `dropped` (source names not used), `mismatched` (name ->
    (source shape, target shape) for names in both whose shapes differ; they are in `reinitialised` and `dropped`
    too) and `notes` (how foreign names were mapped)."""

    copied: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    mismatched: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for JSON)."""
        return {
            "copied": list(self.copied),
            "reinitialised": list(self.reinitialised),
            "dropped": list(self.dropped),
            "mismatched": {k: {"source": list(s), "target": list(t)} for k, (s, t) in self.mismatched.items()},
            "notes": list(self.notes),
        }

    def table(self, title: str = "transplant") -> str:
        """A readable summary: one line per group of tensors (layers as ranges: `blocks.0-11`) and what became of it."""
        n_target = len(self.copied) + len(self.reinitialised)
        n_source = len(self.copied) + len(self.dropped)
        lines = [
            f"{title}: {len(self.copied)} of the model's {n_target} tensors copied, {len(self.reinitialised)} "
            f"re-initialised; {len(self.dropped)} of the source's {n_source} tensors dropped"
        ]
        width = 14
        for status, names in (
            ("copied", self.copied),
            ("re-initialised", [n for n in self.reinitialised if n not in self.mismatched]),
            ("dropped", [n for n in self.dropped if n not in self.mismatched]),
        ):
            for shown, count in _groups(names):
                lines.append(f"  {status:<{width}} {count:>4}  {shown}")
        by_shape: dict[tuple[str, str], list[str]] = {}
        for name, (src, tgt) in self.mismatched.items():
            by_shape.setdefault((_shape(src), _shape(tgt)), []).append(name)
        for (src, tgt), names in by_shape.items():
            for shown, count in _groups(names):
                lines.append(f"  {'shape differs':<{width}} {count:>4}  {shown}: source {src}, model {tgt}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _groups(names: list[str]) -> list[tuple[str, int]]:
    """(`blocks.0-11.attn.q_proj.{weight,bias}`, tensor count) per module pattern, in order of first appearance."""
    groups: dict[str, tuple[list[str], list[tuple[int, ...]]]] = {}
    for name in names:
        parts = name.split(".")
        numbers = tuple(int(p) for p in parts if p.isdigit())
        prefix = ".".join("*" if p.isdigit() else p for p in parts[:-1])
        leaves, indices = groups.setdefault(prefix, ([], []))
        if parts[-1] not in leaves:
            leaves.append(parts[-1])
        indices.append(numbers)
    out = []
    for prefix, (leaves, indices) in groups.items():
        shown = prefix
        for position in range(len(indices[0])):
            shown = shown.replace("*", _ranges({i[position] for i in indices if len(i) > position}), 1)
        leaf = leaves[0] if len(leaves) == 1 else "{" + ",".join(leaves) + "}"
        out.append((f"{shown}.{leaf}" if shown else leaf, len(indices)))
    return out


def _ranges(values: set[int]) -> str:
    """{0, 1, 2, 5} -> '0-2,5'."""
    runs: list[list[int]] = []
    for v in sorted(values):
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


@torch.no_grad()
def transplant(source: Mapping[str, Any], target: nn.Module) -> TransplantReport:
    """Copy into `target` (in place) every tensor of `source` whose name and shape match one of its state dict.

    The rest of `target` keeps its initialisation (`reinitialised`); source tensors without a place are `dropped`.
    A tensor the target shares under two names (tied embeddings) counts as copied when either name was filled.
    Values are converted to the target's dtype and device. Non-tensor entries of `source` are ignored.
    """
    report = TransplantReport()
    own = target.state_dict(keep_vars=True)
    filled: set[int] = set()
    for name, dest in own.items():
        value = source.get(name)
        if not isinstance(value, Tensor):
            continue
        if tuple(value.shape) != tuple(dest.shape):
            report.mismatched[name] = (tuple(value.shape), tuple(dest.shape))
            continue
        dest.data.copy_(value.detach())
        filled.add(id(dest))
    for name, dest in own.items():
        (report.copied if id(dest) in filled else report.reinitialised).append(name)
    report.dropped = [
        name
        for name, value in source.items()
        if isinstance(value, Tensor) and (name not in own or name in report.mismatched)
    ]
    return report
