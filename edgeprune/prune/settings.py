"""What a prune run is configured with: the engine's :class:`LoopSettings` and its public face :class:`PruneConfig`.

:class:`PruneConfig` is what a user writes (``edgeprune.PruneConfig(target_mac=0.5, finetune_steps=200)``): one
frozen, flat, self-validating object whose every field names one choice of the paper's loop. It checks every value
when it is made and builds the engine's :class:`LoopSettings` (with its level policy, width rule and fine-tuning
budget) once. The CLI builds a :class:`LoopSettings` from a preset directly (:meth:`LoopSettings.from_preset`).
"""

from dataclasses import asdict, dataclass, field

from edgeprune.core.checks import fraction, integer_at_least
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.prune.coarse import check_search
from edgeprune.prune.control import GATES
from edgeprune.prune.criteria import METHOD_OPTIONS, METHODS, importance
from edgeprune.prune.level import LevelPolicy
from edgeprune.prune.proposers import CANDIDATES, PROPOSERS
from edgeprune.prune.widths import WidthRule
from edgeprune.train.distill import check_weight
from edgeprune.train.fit import TrainConfig
from edgeprune.train.presets import Preset



def check_target(target_mac, what: str = "target MAC") -> float | None:
    """A target (a fraction of the baseline's MAC or latency) as a float strictly inside (0, 1), or None (no
    target)."""
    return None if target_mac is None else fraction(what, target_mac, "a fraction of the baseline")


def profile_identity(profile) -> dict | None:
    """What a run record and a report say about the latency profile the widths were chosen with."""
    if profile is None:
        return None
    return {"target": profile.target, "runner": profile.runner, "num_threads": profile.num_threads,
            "channel_tile": profile.channel_tile, "small_channel_tile": profile.small_channel_tile,
            "dtype": getattr(profile, "dtype", "fp32")}


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
    distill: float | None = None  # fine-tune against the baseline's output too, at this weight (train.distill)

    @property
    def measure(self) -> str:
        """What the level is a fraction of: the predicted latency when pruning for a device, else the MAC (for the
        coarse strategy always the MAC, counted with pruned kernels skipped)."""
        return "latency" if self.profile is not None and self.strategy != "coarse" else "mac"

    def __post_init__(self):
        if self.strategy not in PROPOSERS:
            raise InvalidArgumentError(f"the prune loop runs the strategies {', '.join(PROPOSERS)}, not "
                                       f"{self.strategy!r}")
        check_search(self.granularity, self.candidates)
        if self.gate not in GATES:
            raise InvalidArgumentError(f"--gate must be one of {', '.join(GATES)}, got {self.gate!r}")
        if self.strategy == "coarse" and self.target_latency is not None:
            raise InvalidArgumentError("--target-latency needs a strategy whose widths the latency model can price: "
                                       "coarse kernel masks run dense; use --target-mac with --strategy coarse")
        if self.method not in METHODS:
            raise InvalidArgumentError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        importance(self.importance)  # a registered criterion
        check_target(self.target_mac)
        check_target(self.target_latency, "target latency")
        if self.target_latency is not None and self.profile is None:
            raise InvalidArgumentError("--target-latency needs a latency profile to predict latency with: give "
                                       "--latency-profile (or leave the default, the host's)")
        if not 0 < self.depth_floor <= 1:
            raise InvalidArgumentError(f"depth floor must be in (0, 1], got {self.depth_floor!r}")
        self.finetune.validate()
        if self.distill is not None:
            check_weight(self.distill, "the --distill weight")

    @classmethod
    def from_preset(cls, preset: Preset, target_mac: float | None, tolerance: Tolerance, method: str | None = None,
                    importance: str | None = None, widths: WidthRule | None = None, profile=None,
                    target_latency: float | None = None, strategy: str = "threshold", granularity: str = "both",
                    candidates: int = CANDIDATES, gate: str = "baseline",
                    distill: float | None = None) -> "LoopSettings":
        """The loop a preset describes; ``method`` and ``importance`` (None: the preset's) choose the ranking;
        ``widths``, ``profile`` and ``target_latency`` what it prunes for (None: any width, MAC only);
        ``strategy``, ``granularity`` and ``candidates`` how it proposes; ``gate`` what it is judged against;
        ``distill`` the weight of the baseline's output beside the ground truth in fine-tuning (None: not used)."""
        return cls(method=preset.method if method is None else method, target_mac=target_mac, tolerance=tolerance,
                   strategy=strategy, granularity=granularity, candidates=candidates, gate=gate, distill=distill,
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
                **({"distill": self.distill} if self.distill is not None else {}),
                **({"granularity": self.granularity, "candidates": self.candidates}
                   if self.strategy == "coarse" else {})}

    def target_met(self, mac: float, latency: float | None) -> bool:
        """Whether a state of this MAC and predicted latency ratio meets every target set (False with none)."""
        targets = [(self.target_mac, mac), (self.target_latency, latency)]
        given = [(t, v) for t, v in targets if t is not None]
        return bool(given) and all(v is not None and v <= t + 1e-12 for t, v in given)



