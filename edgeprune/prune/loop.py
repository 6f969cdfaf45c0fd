"""The iterative, quality-gated prune loop (the paper's method A, with options B, C and D).

Each iteration proposes a higher MAC level (:mod:`edgeprune.prune.level`), turned into a threshold on the unit
scores of :mod:`edgeprune.prune.importance`, computed from the current (fine-tuned) weights and normalised by the
*baseline's* per-layer mean filter norms, so the scale does not drift as pruned filters go to zero. With
``importance="taylor"`` the scores are instead measured from data on the current weights at every iteration
(:mod:`edgeprune.prune.taylor`), for networks trained too briefly for their filter norms to mean much.

The controller steps a *level* q in [0, 1): the fraction of the baseline's MAC to remove. Each iteration sets the
importance threshold to the lowest score at which pruning every unit below it (on the current weights, pruned units
staying pruned) brings the predicted MAC to at most 1 - q. So the threshold is an importance threshold, but its steps
adapt to how spread the magnitudes are: a briefly trained network has normalised filter norms within a few percent
of 1, where fixed steps in norm prune nothing for a while and then most of the network at once (BENCHMARKS.md,
"Figures behind the library's defaults"). Units scoring below it are masked out (whole channels, through tfmot's
wrappers, :mod:`edgeprune.prune.masking`), the masked model is fine-tuned for a fixed budget, then PSNR and SSIM are
measured on the held-out validation set. The step is accepted when both stay within the tolerance of the baseline's
(with ``gate="control"`` also within the tolerance of the *control*: the unpruned baseline fine-tuned for as many
steps as the candidate's history holds, so extra training cannot hide pruning damage on a baseline far from
converged); otherwise the weights and masks roll back to the last accepted state and the next proposal takes a smaller step.
Pruned units stay pruned (the plan only shrinks).

After every iteration the state (level, plan, records) and the accepted weights are checkpointed in
``workdir``, so a killed run continues with ``resume=True`` and loses no accepted iteration.
"""

import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from edgeprune.atomic import atomic_path, write_json_atomic
from edgeprune.checks import fraction
from edgeprune.files import read_json
from edgeprune.graph.cost import model_cost
from edgeprune.graph.coupling import Coupling
from edgeprune.errors import FileFormatError, InvalidArgumentError
from edgeprune.prune.importance import (CRITERIA, METHOD_OPTIONS, METHODS, depth_floor_units, keep_for_threshold,
                                        layer_means, mac_per_unit, unit_scores)
from edgeprune.prune.coarse import (CANDIDATES, CoarseMasks, CoarseSearch, check_search, exploitable_keep,
                                    kernels_from_json, kernels_to_json, pruned_kernel_fraction, sparse_mac)
from edgeprune.prune.masking import ChannelMasks
from edgeprune.prune.oracle import CostOracle
from edgeprune.prune.plan import PruningPlan
from edgeprune.prune.widths import WidthRule, blocks
from edgeprune.prune.qr import qr_importance
from edgeprune.prune.taylor import taylor_importance
from edgeprune.prune.level import LevelPolicy, LevelState
from edgeprune.train.fit import Finetuner, TrainConfig, plain_copy, validate
from edgeprune.train.presets import Preset
from edgeprune.timing import PhaseTimes

# how an iteration proposes what to prune: the paper's adaptive importance threshold, or the least damaging of
# random feature-map / kernel masks (edgeprune.prune.coarse); the pipeline also runs "qr" (one-shot reconstruction)
LOOP_STRATEGIES = ("threshold", "coarse")
# what an iteration's quality is judged against: the baseline's, or the baseline's and the equal-budget control's
GATES = ("baseline", "control")
STATE_FILE = "loop.json"
STATE_FORMAT = "edgeprune.loop/1"


def check_target(target_mac, what: str = "target MAC") -> float | None:
    """A target (a fraction of the baseline's MAC or latency) as a float strictly inside (0, 1), or None (no
    target)."""
    return None if target_mac is None else fraction(what, target_mac, "a fraction of the baseline")


