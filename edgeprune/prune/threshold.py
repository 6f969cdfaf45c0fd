"""The paper's adaptive threshold: from a level (a fraction of the baseline's cost to remove) to the units every
group keeps, on the scores of any importance criterion combined by method A-D; with aligned widths, whole tiles at a
time (:func:`fill_to_level`). Used by :class:`~edgeprune.prune.proposers.ThresholdProposer` and the one-shot QR
strategy's plan (:mod:`edgeprune.prune.reconstruct`)."""

import numpy as np

from edgeprune.graph.coupling import Coupling
from edgeprune.prune.criteria import METHOD_OPTIONS
from edgeprune.prune.importance import depth_floor_units, keep_for_threshold, unit_scores
from edgeprune.prune.oracle import CostOracle
from edgeprune.prune.widths import blocks


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