@dataclass(frozen=True)
class PruneConfig:
    """How to prune, in one frozen object checked when it is made (every bad value is an
    :class:`~edgeprune.core.errors.InvalidArgumentError` that names the field and what is allowed).

    The paper's loop (Wang et al., ICIP 2019): every ``finetune_steps`` training steps the gate judges the last
    proposal and the pruner proposes the next *level* (a fraction of the baseline's MAC, or of its predicted latency
    with ``latency_profile``, to remove), growing by ``initial_step`` while quality holds and halving the step after a
    rollback, until ``target_mac`` / ``target_latency`` is met, the step falls under ``min_step`` or
    ``max_iterations`` proposals were judged.
    """

    method: str = "D"  # the paper's cumulative options: A, B (keep depth), C (per MAC), D (balanced)
    importance: str = "magnitude"  # a name in edgeprune.prune.criteria.IMPORTANCE
    strategy: str = "threshold"  # a name in edgeprune.prune.proposers.PROPOSERS
    target_mac: float | None = 0.8  # stop once the accepted MAC is at most this fraction of the baseline's
    target_latency: float | None = None  # the same for the predicted latency (needs latency_profile)
    latency_profile: object | None = None  # a LatencyProfile (edgeprune calibrate): widths its tiles compute
    channel_multiple: int = 1  # or: kept widths in multiples of this (8 for ARM NEON fp32)
    psnr_tolerance: float = 0.05  # largest accepted drop below the baseline, dB
    ssim_tolerance: float = 0.002
    finetune_steps: int = 100  # training steps between two decisions
    initial_step: float = 0.1
    min_step: float = 0.025
    max_iterations: int = 10
    depth_floor: float = 0.25  # options B-D: the fraction of every group always kept
    gate: str = "baseline"  # or "control": also within tolerance of the equal-budget control
    granularity: str = "both"  # coarse strategy: channel, kernel or both
    candidates: int = CANDIDATES  # coarse strategy: random masks compared per proposal
    seed: int = 0  # of every draw of the engine (importance batches, coarse masks)

    def __post_init__(self):
        from edgeprune.graph.latency_profile import LatencyProfile, check_pruning_profile

        if self.latency_profile is not None:
            if not isinstance(self.latency_profile, LatencyProfile):
                raise InvalidArgumentError("latency_profile must be a LatencyProfile (LatencyProfile.load(path) of a "
                                           f"file 'edgeprune calibrate' wrote), got {type(self.latency_profile).__name__}")
            check_pruning_profile(self.latency_profile, "latency_profile")
            if self.channel_multiple != 1:
                raise InvalidArgumentError("channel_multiple and latency_profile both choose the widths: give one")
        integer_at_least("finetune_steps", self.finetune_steps)
        integer_at_least("seed", self.seed, 0)
        self.loop_settings()  # checks everything else

    def loop_settings(self) -> "LoopSettings":
        """The engine's settings for this configuration."""
        widths = (WidthRule.from_profile(self.latency_profile) if self.latency_profile is not None
                  else WidthRule.of_multiple(self.channel_multiple))
        return LoopSettings(method=self.method, target_mac=self.target_mac,
                            tolerance=Tolerance(self.psnr_tolerance, self.ssim_tolerance),
                            finetune=TrainConfig(steps=self.finetune_steps, seed=self.seed),
                            policy=LevelPolicy(initial_step=self.initial_step, min_step=self.min_step,
                                               max_iterations=self.max_iterations),
                            depth_floor=self.depth_floor, importance=self.importance, widths=widths,
                            profile=self.latency_profile, target_latency=self.target_latency,
                            strategy=self.strategy, granularity=self.granularity, candidates=self.candidates,
                            gate=self.gate)