def profile_identity(profile) -> dict | None:
    """What a run record and a report say about the latency profile the widths were chosen with."""
    if profile is None:
        return None
    return {"target": profile.target, "runner": profile.runner, "num_threads": profile.num_threads,
            "channel_tile": profile.channel_tile, "small_channel_tile": profile.small_channel_tile}


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
    policy: LevelPolicy = field(default_factory=LevelPolicy)
    depth_floor: float = 0.25  # option B: the fraction of every group always kept
    importance: str = "magnitude"  # the unit scores: normalised filter norms, or "taylor" (edgeprune.prune.taylor)
    widths: WidthRule = field(default_factory=WidthRule)  # the widths a group may keep (edgeprune.prune.widths)
    profile: object | None = None  # a LatencyProfile: the level steps on its predicted latency, C divides by time
    target_latency: float | None = None  # stop once the predicted latency is at most this fraction too
    strategy: str = "threshold"  # how an iteration proposes what to prune: see STRATEGIES
    granularity: str = "both"  # coarse: feature maps, kernels or both (edgeprune.prune.coarse)
    candidates: int = CANDIDATES  # coarse: random masks compared per iteration
    gate: str = "baseline"  # one of GATES

    @property
    def measure(self) -> str:
        """What the level is a fraction of: the predicted latency when pruning for a device, else the MAC (for the
        coarse strategy always the MAC, counted with pruned kernels skipped)."""
        return "latency" if self.profile is not None and self.strategy != "coarse" else "mac"

    def __post_init__(self):
        if self.strategy not in LOOP_STRATEGIES:
            raise InvalidArgumentError(f"the prune loop runs the strategies {', '.join(LOOP_STRATEGIES)}, not "
                                       f"{self.strategy!r}")
        check_search(self.granularity, self.candidates)
        if self.gate not in GATES:
            raise InvalidArgumentError(f"--gate must be one of {', '.join(GATES)}, got {self.gate!r}")
        if self.strategy == "coarse" and self.target_latency is not None:
            raise InvalidArgumentError("--target-latency needs a strategy whose widths the latency model can price: "
                                       "coarse kernel masks run dense; use --target-mac with --strategy coarse")
        if self.method not in METHODS:
            raise InvalidArgumentError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.importance not in CRITERIA:
            raise InvalidArgumentError(f"importance must be one of {', '.join(CRITERIA)}, got {self.importance!r}")
        check_target(self.target_mac)
        check_target(self.target_latency, "target latency")
        if self.target_latency is not None and self.profile is None:
            raise InvalidArgumentError("--target-latency needs a latency profile to predict latency with: give "
                                       "--latency-profile (or leave the default, the host's)")
        if not 0 < self.depth_floor <= 1:
            raise InvalidArgumentError(f"depth floor must be in (0, 1], got {self.depth_floor!r}")
        self.finetune.validate()

    @classmethod
    def from_preset(cls, preset: Preset, target_mac: float | None, tolerance: Tolerance, method: str | None = None,
                    importance: str | None = None, widths: WidthRule | None = None, profile=None,
                    target_latency: float | None = None, strategy: str = "threshold", granularity: str = "both",
                    candidates: int = CANDIDATES, gate: str = "baseline") -> "LoopSettings":
        """The loop a preset describes; ``method`` and ``importance`` (None: the preset's) choose the ranking;
        ``widths``, ``profile`` and ``target_latency`` what it prunes for (None: any width, MAC only);
        ``strategy``, ``granularity`` and ``candidates`` how it proposes; ``gate`` what it is judged against."""
        return cls(method=preset.method if method is None else method, target_mac=target_mac, tolerance=tolerance,
                   strategy=strategy, granularity=granularity, candidates=candidates, gate=gate,
                   finetune=preset.finetune_config(),
                   importance=preset.importance if importance is None else importance,
                   widths=widths or WidthRule(), profile=profile, target_latency=target_latency,
                   policy=LevelPolicy(initial_step=preset.initial_step, min_step=preset.min_step, grow=preset.grow,
                                      max_iterations=preset.max_iterations))

    def to_dict(self) -> dict:
        return {"method": self.method, "options": METHOD_OPTIONS[self.method], "target_mac": self.target_mac,
                "tolerance": asdict(self.tolerance), "finetune": self.finetune.to_dict(),
                "policy": asdict(self.policy), "depth_floor": self.depth_floor,
                "importance": self.importance, "widths": self.widths.to_dict(), "measure": self.measure,
                "target_latency": self.target_latency, "latency_profile": profile_identity(self.profile),
                "strategy": self.strategy, **({"gate": self.gate} if self.gate != "baseline" else {}),
                **({"granularity": self.granularity, "candidates": self.candidates}
                   if self.strategy == "coarse" else {})}

    def target_met(self, mac: float, latency: float | None) -> bool:
        """Whether a state of this MAC and predicted latency ratio meets every target set (False with none)."""
        targets = [(self.target_mac, mac), (self.target_latency, latency)]
        given = [(t, v) for t, v in targets if t is not None]
        return bool(given) and all(v is not None and v <= t + 1e-12 for t, v in given)


