"""Proposers: how one iteration of the loop chooses what to prune next, and their registry.

A proposer is made once per :class:`~edgeprune.prune.pruner.Pruner` (``PROPOSERS[strategy](pruner)``) and answers
``propose(level, step, keep, kernels, seed)`` with a :class:`Choice`: the units to keep (a subset of ``keep``:
pruning is monotone), the coarse strategy's kernel masks, the importance threshold it stood for (or None) and what
the report records of the choice. ``level`` is the fraction of the baseline's cost (MAC, or predicted latency when
pruning for a device) to remove.

- ``threshold``: the paper's adaptive importance threshold. The lowest threshold on the unit scores (any registered
  importance criterion, combined by method A-D) at which pruning every unit below it reaches the level; with aligned
  widths whole tiles are removed instead (:func:`fill_to_level`).
- ``coarse``: the least damaging of N random feature-map / kernel masks at the level, scored on a training batch
  (:mod:`edgeprune.prune.coarse`).

A new proposer is a class with ``name``, ``needs_data`` and ``propose``, and one line in :data:`PROPOSERS`.
"""

from dataclasses import dataclass, field

import numpy as np

from edgeprune.core.errors import InvalidArgumentError
from edgeprune.graph.coupling import Coupling
from edgeprune.prune.criteria import importance
from edgeprune.prune.importance import METHOD_OPTIONS, depth_floor_units, keep_for_threshold, unit_scores
from edgeprune.prune.oracle import CostOracle
from edgeprune.prune.widths import blocks


@dataclass(frozen=True)
class Choice:
    keep: dict[str, list[int]]
    kernels: dict | None = None
    threshold: float | None = None
    extra: dict = field(default_factory=dict)  # what the iteration's record says of the choice


def propose_keep(coupling: Coupling, settings, threshold: float, current: dict[str, list[int]],
                 means: dict[str, float], unit_costs: dict[str, float] | None,
                 scores: dict[str, np.ndarray] | None = None) -> dict[str, list[int]]:
    """Units kept at ``threshold``: scoring at least the threshold, among those still kept (pruning is monotone)."""
    options = METHOD_OPTIONS[settings.method]
    scores = {n: s.copy() for n, s in (scores or unit_scores(coupling, settings.method, unit_costs, means)).items()}
    for name, score in scores.items():
        pruned = np.setdiff1d(np.arange(score.size), current[name])
        score[pruned] = -np.inf
    keep = keep_for_threshold(scores, threshold, options["keep_depth"], settings.depth_floor)
    return {name: sorted(set(units) & set(current[name])) or current[name] for name, units in keep.items()}


def unit_costs_for(settings, oracle: CostOracle, current: dict[str, list[int]],
                   mac_units: dict[str, float]) -> dict[str, float]:
    """What one unit of each group saves, for option C: predicted microseconds at the current widths when the loop
    prunes for a device (a latency profile), else first-order MAC."""
    if settings.profile is not None and METHOD_OPTIONS[settings.method]["mac_efficiency"]:
        return oracle.time_per_unit(current, settings.widths)
    return mac_units


def threshold_for_level(coupling: Coupling, settings, level: float, current: dict[str, list[int]],
                        means: dict[str, float], mac_units, oracle: CostOracle,
                        rows=None, step: float | None = None) -> tuple[float, dict, float]:
    """(threshold, kept units, ratio): the lowest threshold among the current scores whose plan has a predicted
    MAC (or, with a latency profile, latency) of at most ``1 - level`` of the baseline's (or, if none reaches it,
    the highest, which leaves only the floors). Binary search: the cost falls as the threshold rises. ``rows``: the
    per-producer unit values when not the filter magnitudes. With aligned widths the plan is filled block by block
    instead (:func:`fill_to_level`; ``step``: the level's current step)."""
    unit_costs = unit_costs_for(settings, oracle, current, mac_units)
    if settings.widths.aligns:
        return fill_to_level(coupling, settings, level, level if step is None else step, current, means, unit_costs,
                             oracle, rows)
    scores = unit_scores(coupling, settings.method, unit_costs, means, rows)
    candidates = np.unique(np.concatenate([s[np.isin(np.arange(s.size), current[n])] for n, s in scores.items()]))
    thresholds = [*candidates.tolist(), float("inf")]
    cache = {}

    def plan_at(i):
        if i not in cache:
            keep = propose_keep(coupling, settings, thresholds[i], current, means, None, scores)
            cache[i] = (keep, oracle.ratio(keep, settings.measure))
        return cache[i]

    lo, hi = 0, len(thresholds) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if plan_at(mid)[1] <= 1 - level + 1e-12:
            hi = mid
        else:
            lo = mid + 1
    keep, ratio = plan_at(lo)
    return thresholds[lo], keep, ratio


