"""The iterative, quality-gated prune loop (the paper's method A, with options B, C and D).

Each iteration proposes a higher threshold (:mod:`edgeprune.prune.level`) on the unit scores of
:mod:`edgeprune.prune.importance`, computed from the current (fine-tuned) weights and normalised by the *baseline's*
per-layer mean filter norms, so the scale does not drift as pruned filters go to zero. With
``importance="taylor"`` the scores are instead measured from data on the current weights at every iteration
(:mod:`edgeprune.prune.taylor`), for networks trained too briefly for their filter norms to mean much.

The controller steps a *level* q in [0, 1): the fraction of the baseline's MAC to remove. Each iteration sets the
importance threshold to the lowest score at which pruning every unit below it (on the current weights, pruned units
staying pruned) brings the predicted MAC to at most 1 - q. So the threshold is an importance threshold, but its steps
adapt to how spread the magnitudes are: a briefly trained network has normalised filter norms within a few percent
of 1, where fixed steps in norm prune nothing for a while and then most of the network at once (measured on the quick
EDSR baseline with method D: unit scores run from 0.50 to 1.06, and the threshold 1.0085 already takes the MAC to
0.39, because all 64 trunk units score between 0.98 and 1.01). Units scoring below it are
masked out (whole channels, through tfmot's wrappers, :mod:`edgeprune.prune.masking`), the masked model is fine-tuned for
a fixed budget, then PSNR and SSIM are measured on the held-out validation set. The step is accepted when both stay
within the tolerance of the baseline's; otherwise the weights and masks roll back to the last accepted state and the
next proposal takes a smaller step. Pruned units stay pruned (the plan only shrinks).

After every iteration the state (threshold, plan, records) and the accepted weights are checkpointed in
``workdir``, so a killed run continues with ``resume=True`` and loses no accepted iteration.
"""

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from edgeprune.atomic import atomic_path, write_json_atomic
from edgeprune.graph.cost import model_cost, predicted_cost
from edgeprune.graph.coupling import Coupling
from edgeprune.errors import InvalidArgumentError
from edgeprune.prune.importance import (CRITERIA, METHOD_OPTIONS, METHODS, keep_for_threshold, layer_means, mac_per_unit,
                                  unit_scores)
from edgeprune.prune.masking import ChannelMasks
from edgeprune.prune.plan import PruningPlan
from edgeprune.prune.taylor import taylor_importance
from edgeprune.prune.level import ThresholdPolicy, ThresholdState
from edgeprune.train.fit import TrainConfig, fit, plain_copy, validate

STATE_FILE = "loop.json"
STATE_FORMAT = "edgeprune.loop/1"


