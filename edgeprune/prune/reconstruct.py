"""The one-shot QR strategy (``edgeprune prune --strategy qr``): pivoted-QR channel selection with least-squares
reconstruction (:mod:`edgeprune.prune.qr`), once, to a cost target, then optionally fine-tuned under
its channel masks for ``recover_steps`` (``--recover-steps``; the pipeline's control then has as many steps), against
the ground truth and, with ``settings.distill``, the baseline's output too (``--distill``).

How many units each group keeps comes from the same allocation as the loop's: units are scored by their pivoted-QR
independence (:func:`~edgeprune.prune.qr.qr_rows`, through the method's options: B's depth floor, C's cost per unit,
D's balanced trunk) and the lowest level whose plan meets the target (``target_mac``, and ``target_latency`` with a
latency profile; widths aligned as the loop aligns them) is found by bisection. The reconstruction then re-selects each
group's units on the model as pruned so far and re-fits every consumer by least squares against the baseline's
outputs. Aligned widths make the reachable costs coarse (a 64-channel group under a 32-channel tile keeps 64, 32 or
1): the record says what the nearest plan that misses the target costs, so an overshoot is explained, not hidden.
The result is one record in the loop's format (``accepted`` is the quality gate's verdict, for the report:
nothing is rolled back), so the pipeline's control, report and outputs are the loop's.
"""

import time
from dataclasses import replace

from edgeprune.core.checks import integer_at_least
from edgeprune.graph.cost import model_cost
from edgeprune.graph.coupling import Coupling
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.prune.importance import layer_means, mac_per_unit
from edgeprune.prune.level import LevelState
from edgeprune.prune.loop import LoopResult, LoopSettings, LoopState
from edgeprune.prune.threshold import threshold_for_level
from edgeprune.prune.masking import ChannelMasks
from edgeprune.prune.oracle import CostOracle
from edgeprune.prune.plan import PruningPlan
from edgeprune.prune.qr import qr_batches, qr_reconstruct, qr_rows
from edgeprune.train.fit import fit, plain_copy, validate
from edgeprune.core.timing import PhaseTimes

BISECTION_STEPS = 30


def plan_for_target(coupling: Coupling, settings: LoopSettings, oracle: CostOracle, rows, means, mac_units,
                    full_keep: dict[str, list[int]]) -> tuple[float, dict[str, list[int]], dict[str, list[int]] | None]:
    """(level, kept units, missed): the lowest level whose plan (scored by ``rows``) meets ``settings``' targets, or
    the plan at the floors when none does (the caller reports that the target was not met); ``missed`` is the plan
    at the highest level searched that does not meet them (None when even level 0's does)."""
    def plan_at(level):
        return threshold_for_level(coupling, settings, level, full_keep, means, mac_units, oracle, rows,
                                   step=level)[1]

    def meets(keep):
        latency = oracle.latency_ratio(keep) if settings.profile is not None else None
        return settings.target_met(oracle.mac_ratio(keep), latency)

    lo, hi = 0.0, 0.999
    best = plan_at(hi)
    if not meets(best):
        return hi, best, None
    missed = plan_at(lo)
    if meets(missed):
        return lo, missed, None
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        keep = plan_at(mid)
        if meets(keep):
            hi, best = mid, keep
        else:
            lo, missed = mid, keep
    return hi, best, missed


def qr_one_shot(baseline, train_pool, val, settings: LoopSettings, baseline_quality: dict, input_size,
                latency_size=None, times: PhaseTimes | None = None, seed: int = 0, recover_steps: int = 0,
                verbose: int = 1) -> LoopResult:
    """Prunes a copy of ``baseline`` once to ``settings``' targets by pivoted QR with least-squares reconstruction
    on training patches of ``train_pool``, fine-tunes it under its channel masks for ``recover_steps`` (0: not at
    all; the loop's fine-tuning settings, seed ``seed + 1``), and validates it on ``val``; ``baseline`` is not
    changed. ``accepted`` is judged against ``baseline_quality``; with ``recover_steps`` the caller's control (the
    baseline fine-tuned as long) is the fair comparison."""
    if settings.target_mac is None and settings.target_latency is None:
        raise InvalidArgumentError("--strategy qr prunes once to a target: give --target-mac or --target-latency")
    integer_at_least("--recover-steps", recover_steps, 0)
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
        level, keep, missed = plan_for_target(coupling, settings, oracle, rows, layer_means(coupling),
                                              mac_per_unit(coupling, base_cost), dict(full.keep))
    with times.phase("loop.reconstruct"):
        model, keep, details = qr_reconstruct(current, coupling, {n: len(u) for n, u in keep.items()}, batches,
                                              seed=seed)
    if recover_steps:
        masks = ChannelMasks(coupling, PruningPlan(baseline.name, full.fingerprint, full.sizes, keep))
        with times.phase("loop.finetune"):
            model, _ = fit(model, train_pool, replace(settings.finetune, steps=recover_steps, seed=seed + 1),
                           masks=masks, verbose=verbose, teacher=baseline, distill=settings.distill)
    with times.phase("loop.validate"):
        quality = {k: v for k, v in validate(model, val).items() if k in ("psnr", "ssim")}
    mac = oracle.mac_ratio(keep)
    latency = oracle.latency_ratio(keep) if settings.profile is not None else None
    target_met = settings.target_met(mac, latency)
    how = (f"fine-tuned for {recover_steps} steps" if recover_steps else "not fine-tuned")
    record = {"iteration": 1, "level": level, "threshold": None, "step": level, "mac": mac,
              **({"latency": latency} if latency is not None else {}),
              "kept_units": sum(map(len, keep.values())), "finetune_steps": recover_steps, "psnr": quality["psnr"],
              "ssim": quality["ssim"], "accepted": settings.tolerance.holds(quality, baseline_quality),
              "note": f"one-shot: reconstructed by least squares, {how}, not rolled back",
              "reconstruction": details, "seconds": round(time.perf_counter() - started, 1)}
    if missed is not None:  # what the target cost: the nearest plan the widths allow that misses it
        record["missed_plan"] = {"mac": oracle.mac_ratio(missed),
                                 **({"latency": oracle.latency_ratio(missed)} if latency is not None else {})}
    state = LoopState(LevelState(accepted=level, step=0.0, iteration=1, target_met=target_met), keep, [record],
                      quality=quality, mac=mac, latency=latency, lineage_steps=recover_steps,
                      spent_steps=recover_steps)
    return LoopResult(model, PruningPlan(baseline.name, full.fingerprint, full.sizes, keep), state, coupling)