def fill_to_level(coupling: Coupling, settings, level: float, slack: float,
                  current: dict[str, list[int]], means: dict[str, float], unit_costs, oracle: CostOracle,
                  rows=None) -> tuple[float, dict, float]:
    """(score of the last block taken, kept units, ratio) for aligned widths: whole blocks
    (:func:`~edgeprune.prune.widths.blocks`) are removed lowest score first until the predicted cost is at most
    ``1 - level``, but a block whose removal would overshoot that by more than ``slack`` is passed over (with the
    rest of its group) while smaller blocks can still reach the level; only if they cannot are passed-over blocks
    taken, in order. A threshold alone cannot do this: a tile of a residual trunk (16 of 64 channels, a quarter of
    the network's MAC) can be the lowest-scoring block, and a threshold would cut it first at every level, however
    small, and roll it back every time."""
    scores = unit_scores(coupling, settings.method, unit_costs, means, rows)
    keep_depth = METHOD_OPTIONS[settings.method]["keep_depth"]
    queue = []
    for g, (name, score) in enumerate(scores.items()):
        floor = depth_floor_units(score.size, keep_depth, settings.depth_floor)
        for b, (value, units) in enumerate(blocks(score, current[name], settings.widths.allowed(coupling, name),
                                                  floor)):
            queue.append((value, g, b, name, units))
    queue.sort(key=lambda item: item[:3])
    goal = 1 - level + 1e-12
    keep = {n: list(u) for n, u in current.items()}
    ratio, last = oracle.ratio(keep, settings.measure), -np.inf
    for strict in (True, False):
        passed = set()
        for value, _, _, name, units in queue:
            if ratio <= goal:
                break
            if name in passed or not set(units) <= set(keep[name]):
                continue
            trial = {**keep, name: sorted(set(keep[name]) - set(units))}
            trial_ratio = oracle.ratio(trial, settings.measure)
            if strict and trial_ratio < goal - slack:
                passed.add(name)
                continue
            keep, ratio, last = trial, trial_ratio, value
    return float(last), keep, ratio


class ThresholdProposer:
    """The paper's adaptive threshold on the scores of the settings' importance criterion, measured on the
    pruner's current (accepted) weights at every iteration."""

    name = "threshold"

    def __init__(self, pruner):
        self.pruner = pruner
        self.criterion = importance(pruner.settings.importance)
        self.needs_data = self.criterion.needs_data

    def propose(self, level: float, step: float, keep: dict[str, list[int]], kernels, seed: int) -> Choice:
        p = self.pruner
        rows = self.criterion.rows(p.current, p.coupling, p.batches, seed=seed, sample_seed=p.settings.finetune.seed)
        threshold, new_keep, _ = threshold_for_level(p.coupling, p.settings, level, keep, p.means, p.mac_units,
                                                     p.oracle, rows, step=step)
        return Choice(new_keep, kernels, threshold)


class CoarseProposer:
    """The least damaging of the settings' ``candidates`` random feature-map / kernel masks at the level."""

    name = "coarse"
    needs_data = True

    def __init__(self, pruner):
        from edgeprune.prune.coarse import CoarseSearch

        s = pruner.settings
        self.pruner = pruner
        self.search = CoarseSearch(pruner.current, pruner.coupling, pruner.oracle, pruner.base_cost, pruner.batches,
                                   granularity=s.granularity, candidates=s.candidates, depth_floor=s.depth_floor,
                                   widths=s.widths)

    def propose(self, level: float, step: float, keep: dict[str, list[int]], kernels, seed: int) -> Choice:
        best, losses, chosen = self.search.propose(level, keep, kernels, seed=seed)
        return Choice(best.keep, best.kernels, None, {"candidate_losses": losses, "chosen": chosen})


PROPOSERS = {p.name: p for p in (ThresholdProposer, CoarseProposer)}


def proposer(name: str, pruner):
    """The registered proposer ``name``, made for ``pruner``."""
    try:
        return PROPOSERS[name](pruner)
    except KeyError:
        raise InvalidArgumentError(f"the prune loop runs the strategies {', '.join(PROPOSERS)}, not {name!r}") from None
