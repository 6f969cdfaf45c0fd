"""Importance criteria: a small interface and its registry (Torch-Pruning's ``Importance`` shape).

A criterion turns a model's current weights, its :class:`~edgeprune.graph.coupling.Coupling` and, when it measures
from data, batches of training examples into per-group *rows*: ``{group: (producers x units) array}``, each
producer's normalised score of each unit, the layout of
:func:`edgeprune.prune.importance.normalised_unit_norms`. The paper's methods A-D combine any criterion's rows
(:func:`edgeprune.prune.importance.unit_scores`). ``None`` rows mean the filter magnitudes themselves, which the
methods read from the weights (normalised by the baseline's per-layer means).

A new criterion is a class with ``name``, ``needs_data`` and ``rows(model, coupling, batches, seed, sample_seed)``,
and one line in :data:`IMPORTANCE`.
"""

from dataclasses import dataclass

import numpy as np

from edgeprune.core.errors import InvalidArgumentError

# the paper's methods (Table 1): cumulative options over any criterion's rows (edgeprune.prune.importance)
METHODS = ("A", "B", "C", "D")
METHOD_OPTIONS = {
    "A": {"keep_depth": False, "mac_efficiency": False, "balance": False},  # iterative pruning
    "B": {"keep_depth": True, "mac_efficiency": False, "balance": False},  # + keep every layer's depth
    "C": {"keep_depth": True, "mac_efficiency": True, "balance": False},  # + importance per MAC (or microsecond)
    "D": {"keep_depth": True, "mac_efficiency": True, "balance": True},  # + balanced residual groups
}


@dataclass(frozen=True)
class Magnitude:
    """Normalised filter L1 norms (the paper's ranking): read from the weights, no data."""

    name: str = "magnitude"
    needs_data: bool = False

    def rows(self, model, coupling, batches, seed: int, sample_seed: int = 0):
        return None


@dataclass(frozen=True)
class Taylor:
    """First-order Taylor estimate of the loss change when a channel is removed, measured on training batches
    (:mod:`edgeprune.prune.taylor`)."""

    name: str = "taylor"
    needs_data: bool = True

    def rows(self, model, coupling, batches, seed: int, sample_seed: int = 0):
        from edgeprune.prune.taylor import BATCHES, channel_taylor, taylor_rows

        producers = sorted({p for g in coupling.groups.values() for p in g.producers})
        return taylor_rows(coupling, channel_taylor(model, producers, batches.draw_many(seed, BATCHES)))


@dataclass(frozen=True)
class QR:
    """How linearly independent each unit's feature map is of the others, by pivoted QR (:mod:`edgeprune.prune.qr`)."""

    name: str = "qr"
    needs_data: bool = True

    def rows(self, model, coupling, batches, seed: int, sample_seed: int = 0):
        from edgeprune.prune.qr import BATCHES, qr_rows

        return qr_rows(model, coupling, batches.draw_many(seed, BATCHES), seed=sample_seed)


IMPORTANCE = {c.name: c for c in (Magnitude(), Taylor(), QR())}


def importance(name: str):
    """The registered criterion called ``name``."""
    try:
        return IMPORTANCE[name]
    except KeyError:
        raise InvalidArgumentError(f"importance must be one of {', '.join(IMPORTANCE)}, got {name!r}") from None


class PoolBatches:
    """Batches of random aligned training patches of a :class:`~edgeprune.data.pairs.PairSet` (the CLI's data):
    ``draw(rng)`` is one batch, ``draw_many(seed, n)`` ``n`` batches drawn reproducibly from ``seed``."""

    def __init__(self, pool, patch: int, batch_size: int):
        self.pool, self.patch, self.batch_size = pool, patch, batch_size

    def draw(self, rng: np.random.Generator):
        from edgeprune.data.pairs import random_crops

        return random_crops(self.pool, self.patch, self.batch_size, rng)

    def draw_many(self, seed: int, count: int) -> list:
        rng = np.random.default_rng(seed)
        return [self.draw(rng) for _ in range(count)]


class DatasetBatches:
    """Batches of a user's data (a ``tf.data.Dataset`` or any iterable of ``(input, target)`` batches): the first
    ``limit`` are read once, as arrays; ``draw(rng)`` picks one of them, ``draw_many(seed, n)`` ``n`` of them in an
    order drawn from ``seed`` (all of them, in that order, when ``n`` is at least their number)."""

    def __init__(self, data, limit: int = 16):
        self.data, self.limit, self._cache = data, limit, None

    def batches(self) -> list:
        if self._cache is None:
            cache = []
            for item in self.data:
                if not (isinstance(item, (tuple, list)) and len(item) >= 2):
                    raise InvalidArgumentError("importance data must yield (input, target) batches, got "
                                               f"{type(item).__name__}")
                cache.append((np.asarray(item[0], np.float32), np.asarray(item[1], np.float32)))
                if len(cache) >= self.limit:
                    break
            if not cache:
                raise InvalidArgumentError("importance data yielded no batch: give a dataset of (input, target) "
                                           "batches")
            self._cache = cache
        return self._cache

    def draw(self, rng: np.random.Generator):
        batches = self.batches()
        return batches[int(rng.integers(len(batches)))]

    def draw_many(self, seed: int, count: int) -> list:
        batches = self.batches()
        order = np.random.default_rng(seed).permutation(len(batches))
        return [batches[i] for i in order[:count]]


def batch_source(data, limit: int = 16):
    """``data`` as a batch source: a :class:`PoolBatches` or :class:`DatasetBatches` as it is, None as None, else
    :class:`DatasetBatches` of it."""
    if data is None or isinstance(data, (PoolBatches, DatasetBatches)):
        return data
    return DatasetBatches(data, limit)
