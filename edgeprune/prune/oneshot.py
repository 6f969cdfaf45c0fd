"""One-shot structured pruning: remove a fraction of the units of every prunable group by L1 importance, with no
fine-tuning, and write the slim model, its plan and a report (cost before/after, masked-vs-slim equivalence)."""

import math
import os
import shutil
from pathlib import Path

import numpy as np

from edgeprune.core.checks import fraction, integer_at_least
from edgeprune.graph.cost import model_cost, predicted_cost
from edgeprune.graph.coupling import Coupling
from edgeprune.core.errors import UnsupportedModelError
from edgeprune.prune.importance import l1_scores
from edgeprune.prune.masking import masked_model
from edgeprune.core.modelio import resolve_model, save_model
from edgeprune.core.atomic import staged_files, write_json_atomic
from edgeprune.prune.plan import PruningPlan
from edgeprune.core.sizes import check_multiple
from edgeprune.prune.surgery import slim
from edgeprune.prune.widths import WidthRule, nearest_allowed, width_rule

OUTPUT_FILES = ("pruned.keras", "plan.json", "report.json")


def kept_count(size: int, ratio: float, allowed: list[int] | None = None) -> int:
    """Units a group of ``size`` keeps: ``size - floor(ratio * size)`` (at least one), moved to the nearest of the
    ``allowed`` widths when given (:mod:`edgeprune.prune.widths`: ties to the wider; a group with no allowed width
    below its size stays whole)."""
    keep = max(size - int(math.floor(ratio * size)), 1)
    return nearest_allowed(keep, allowed) if allowed else keep


def l1_plan(coupling: Coupling, ratio: float, model_name: str, widths: WidthRule | None = None) -> PruningPlan:
    """Each group keeps its ``kept_count`` highest-scoring units (at a width ``widths`` allows)."""
    plan = PruningPlan.keep_all(coupling, model_name)
    for name, group in coupling.groups.items():
        scores = l1_scores(coupling, group)
        allowed = widths.allowed(coupling, name) if widths is not None and widths.aligns else None
        keep = np.sort(np.argsort(-scores, kind="stable")[: kept_count(group.size, ratio, allowed)])
        plan.keep[name] = keep.tolist()
    return plan


def equivalence(masked, slim_model, input_shape, seed: int = 0) -> dict:
    x = np.random.default_rng(seed).random(input_shape, dtype=np.float32)
    a = masked(x, training=False).numpy()
    b = slim_model(x, training=False).numpy()
    max_abs = float(np.abs(a - b).max())
    return {"input_shape": list(input_shape), "max_abs_diff": max_abs,
            "max_rel_diff": max_abs / max(float(np.abs(a).max()), 1e-12)}


def one_shot_prune(model, channel_ratio: float, out_dir: str | os.PathLike, input_size=None,
                   check_size=(32, 32), seed: int = 0, channel_multiple: int = 1, profile=None,
                   profile_source: str | None = None) -> dict:
    """Prunes ``model`` (reference name, .keras path or keras.Model) one-shot and writes ``OUTPUT_FILES`` to
    ``out_dir``. Widths are aligned to ``channel_multiple`` channels, or to the tiles of ``profile`` (a
    LatencyProfile, which also prices the result). Returns the report. On any error nothing is left in
    ``out_dir``."""
    ratio = fraction("channel ratio", channel_ratio)
    rule = width_rule(channel_multiple, profile, profile_source)
    resolved = resolve_model(model)
    size = tuple(input_size) if input_size else resolved.default_input_size
    if size is not None:
        check_multiple(size, resolved.input_multiple, resolved.name)
    coupling = Coupling(resolved.model)
    if not coupling.groups:
        why = "; ".join(coupling.frozen_reasons) or "all its channels reach a model input or output"
        raise UnsupportedModelError(f"'{resolved.name}' has no prunable channel group ({why})")
    rule.check_fits(coupling)
    plan = l1_plan(coupling, ratio, resolved.name, rule)
    slim_model = slim(resolved.model, plan, coupling)
    masked = masked_model(resolved.model, plan, coupling)
    static = [d for d in resolved.model.inputs[0].shape[1:3]]
    probe = tuple(s if s is not None else c for s, c in zip(static, check_size))
    channels_in = resolved.model.inputs[0].shape[-1]
    report = {
        "model": resolved.name,
        "method": "one-shot L1 (no fine-tuning)",
        "channel_ratio": ratio,
        "channel_multiple": channel_multiple,
        "widths": rule.to_dict(),
        "original": model_cost(coupling.graph, size, name=resolved.name).to_dict(),
        "pruned": model_cost(slim_model, size, name=resolved.name).to_dict(),
        "equivalence": equivalence(masked, slim_model, (1, *probe, channels_in), seed),
        "groups": {n: {"size": g.size, "kept": len(plan.kept_units(n)), "producers": list(g.producers)}
                   for n, g in coupling.groups.items()},
        "frozen": coupling.frozen_reasons,
    }
    kept = coupling.kept_channels({n: plan.kept_units(n) for n in coupling.groups})
    predicted = predicted_cost(coupling.graph, {r: len(k) for r, k in kept.items()}, size).totals.to_dict()
    report["plan_prediction"] = {"totals": predicted,
                                 "matches_pruned": predicted == report["pruned"]["totals"]}
    for key in ("original", "pruned"):
        report[key] = {k: report[key][k] for k in ("input_size", "dtype", "totals", "totals_all_layers", "layers")}
    report["mac_ratio"] = report["pruned"]["totals"]["mac"] / report["original"]["totals"]["mac"]
    if profile is not None:
        from edgeprune.graph.latency_profile import predict_report

        base_us = predict_report(profile, model_cost(coupling.graph, size))["total_us"]
        pruned_us = predict_report(profile, model_cost(slim_model, size))["total_us"]
        report["predicted_latency"] = {"baseline_us": base_us, "pruned_us": pruned_us, "ratio": pruned_us / base_us,
                                       "input_size": list(size) if size else None}
    write_outputs(Path(out_dir), slim_model, plan, report)
    return report


def write_outputs(out_dir: Path, slim_model, plan: PruningPlan, report: dict) -> None:
    """Writes all three files together (all or nothing; a folder this call created is removed again on failure)."""
    created = not out_dir.exists()
    try:
        with staged_files(out_dir, OUTPUT_FILES) as stage:
            save_model(slim_model, stage / "pruned.keras")
            plan.save(stage / "plan.json")
            write_json_atomic(stage / "report.json", report)
    except BaseException:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