def check_fraction(name: str, value) -> float | None:
    """``value`` as a float strictly inside (0, 1), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or not 0 < value < 1:
        raise InvalidArgumentError(f"{name} must be strictly between 0 and 1 (a fraction of the baseline), "
                                   f"got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Tolerance:
    """Largest accepted drop below the baseline: PSNR in dB, SSIM in SSIM units."""

    psnr: float = 0.05
    ssim: float = 0.002

    def __post_init__(self):
        for name in ("psnr", "ssim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise InvalidArgumentError(f"the {name.upper()} tolerance must be a number >= 0, got {value!r}")

    def holds(self, quality: dict, reference: dict) -> bool:
        return (quality["psnr"] >= reference["psnr"] - self.psnr
                and quality["ssim"] >= reference["ssim"] - self.ssim)


@dataclass(frozen=True)
class LoopSettings:
    method: str = "D"
    target_mac: float | None = 0.8  # stop once an accepted state's MAC is at most this fraction of the baseline's
    tolerance: Tolerance = field(default_factory=Tolerance)
    finetune: TrainConfig = field(default_factory=TrainConfig)  # the budget of one iteration
    policy: ThresholdPolicy = field(default_factory=ThresholdPolicy)
    depth_floor: float = 0.25  # option B: the fraction of every group always kept
    importance: str = "magnitude"  # the unit scores: normalised filter norms, or "taylor" (edgeprune.prune.taylor)

    def __post_init__(self):
        if self.method not in METHODS:
            raise InvalidArgumentError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.importance not in CRITERIA:
            raise InvalidArgumentError(f"importance must be one of {', '.join(CRITERIA)}, got {self.importance!r}")
        check_fraction("target MAC", self.target_mac)
        if not 0 < self.depth_floor <= 1:
            raise InvalidArgumentError(f"depth floor must be in (0, 1], got {self.depth_floor!r}")
        self.finetune.validate()

    def to_dict(self) -> dict:
        return {"method": self.method, "options": METHOD_OPTIONS[self.method], "target_mac": self.target_mac,
                "tolerance": asdict(self.tolerance), "finetune": self.finetune.to_dict(),
                "policy": asdict(self.policy), "depth_floor": self.depth_floor,
                "importance": self.importance}


@dataclass
class LoopState:
    """Everything a resumed run needs, as JSON (the weights are a separate file, named by ``weights``)."""

    threshold: ThresholdState
    keep: dict[str, list[int]]
    iterations: list[dict] = field(default_factory=list)
    lineage_steps: int = 0  # fine-tuning steps in the accepted model's history
    spent_steps: int = 0  # all fine-tuning steps, rolled-back ones included
    weights: str | None = None  # file of the accepted weights (None: the baseline's)
    quality: dict | None = None  # of the accepted state
    mac: float = 1.0  # of the accepted state, as a fraction of the baseline

    def to_dict(self) -> dict:
        return {"format": STATE_FORMAT, "threshold": self.threshold.to_dict(), "keep": self.keep,
                "iterations": self.iterations, "lineage_steps": self.lineage_steps,
                "spent_steps": self.spent_steps, "weights": self.weights, "quality": self.quality, "mac": self.mac}

    @classmethod
    def from_dict(cls, data: dict) -> "LoopState":
        return cls(ThresholdState.from_dict(data["threshold"]), {k: list(v) for k, v in data["keep"].items()},
                   list(data["iterations"]), int(data["lineage_steps"]), int(data["spent_steps"]), data["weights"],
                   data["quality"], float(data["mac"]))


@dataclass
class LoopResult:
    model: object  # the accepted masked model, unwrapped (pruned channels are exactly 0)
    plan: PruningPlan
    state: LoopState


class CostOracle:
    """MAC of a plan as a fraction of the baseline's, predicted from the plan alone (exact: see surgery tests)."""

    def __init__(self, baseline, coupling: Coupling, input_size):
        self.baseline, self.coupling, self.input_size = baseline, coupling, input_size
        self.base_mac = model_cost(baseline, input_size).totals.mac

    def mac_ratio(self, keep: dict[str, list[int]]) -> float:
        kept = self.coupling.kept_channels(keep)
        cost = predicted_cost(self.baseline, {r: len(k) for r, k in kept.items()}, self.input_size)
        return cost.totals.mac / self.base_mac


def propose_keep(coupling: Coupling, settings: LoopSettings, threshold: float, current: dict[str, list[int]],
                 means: dict[str, float], mac_units: dict[str, float] | None,
                 scores: dict[str, np.ndarray] | None = None) -> dict[str, list[int]]:
    """Units kept at ``threshold``: scoring at least the threshold, among those still kept (pruning is monotone)."""
    options = METHOD_OPTIONS[settings.method]
    scores = {n: s.copy() for n, s in (scores or unit_scores(coupling, settings.method, mac_units, means)).items()}
    for name, score in scores.items():
        pruned = np.setdiff1d(np.arange(score.size), current[name])
        score[pruned] = -np.inf
    keep = keep_for_threshold(scores, threshold, options["keep_depth"], settings.depth_floor)
    return {name: sorted(set(units) & set(current[name])) or current[name] for name, units in keep.items()}


def threshold_for_level(coupling: Coupling, settings: LoopSettings, level: float, current: dict[str, list[int]],
                        means: dict[str, float], mac_units, oracle: CostOracle,
                        rows=None) -> tuple[float, dict, float]:
    """(threshold, kept units, MAC ratio): the lowest threshold among the current scores whose plan has a MAC of at
    most ``1 - level`` (or, if none reaches it, the highest, which leaves only the floors). Binary search: the MAC
    falls as the threshold rises. ``rows``: the per-producer unit values when not the filter magnitudes."""
    scores = unit_scores(coupling, settings.method, mac_units, means, rows)
    candidates = np.unique(np.concatenate([s[np.isin(np.arange(s.size), current[n])] for n, s in scores.items()]))
    thresholds = [*candidates.tolist(), float("inf")]
    cache = {}

    def plan_at(i):
        if i not in cache:
            keep = propose_keep(coupling, settings, thresholds[i], current, means, mac_units, scores)
            cache[i] = (keep, oracle.mac_ratio(keep))
        return cache[i]

    lo, hi = 0, len(thresholds) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if plan_at(mid)[1] <= 1 - level + 1e-12:
            hi = mid
        else:
            lo = mid + 1
    keep, mac = plan_at(lo)
    return thresholds[lo], keep, mac


