"""Channel importance: a group's units -> scores (higher = more important).

``l1_scores`` sums, over the group's producer layers, each unit's filter L1 norm divided by the mean L1 norm of
that layer's filters, so layers of different scale contribute comparably (Torch-Pruning's group importance with
per-layer normalisation; the paper's "filter magnitude normalised so layers are comparable").
"""

import numpy as np

from edgeprune.graph.coupling import ChannelGroup, Coupling
from edgeprune.graph.model_graph import TensorRef
from edgeprune.graph.layer_table import filter_weight
from edgeprune.prune.criteria import METHOD_OPTIONS, METHODS  # noqa: F401  (the methods' registry)


def filter_norms(layer, ord: int = 1) -> np.ndarray:
    """Norm of each output channel's filter of a mixing layer (the weight and axis the layer table names)."""
    kernel, axis_out = filter_weight(layer)
    k = np.moveaxis(kernel, axis_out, 0).reshape(kernel.shape[axis_out], -1)
    return np.linalg.norm(k, ord=ord, axis=1) if ord != 1 else np.abs(k).sum(axis=1)


def l1_scores(coupling: Coupling, group: ChannelGroup, ord: int = 1) -> np.ndarray:
    scores = np.zeros(group.size)
    for name in group.producers:
        node = coupling.graph.node(name)
        ref = TensorRef(node.id, 0)
        norms = filter_norms(node.layer, ord)
        norms = norms / (norms.mean() + 1e-12)
        scores += norms[group.index_maps[ref]].sum(axis=1)
    return scores




def layer_means(coupling: Coupling, ord: int = 1) -> dict[str, float]:
    """Mean filter norm of every producer layer of every group (the per-layer normalisation)."""
    return {name: float(filter_norms(coupling.graph.node(name).layer, ord).mean())
            for group in coupling.groups.values() for name in group.producers}


def normalised_unit_norms(coupling: Coupling, group: ChannelGroup, ord: int = 1,
                          means: dict[str, float] | None = None) -> np.ndarray:
    """(producers x units): each producer's filter norms of the group's units, divided by that layer's mean, or by
    ``means[layer]`` when given (the iterative loop passes the baseline's, so scores do not drift upwards as pruned
    filters go to zero)."""
    rows = []
    for name in group.producers:
        node = coupling.graph.node(name)
        norms = filter_norms(node.layer, ord)
        norms = norms / ((means[name] if means else norms.mean()) + 1e-12)
        rows.append(norms[group.index_maps[TensorRef(node.id, 0)]].mean(axis=1))
    return np.array(rows)


def mac_per_unit(coupling: Coupling, report) -> dict[str, float]:
    """MAC removed by pruning one unit of each group, to first order: its share of every producer's output channels
    plus its share of every consumer's input channels (a layer can be both), from a CostReport of the same model."""
    costs = {c.name: c for c in report.layers}
    result = {}
    for name, group in coupling.groups.items():
        total = 0.0
        for producer in group.producers:
            ref = TensorRef(producer, 0)
            total += costs[producer].mac / coupling.channels[ref] * group.channels_per_unit(ref)
        for consumer in group.consumers:
            ref = coupling.graph.node(consumer).inputs[0]
            if ref in group.index_maps and consumer in costs:
                total += costs[consumer].mac / coupling.channels[ref] * group.channels_per_unit(ref)
        result[name] = total
    return result


def unit_scores(coupling: Coupling, method: str, mac_units: dict[str, float] | None = None,
                means: dict[str, float] | None = None,
                rows: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per group, each unit's score for ``method``: below the threshold means prunable.

    The per-producer values are the normalised filter magnitudes (:func:`normalised_unit_norms`), or ``rows[group]``
    when given (another criterion in the same producers x units layout, e.g. :func:`edgeprune.prune.taylor.taylor_rows`).

    A/B/C: a unit scores the maximum over its coupled producers, so it is prunable only when every coupled layer finds
    it unimportant; this makes residual trunks hard to prune (the paper's observation). D balances the coupled layers
    with their mean. C divides by the MAC (or, when the loop prunes for a device, the predicted time) a unit saves
    per producer channel (``mac_units[group]``, outputs and the
    consumers' inputs, over the producer channels the unit spans), relative to the mean over all groups, so
    channels of MAC-dense (full-resolution) layers go first. Both sides are per channel (a unit's norm is the mean
    over its channels), so a depth-to-space unit of 4 channels is not ranked as 4 times cheaper, and a coupled trunk
    is not penalised for being coupled, which is D's concern.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    options = METHOD_OPTIONS[method]
    if options["mac_efficiency"] and mac_units is None:
        raise ValueError("method C and D need the MAC per unit")
    per_layer = {n: max(mac_units[n], 1e-30) / sum(g.channels_per_unit(TensorRef(p, 0)) for p in g.producers)
                 for n, g in coupling.groups.items()} if mac_units else {}  # a unit that saves nothing: never cut
    mean_mac = float(np.mean(list(per_layer.values()))) if per_layer else 1.0
    scores = {}
    for name, group in coupling.groups.items():
        norms = rows[name] if rows is not None else normalised_unit_norms(coupling, group, means=means)
        score = norms.mean(axis=0) if options["balance"] else norms.max(axis=0)
        if options["mac_efficiency"]:
            score = score / (per_layer[name] / mean_mac)
        scores[name] = score
    return scores


def depth_floor_units(size: int, keep_depth: bool, depth_floor: float = 0.25) -> int:
    """Fewest units a group of ``size`` keeps: ``depth_floor`` of it with keep-depth (option B), else one."""
    return max(1, int(np.ceil(depth_floor * size))) if keep_depth else 1


def keep_for_threshold(scores: dict[str, np.ndarray], threshold: float, keep_depth: bool,
                       depth_floor: float = 0.25) -> dict[str, list[int]]:
    """Units kept per group: those scoring at least ``threshold``; at least one unit, or ``depth_floor`` of the
    group with keep-depth (the highest-scoring ones)."""
    keep = {}
    for name, score in scores.items():
        floor = depth_floor_units(score.size, keep_depth, depth_floor)
        kept = np.flatnonzero(score >= threshold)
        if kept.size < floor:
            kept = np.sort(np.argsort(-score, kind="stable")[:floor])
        keep[name] = sorted(int(i) for i in kept)
    return keep
