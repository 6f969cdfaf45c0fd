"""The pruning plan: which units each channel group keeps, as versioned JSON that can be saved and replayed.

A plan names the model structure it was made for by a fingerprint of its channel groups (names, sizes, member
layers), so replaying it on another architecture, or on an already-slimmed model, fails with a clear message.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeprune.core.atomic import settle, write_json_atomic
from edgeprune.graph.coupling import Coupling
from edgeprune.core.errors import FileFormatError, PlanError
from edgeprune.core.files import read_json

PLAN_FORMAT = "edgeprune.plan"
PLAN_VERSION = 1


def fingerprint(coupling: Coupling) -> str:
    """A short hash of the model's prunable structure."""
    structure = [[g.name, g.size, list(g.producers), list(g.consumers)] for g in coupling.groups.values()]
    return hashlib.sha256(json.dumps(structure).encode()).hexdigest()[:16]


@dataclass
class PruningPlan:
    model: str
    fingerprint: str
    sizes: dict[str, int]
    keep: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def keep_all(cls, coupling: Coupling, model_name: str) -> "PruningPlan":
        sizes = {name: g.size for name, g in coupling.groups.items()}
        return cls(model_name, fingerprint(coupling), sizes, {n: list(range(s)) for n, s in sizes.items()})

    def kept_units(self, name: str) -> list[int]:
        return self.keep.get(name, list(range(self.sizes[name])))

    def pruned_fraction(self) -> dict[str, float]:
        return {n: 1 - len(self.kept_units(n)) / s for n, s in self.sizes.items()}

    def validate(self, coupling: Coupling) -> None:
        """Raises PlanError unless this plan fits ``coupling``'s model and its indices are valid."""
        actual = fingerprint(coupling)
        if actual != self.fingerprint:
            raise PlanError(
                f"this plan was made for model '{self.model}' (structure {self.fingerprint}), but the given model "
                f"has structure {actual}: use the model the plan was made for (an unpruned copy of it)"
            )
        for name, units in self.keep.items():
            if name not in coupling.groups:
                raise PlanError(f"plan names group '{name}', which the model does not have")
            size = coupling.groups[name].size
            if not units:
                raise PlanError(f"group '{name}' keeps no channels: keep at least 1 (removing a layer is not allowed)")
            if any(isinstance(u, bool) or not isinstance(u, (int, np.integer)) for u in units):
                raise PlanError(f"group '{name}' has a non-integer index: indices are integers in [0, {size})")
            bad = [u for u in units if not 0 <= u < size]
            if bad:
                raise PlanError(f"group '{name}' has out-of-range indices {bad[:5]}: valid indices are 0..{size - 1}")
            if len(set(units)) != len(units):
                dup = sorted({u for u in units if units.count(u) > 1})
                raise PlanError(f"group '{name}' lists indices {dup[:5]} more than once")

    def to_dict(self) -> dict:
        return {
            "format": PLAN_FORMAT,
            "version": PLAN_VERSION,
            "model": self.model,
            "fingerprint": self.fingerprint,
            "groups": {n: {"size": s, "keep": sorted(int(u) for u in self.kept_units(n))}
                       for n, s in self.sizes.items()},
        }

    def save(self, path: str | os.PathLike) -> Path:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def from_dict(cls, data) -> "PruningPlan":
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
            raise PlanError(f"not an edgeprune plan: expected \"format\": \"{PLAN_FORMAT}\"")
        if data.get("version") != PLAN_VERSION:
            raise PlanError(f"plan version {data.get('version')!r} is not supported (this edgeprune reads "
                            f"version {PLAN_VERSION})")
        try:
            groups = data["groups"]
            sizes = {str(n): int(g["size"]) for n, g in groups.items()}
            keep = {str(n): list(g["keep"]) for n, g in groups.items()}
            return cls(str(data["model"]), str(data["fingerprint"]), sizes, keep)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PlanError(f"malformed plan: {exc!r} is missing or invalid") from exc

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PruningPlan":
        """The plan in ``path``; a missing, unreadable, corrupt or foreign file is a one-line PlanError. A set of
        outputs that a kill left half moved into the plan's folder is completed first."""
        settle(Path(path).parent)
        try:
            data = read_json(path, "plan file")
        except FileFormatError as exc:
            raise PlanError(str(exc)) from None
        try:
            return cls.from_dict(data)
        except PlanError as exc:
            raise PlanError(f"plan file '{path}': {exc}") from None