@dataclass
class LoopState:
    """Everything a resumed run needs, as JSON (the weights are a separate file, named by ``weights``). The level's
    state is recorded under its first name, ``threshold``, so checkpoints of earlier versions still resume."""

    level: LevelState
    keep: dict[str, list[int]]
    iterations: list[dict] = field(default_factory=list)
    lineage_steps: int = 0  # fine-tuning steps in the accepted model's history
    spent_steps: int = 0  # all fine-tuning steps, rolled-back ones included
    weights: str | None = None  # file of the accepted weights (None: the baseline's)
    quality: dict | None = None  # of the accepted state
    mac: float = 1.0  # of the accepted state, as a fraction of the baseline
    latency: float | None = None  # predicted latency of the accepted state, as a fraction (with a profile)
    kernels: dict[str, list[int]] | None = None  # coarse: each conv's pruned kernels (flat (in, out) indices)

    def to_dict(self) -> dict:
        return {"format": STATE_FORMAT, "threshold": self.level.to_dict(), "keep": self.keep,
                "iterations": self.iterations, "lineage_steps": self.lineage_steps,
                "spent_steps": self.spent_steps, "weights": self.weights, "quality": self.quality, "mac": self.mac,
                "latency": self.latency, **({"kernels": self.kernels} if self.kernels is not None else {})}

    @classmethod
    def from_dict(cls, data: dict) -> "LoopState":
        """The state ``data`` holds; a ValueError (or KeyError, TypeError) names the first field that is not one
        :meth:`to_dict` writes."""
        keep, weights, quality = data["keep"], data["weights"], data["quality"]
        if not isinstance(keep, dict) or not all(
                isinstance(units, list) and all(isinstance(u, int) and not isinstance(u, bool) for u in units)
                for units in keep.values()):
            raise ValueError(f"'keep' is {keep!r}, not a map of group names to unit indices")
        if weights is not None and not isinstance(weights, str):
            raise ValueError(f"'weights' is {weights!r}, not a file name")
        if quality is not None and not (isinstance(quality, dict) and all(
                isinstance(quality.get(k), (int, float)) and not isinstance(quality.get(k), bool)
                for k in ("psnr", "ssim"))):
            raise ValueError(f"'quality' is {quality!r}, not numeric PSNR and SSIM")
        kernels = data.get("kernels")
        if kernels is not None and not (isinstance(kernels, dict) and all(
                isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)
                for v in kernels.values())):
            raise ValueError(f"'kernels' is not a map of layer names to kernel indices")
        return cls(LevelState.from_dict(data["threshold"]), {k: list(v) for k, v in keep.items()},
                   list(data["iterations"]), int(data["lineage_steps"]), int(data["spent_steps"]), weights,
                   quality, float(data["mac"]),
                   None if data.get("latency") is None else float(data["latency"]), kernels)


@dataclass
class LoopResult:
    model: object  # the accepted masked model, unwrapped (pruned channels are exactly 0)
    plan: PruningPlan
    state: LoopState
    coupling: Coupling | None = None  # of ``model`` (slim it with this coupling rather than build another)
    kernels: dict | None = None  # coarse: the kept-kernel masks of the accepted state (edgeprune.prune.coarse)


