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

from edgeprune.core.errors import InvalidArgumentError
from edgeprune.prune.criteria import importance

GRANULARITIES = ("channel", "kernel", "both")  # coarse: what a random mask removes
CANDIDATES = 8  # coarse: random masks drawn and compared per step


@dataclass(frozen=True)
class Choice:
    keep: dict[str, list[int]]
    kernels: dict | None = None
    threshold: float | None = None
    extra: dict = field(default_factory=dict)  # what the iteration's record says of the choice


class ThresholdProposer:
    """The paper's adaptive threshold on the scores of the settings' importance criterion, measured on the
    pruner's current (accepted) weights at every iteration."""

    name = "threshold"

    def __init__(self, pruner):
        self.pruner = pruner
        self.criterion = importance(pruner.settings.importance)
        self.needs_data = self.criterion.needs_data

    def propose(self, level: float, step: float, keep: dict[str, list[int]], kernels, seed: int) -> Choice:
        from edgeprune.prune.threshold import threshold_for_level

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
# what `edgeprune prune --strategy` runs: the loop with one of the proposers, or "qr", pivoted-QR selection with
# least-squares reconstruction once, without a loop (edgeprune.prune.reconstruct)
STRATEGIES = (*PROPOSERS, "qr")


def proposer(name: str, pruner):
    """The registered proposer ``name``, made for ``pruner``."""
    try:
        return PROPOSERS[name](pruner)
    except KeyError:
        raise InvalidArgumentError(f"the prune loop runs the strategies {', '.join(PROPOSERS)}, not {name!r}") from None