def _save_state(workdir: Path, state: LoopState, model) -> LoopState:
    """Checkpoints ``state`` (and ``model``'s weights when they changed): weights first, then the JSON that names
    them, so a kill between the two leaves the previous consistent checkpoint."""
    if model is not None:
        name = f"accepted-{len(state.iterations):03d}.weights.h5"
        with atomic_path(workdir / name, suffix=".partial.weights.h5") as tmp:
            model.save_weights(str(tmp))
        state = replace(state, weights=name)
    write_json_atomic(workdir / STATE_FILE, state.to_dict())
    for old in workdir.glob("accepted-*.weights.h5"):
        if old.name != state.weights:
            old.unlink()
    return state


def load_state(workdir: Path) -> LoopState | None:
    path = Path(workdir) / STATE_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    if data.get("format") != STATE_FORMAT:
        raise InvalidArgumentError(f"'{path}' is not an edgeprune loop checkpoint of this version: delete it to "
                                   "start over")
    return LoopState.from_dict(data)


def prune_loop(baseline, train_pool, val, settings: LoopSettings, baseline_quality: dict, input_size,
               workdir, resume: bool = False, progress=None, strategy=None, verbose: int = 1) -> LoopResult:
    """Runs the loop from ``baseline`` (a trained keras.Model). ``progress(record)`` is called after every
    iteration. Returns the last accepted state."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    current = plain_copy(baseline)  # scored and fine-tuned from; holds the accepted weights
    coupling = Coupling(current)
    means = layer_means(coupling)
    oracle = CostOracle(baseline, coupling, input_size)
    mac_units = mac_per_unit(coupling, model_cost(baseline, input_size))
    name = baseline.name
    full = PruningPlan.keep_all(coupling, name)
    state = load_state(workdir) if resume else None
    if state is None:
        state = LoopState(settings.policy.start(), dict(full.keep), quality=dict(baseline_quality))
        state = _save_state(workdir, state, None)
    elif state.weights:
        current.load_weights(str(workdir / state.weights))
    policy = settings.policy
    while not policy.done(state.threshold):
        started = time.perf_counter()
        level = policy.propose(state.threshold)
        rows = None
        if settings.importance == "taylor":  # measured on the accepted weights, reproducibly per iteration
            rows = taylor_importance(current, coupling, train_pool, settings.finetune.batch_size,
                                     settings.finetune.patch, seed=state.threshold.iteration + 1)
        threshold, keep, mac = threshold_for_level(coupling, settings, level, state.keep, means, mac_units, oracle,
                                                   rows)
        record = {"iteration": state.threshold.iteration + 1, "level": level, "threshold": threshold,
                  "step": state.threshold.step, "mac": mac,
                  "kept_units": sum(map(len, keep.values())), "finetune_steps": 0}
        if keep == state.keep:  # nothing under the new threshold: nothing to fine-tune or measure
            ok, quality, tuned = True, state.quality, None
            record["note"] = "no unit below this threshold"
        else:
            plan = PruningPlan(name, full.fingerprint, full.sizes, keep)
            config = replace(settings.finetune, seed=settings.finetune.seed + record["iteration"])
            tuned, _ = fit(current, train_pool, config, strategy=strategy, masks=ChannelMasks(coupling, plan),
                           verbose=verbose)
            quality = {k: v for k, v in validate(tuned, val).items() if k in ("psnr", "ssim")}
            ok = settings.tolerance.holds(quality, baseline_quality)
            record["finetune_steps"] = config.steps
        target_met = ok and settings.target_mac is not None and mac <= settings.target_mac
        record.update({"psnr": quality["psnr"], "ssim": quality["ssim"], "accepted": ok,
                       "seconds": round(time.perf_counter() - started, 1)})
        spent = state.spent_steps + record["finetune_steps"]
        new_threshold = policy.update(state.threshold, ok, target_met)
        if ok:
            if tuned is not None:
                current.set_weights(tuned.get_weights())
            state = replace(state, threshold=new_threshold, keep=keep, quality=quality, mac=mac,
                            iterations=[*state.iterations, record], spent_steps=spent,
                            lineage_steps=state.lineage_steps + record["finetune_steps"])
            state = _save_state(workdir, state, current if tuned is not None else None)
        else:
            state = replace(state, threshold=new_threshold, iterations=[*state.iterations, record],
                            spent_steps=spent)
            state = _save_state(workdir, state, None)
        if progress:
            progress(record)
    return LoopResult(current, PruningPlan(name, full.fingerprint, full.sizes, dict(state.keep)), state)