def propose_keep(coupling: Coupling, settings: LoopSettings, threshold: float, current: dict[str, list[int]],
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


def unit_costs_for(settings: LoopSettings, oracle: CostOracle, current: dict[str, list[int]],
                   mac_units: dict[str, float]) -> dict[str, float]:
    """What one unit of each group saves, for option C: predicted microseconds at the current widths when the loop
    prunes for a device (a latency profile), else first-order MAC."""
    if settings.profile is not None and METHOD_OPTIONS[settings.method]["mac_efficiency"]:
        return oracle.time_per_unit(current, settings.widths)
    return mac_units


def threshold_for_level(coupling: Coupling, settings: LoopSettings, level: float, current: dict[str, list[int]],
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


def fill_to_level(coupling: Coupling, settings: LoopSettings, level: float, slack: float,
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
    """The checkpoint in ``workdir``, or None when there is none; a corrupt or foreign one is a FileFormatError."""
    path = Path(workdir) / STATE_FILE
    if not path.exists():
        return None
    data = read_json(path, "prune loop checkpoint")
    if data.get("format") != STATE_FORMAT:
        raise FileFormatError(f"'{path}' is not an edgeprune loop checkpoint of this version: delete it to "
                              "start over")
    try:
        return LoopState.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FileFormatError(f"prune loop checkpoint '{path}' is malformed ({exc.__class__.__name__}: {exc}): "
                              "delete it to start over") from None


def _resume_error(workdir: Path, problem: str) -> FileFormatError:
    return FileFormatError(f"prune loop checkpoint in '{workdir}' cannot be resumed: {problem}; delete the run "
                           "folder's .work and run again without --resume")


def _check_resumed(workdir: Path, state: LoopState, full: PruningPlan) -> None:
    """Raises unless ``state`` (read from ``workdir``) fits the model being pruned: the same channel groups,
    unit indices within them, and the quality and weights file that only this loop writes."""
    if set(state.keep) != set(full.keep):
        raise _resume_error(workdir, "its channel groups are not this model's")
    for name, units in state.keep.items():
        if not units or not set(units) <= set(full.keep[name]):
            raise _resume_error(workdir, f"group {name!r} keeps units {units!r}, not some of its "
                                         f"{len(full.keep[name])}")
    if state.quality is None:
        raise _resume_error(workdir, "it records no quality")
    if state.weights is not None and not re.fullmatch(r"accepted-\d{3}\.weights\.h5", state.weights):
        raise _resume_error(workdir, f"its weights {state.weights!r} are not a file this loop writes")


def _load_accepted(model, workdir: Path, name: str) -> None:
    """The checkpointed weights ``workdir / name`` into ``model``."""
    path = workdir / name
    if not path.is_file():
        raise _resume_error(workdir, f"its weights file '{path}' does not exist")
    try:
        model.load_weights(str(path))
    except Exception as exc:  # h5py and Keras fail in many ways on a truncated or foreign file
        raise _resume_error(workdir, f"its weights file '{path}' is unreadable ({exc.__class__.__name__})") from None


def prune_loop(baseline, train_pool, val, settings: LoopSettings, baseline_quality: dict, input_size,
               workdir, resume: bool = False, progress=None, strategy=None, verbose: int = 1,
               latency_size=None, times: PhaseTimes | None = None, control=None) -> LoopResult:
    """Runs the loop from ``baseline`` (a trained keras.Model). ``progress(record)`` is called after every
    iteration. ``input_size``: of the MAC figures; ``latency_size`` (default ``input_size``): of the predicted
    latency, with a profile. ``times`` collects the seconds of its phases (``loop.importance``, ``loop.finetune``,
    ``loop.validate``, ``loop.control``, ``loop.checkpoint``). ``control(steps)``: the quality (``psnr``,
    ``ssim``) of the unpruned baseline fine-tuned for ``steps``, which ``settings.gate == "control"`` needs; it is
    asked only for candidates that hold against the baseline. Returns the last accepted state."""
    if settings.gate == "control" and control is None:
        raise InvalidArgumentError("the control gate needs the control's quality: pass control=")
    times = times or PhaseTimes()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    current = plain_copy(baseline)  # scored and fine-tuned from; holds the accepted weights
    # the loop's one graph and coupling: the baseline's structure, the current weights (scores read them)
    coupling = Coupling(current)
    means = layer_means(coupling)
    base_cost = model_cost(coupling.graph, input_size)
    oracle = CostOracle(coupling, input_size, base_cost, settings.profile, latency_size)
    mac_units = mac_per_unit(coupling, base_cost)
    name = baseline.name
    full = PruningPlan.keep_all(coupling, name)
    state = load_state(workdir) if resume else None
    if state is None:
        state = LoopState(settings.policy.start(), dict(full.keep), quality=dict(baseline_quality))
        state = _save_state(workdir, state, None)
    else:
        _check_resumed(workdir, state, full)
        if state.weights:
            _load_accepted(current, workdir, state.weights)
    policy = settings.policy
    finetune = Finetuner(current, settings.finetune, strategy)  # one wrapped, compiled copy for every iteration
    coarse = settings.strategy == "coarse"
    search = CoarseSearch(current, coupling, oracle, base_cost, train_pool, settings.finetune.batch_size,
                          settings.finetune.patch, settings.granularity, settings.candidates, settings.depth_floor,
                          settings.widths) if coarse else None
    try:
        kernels = kernels_from_json(coupling, state.kernels)
    except ValueError as exc:
        raise _resume_error(workdir, str(exc)) from None
    while not policy.done(state.level):
        started = time.perf_counter()
        level = policy.propose(state.level)
        rows, new_kernels, extra = None, kernels, {}
        with times.phase("loop.importance"):
            if coarse:  # the least damaging of random masks, scored on a training batch
                best, losses, chosen = search.propose(level, state.keep, kernels,
                                                      seed=settings.finetune.seed + state.level.iteration + 1)
                threshold, keep, new_kernels = None, best.keep, best.kernels
                extra = {"candidate_losses": losses, "chosen": chosen}
            else:
                if settings.importance == "taylor":  # measured on the accepted weights, reproducibly per iteration
                    rows = taylor_importance(current, coupling, train_pool, settings.finetune.batch_size,
                                             settings.finetune.patch,
                                         seed=settings.finetune.seed + state.level.iteration + 1)
                elif settings.importance == "qr":  # pivoted QR of the current feature maps (edgeprune.prune.qr)
                    rows = qr_importance(current, coupling, train_pool, settings.finetune.batch_size,
                                         settings.finetune.patch,
                                         seed=settings.finetune.seed + state.level.iteration + 1,
                                         sample_seed=settings.finetune.seed)
                threshold, keep, _ = threshold_for_level(coupling, settings, level, state.keep, means, mac_units,
                                                         oracle, rows, step=state.level.step)
        executed = exploitable_keep(coupling, keep, new_kernels)
        mac = sparse_mac(coupling, oracle, search.costs, keep, new_kernels) if coarse else oracle.mac_ratio(keep)
        latency = oracle.latency_ratio(executed) if settings.profile is not None else None
        record = {"iteration": state.level.iteration + 1, "level": level, "threshold": threshold,
                  "step": state.level.step, "mac": mac, **({"latency": latency} if latency is not None else {}),
                  "kept_units": sum(map(len, keep.values())), "finetune_steps": 0}
        if coarse:
            record.update({"executed_mac": oracle.mac_ratio(executed), "search": extra,
                           "pruned_kernels": pruned_kernel_fraction(new_kernels)})
        if keep == state.keep and _same_kernels(new_kernels, kernels):  # nothing new to prune
            ok, quality, tuned = True, state.quality, None
            record["note"] = "no unit below this threshold" if not coarse else "no mask prunes more at this level"
        else:
            plan = PruningPlan(name, full.fingerprint, full.sizes, keep)
            masks = CoarseMasks(coupling, plan, new_kernels) if coarse else ChannelMasks(coupling, plan)
            with times.phase("loop.finetune"):
                tuned, _ = finetune(train_pool, masks, seed=settings.finetune.seed + record["iteration"],
                                    verbose=verbose)
            with times.phase("loop.validate"):
                quality = {k: v for k, v in validate(tuned, val).items() if k in ("psnr", "ssim")}
            ok = settings.tolerance.holds(quality, baseline_quality)
            record["finetune_steps"] = settings.finetune.steps
            if ok and settings.gate == "control":  # the same budget without pruning: pruning must not cost more
                steps = state.lineage_steps + settings.finetune.steps
                with times.phase("loop.control"):
                    reference = control(steps)
                record["control"] = {"steps": steps, "psnr": reference["psnr"], "ssim": reference["ssim"]}
                ok = settings.tolerance.holds(quality, reference)
        target_met = ok and settings.target_met(mac, latency)
        record.update({"psnr": quality["psnr"], "ssim": quality["ssim"], "accepted": ok,
                       "seconds": round(time.perf_counter() - started, 1)})
        spent = state.spent_steps + record["finetune_steps"]
        new_level = policy.update(state.level, ok, target_met)
        if ok:
            if tuned is not None:
                current.set_weights(tuned.get_weights())
            kernels = new_kernels
            state = replace(state, level=new_level, keep=keep, quality=quality, mac=mac, latency=latency,
                            iterations=[*state.iterations, record], spent_steps=spent,
                            lineage_steps=state.lineage_steps + record["finetune_steps"],
                            kernels=kernels_to_json(kernels))
            with times.phase("loop.checkpoint"):
                state = _save_state(workdir, state, current if tuned is not None else None)
        else:
            state = replace(state, level=new_level, iterations=[*state.iterations, record],
                            spent_steps=spent)
            with times.phase("loop.checkpoint"):
                state = _save_state(workdir, state, None)
        if progress:
            progress(record)
    final = PruningPlan(name, full.fingerprint, full.sizes, exploitable_keep(coupling, dict(state.keep), kernels))
    return LoopResult(current, final, state, coupling, kernels)


def _same_kernels(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.keys() == b.keys() and all(np.array_equal(a[n], b[n]) for n in a)
