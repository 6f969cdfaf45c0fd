"""What a plan costs, predicted from the plan alone: its MAC and, with a latency profile, its latency, as fractions
of the baseline's (exact for MAC: see the surgery tests; the latency is the calibrated model's,
:mod:`edgeprune.graph.latency_profile`).

The prune loop steps its level on one of the two *measures* (``"mac"``, or ``"latency"`` when it prunes for a
device), checks its targets on both, and, for option C, ranks units by importance per predicted microsecond saved
(:meth:`CostOracle.time_per_unit`) instead of per MAC.
"""

from edgeprune.graph.cost import CostReport, model_cost, predicted_cost
from edgeprune.graph.coupling import Coupling

MEASURES = ("mac", "latency")


class CostOracle:
    """Predicted MAC and latency of plans of one model.

    ``coupling`` is of the baseline or of a copy of it (same structure); its graph serves every prediction.
    ``input_size``: of the MAC figures; ``base_cost``: the baseline's cost there, when the caller has it.
    ``profile`` (a LatencyProfile) and ``latency_size`` (default ``input_size``): the latency predictions."""

    def __init__(self, coupling: Coupling, input_size, base_cost: CostReport | None = None, profile=None,
                 latency_size=None):
        self.coupling, self.input_size, self.profile = coupling, input_size, profile
        self.latency_size = tuple(latency_size or input_size)
        self.base_mac = (base_cost or model_cost(coupling.graph, input_size)).totals.mac
        self.base_us = self.latency_us(None) if profile is not None else None

    def _cost(self, keep, size) -> CostReport:
        if keep is None:
            return predicted_cost(self.coupling.graph, {}, size)
        kept = self.coupling.kept_channels(keep)
        return predicted_cost(self.coupling.graph, {r: len(k) for r, k in kept.items()}, size)

    def mac_ratio(self, keep: dict[str, list[int]]) -> float:
        return self._cost(keep, self.input_size).totals.mac / self.base_mac

    def latency_us(self, keep: dict[str, list[int]] | None) -> float:
        """Predicted latency (us) of the plan ``keep`` (None: the baseline) at ``latency_size``."""
        from edgeprune.graph.latency_profile import predict_report

        if self.profile is None:
            raise ValueError("latency predictions need a latency profile")
        return predict_report(self.profile, self._cost(keep, self.latency_size))["total_us"]

    def latency_ratio(self, keep: dict[str, list[int]]) -> float:
        return self.latency_us(keep) / self.base_us

    def ratio(self, keep: dict[str, list[int]], measure: str) -> float:
        return self.latency_ratio(keep) if measure == "latency" else self.mac_ratio(keep)

    def time_per_unit(self, keep: dict[str, list[int]], rule) -> dict[str, float]:
        """Predicted microseconds saved per unit when each group, at its width in ``keep``, gives up its next block
        of units under ``rule`` (a :class:`~edgeprune.prune.widths.WidthRule`): the device's price of a unit, at the
        current widths. A group with no narrower allowed width is priced by removing one unit (a group of one: 0)."""
        now = self.latency_us(keep)
        out = {}
        for name in self.coupling.groups:
            units = keep[name]
            narrower = [w for w in rule.allowed(self.coupling, name) if w < len(units)]
            target = narrower[-1] if narrower else (len(units) - 1 if len(units) > 1 else None)
            if target is None:
                out[name] = 0.0
                continue
            trial = {**keep, name: units[:target]}
            out[name] = max(now - self.latency_us(trial), 0.0) / (len(units) - target)
        return out
