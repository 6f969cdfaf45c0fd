"""The one-shot QR strategy (``edgeprune prune --strategy qr``): pivoted-QR channel selection with least-squares
reconstruction (:mod:`edgeprune.prune.qr`, the seed 004), once, to a cost target, with no fine-tuning.

How many units each group keeps comes from the same allocation as the loop's: units are scored by their pivoted-QR
independence (:func:`~edgeprune.prune.qr.qr_rows`, through the method's options: B's depth floor, C's cost per unit,
D's balanced trunk) and the lowest level whose plan meets the target (``target_mac``, and ``target_latency`` with a
latency profile; widths aligned as the loop aligns them) is found by bisection. The reconstruction then re-selects each
group's units on the model as pruned so far and re-fits every consumer by least squares against the baseline's
outputs. The result is one record in the loop's format (``accepted`` is the quality gate's verdict, for the report:
nothing is rolled back), so the pipeline's control, report and outputs are the loop's.
"""

import time

from edgeprune.graph.cost import model_cost
from edgeprune.graph.coupling import Coupling
from edgeprune.errors import InvalidArgumentError
from edgeprune.prune.importance import layer_means, mac_per_unit
from edgeprune.prune.level import LevelState
from edgeprune.prune.loop import LoopResult, LoopSettings, LoopState, threshold_for_level
from edgeprune.prune.oracle import CostOracle
from edgeprune.prune.plan import PruningPlan
from edgeprune.prune.qr import qr_batches, qr_reconstruct, qr_rows
from edgeprune.train.fit import plain_copy, validate
from edgeprune.timing import PhaseTimes

BISECTION_STEPS = 30


def plan_for_target(coupling: Coupling, settings: LoopSettings, oracle: CostOracle, rows, means, mac_units,
                    full_keep: dict[str, list[int]]) -> tuple[float, dict[str, list[int]]]:
    """(level, kept units): the lowest level whose plan (scored by ``rows``) meets ``settings``' targets, or the
    plan at the floors when none does (the caller reports that the target was not met)."""
    def plan_at(level):
        return threshold_for_level(coupling, settings, level, full_keep, means, mac_units, oracle, rows,
                                   step=level)[1]

    def meets(keep):
        latency = oracle.latency_ratio(keep) if settings.profile is not None else None
        return settings.target_met(oracle.mac_ratio(keep), latency)

    lo, hi = 0.0, 0.999
    best = plan_at(hi)
    if not meets(best):
        return hi, best
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        keep = plan_at(mid)
        if meets(keep):
            hi, best = mid, keep
        else:
            lo = mid
    return hi, best


def qr_one_shot(baseline, train_pool, val, settings: LoopSettings, baseline_quality: dict, input_size,
                latency_size=None, times: PhaseTimes | None = None, seed: int = 0) -> LoopResult:
    """Prunes a copy of ``baseline`` once to ``settings``' targets by pivoted QR with least-squares reconstruction
    on training patches of ``train_pool``, and validates it on ``val``; ``baseline`` is not changed."""
    if settings.target_mac is None and settings.target_latency is None:
        raise InvalidArgumentError("--strategy qr prunes once to a target: give --target-mac or --target-latency")
    times = times or PhaseTimes()
    started = time.perf_counter()
    current = plain_copy(baseline)
    coupling = Coupling(current)
    base_cost = model_cost(coupling.graph, input_size)
    oracle = CostOracle(coupling, input_size, base_cost, settings.profile, latency_size)
    full = PruningPlan.keep_all(coupling, baseline.name)
    with times.phase("loop.importance"):
        batches = qr_batches(train_pool, settings.finetune.batch_size, settings.finetune.patch, seed)
        rows = qr_rows(current, coupling, batches, seed=seed)
        level, keep = plan_for_target(coupling, settings, oracle, rows, layer_means(coupling),
                                      mac_per_unit(coupling, base_cost), dict(full.keep))
    with times.phase("loop.reconstruct"):
        model, keep, details = qr_reconstruct(current, coupling, {n: len(u) for n, u in keep.items()}, batches,
                                              seed=seed)
    with times.phase("loop.validate"):
        quality = {k: v for k, v in validate(model, val).items() if k in ("psnr", "ssim")}
    mac = oracle.mac_ratio(keep)
    latency = oracle.latency_ratio(keep) if settings.profile is not None else None
    target_met = settings.target_met(mac, latency)
    record = {"iteration": 1, "level": level, "threshold": None, "step": level, "mac": mac,
              **({"latency": latency} if latency is not None else {}),
              "kept_units": sum(map(len, keep.values())), "finetune_steps": 0, "psnr": quality["psnr"],
              "ssim": quality["ssim"], "accepted": settings.tolerance.holds(quality, baseline_quality),
              "note": "one-shot: reconstructed by least squares, not fine-tuned or rolled back",
              "reconstruction": details, "seconds": round(time.perf_counter() - started, 1)}
    state = LoopState(LevelState(accepted=level, step=0.0, iteration=1, target_met=target_met), keep, [record],
                      quality=quality, mac=mac, latency=latency)
    return LoopResult(model, PruningPlan(baseline.name, full.fingerprint, full.sizes, keep), state, coupling)
