"""What ``edgeprune prune`` is asked to do: :class:`PruneOptions`, every option of the command in one frozen object,
checked together when it is made (so the CLI, :mod:`edgeprune.commands.prune` and :mod:`edgeprune.prune.pipeline`
pass one object down instead of thirty parameters, and each rule about how options combine lives here once).

The choices (methods, importance criteria, strategies, granularities, gates) are read from their registries:
:mod:`edgeprune.prune.criteria`, :mod:`edgeprune.prune.proposers` and :mod:`edgeprune.prune.control`. This module
imports nothing heavy, so the command line can build its choices from it without loading TensorFlow.
"""

from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType

from edgeprune.core.checks import finite_at_least, fraction, integer_at_least
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.prune.control import GATES
from edgeprune.prune.criteria import IMPORTANCE, METHODS
from edgeprune.prune.proposers import CANDIDATES, GRANULARITIES, STRATEGIES

HOST, NONE = "host", "none"
# --baseline for a reference --model: the package's trained weights (the default where it ships some), or one
# trained here with the preset; anything else is a .keras file
SHIPPED, TRAIN = "shipped", "train"
DEPLOY_DTYPES = ("fp32", "fp16", "int8")  # as edgeprune.graph.latency_profile.DTYPES (kept light: no import)  # --latency-profile: this machine's calibrated profile, or none (any width, MAC only)
DEFAULT_TARGET_MAC = 0.8  # when neither --target-mac nor --target-latency is given
# --finetune-steps, --max-iterations and --seed replace the preset's settings of these names
PRESET_OPTIONS = ("finetune_steps", "max_iterations", "seed")


def _choice(option: str, value, allowed) -> None:
    if value is not None and value not in allowed:
        raise InvalidArgumentError(f"{option} must be one of {', '.join(allowed)}, got {value!r}")


@dataclass(frozen=True)
class PruneOptions:
    """The options of one ``edgeprune prune`` run (see ``edgeprune prune --help``); None means the default the
    help states. ``overrides`` replaces preset settings (``finetune_steps``, ``max_iterations``, ``seed``, and in
    the library any other field of :class:`~edgeprune.train.presets.Preset`)."""

    model: object
    out_dir: Path
    baseline: str | None = None
    data: str | None = None
    method: str | None = None
    importance: str | None = None
    strategy: str = "threshold"
    granularity: str | None = None
    candidates: int | None = None
    target_mac: float | None = None
    target_latency: float | None = None
    latency_profile: str | None = None  # PROFILE.json, "host" or "none"; None: host for the loop
    deploy_dtype: str | None = None  # fp32, fp16 or int8: what the model is deployed as; None: the profile's
    num_threads: int | None = None
    channel_multiple: int = 1
    tolerance_psnr: float = 0.05
    tolerance_ssim: float = 0.002
    gate: str = "baseline"
    preset_name: str = "quick"
    overrides: dict = field(default_factory=dict)
    recover_steps: int | None = None
    distill: float | None = None  # fine-tune against the baseline's output too, at this weight
    resume: bool = False
    one_shot: bool = False
    channel_ratio: float | None = None
    input_size: tuple | None = None
    as_json: bool = False

    def __post_init__(self):
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides or {})))
        _choice("--method", self.method, METHODS)
        _choice("--importance", self.importance, IMPORTANCE)
        _choice("--strategy", self.strategy, STRATEGIES)
        _choice("--granularity", self.granularity, GRANULARITIES)
        _choice("--gate", self.gate, GATES)
        _choice("--deploy-dtype", self.deploy_dtype, DEPLOY_DTYPES)
        if self.deploy_dtype == "fp16" and self.profile_spec == HOST:
            raise InvalidArgumentError("--deploy-dtype fp16 needs a device's fp16 profile (--latency-profile "
                                       "PROFILE.json from 'edgeprune calibrate --device --quantize fp16'): this host's "
                                       "XNNPACK runs fp16 models in fp32")
        if self.target_mac is not None:
            fraction("target MAC", self.target_mac, "a fraction of the baseline")
        if self.target_latency is not None:
            fraction("target latency", self.target_latency, "a fraction of the baseline")
        if self.num_threads is not None:
            integer_at_least("--num-threads", self.num_threads)
        integer_at_least("channel multiple", self.channel_multiple)
        if self.candidates is not None:
            integer_at_least("--candidates", self.candidates)
        if self.recover_steps is not None:
            integer_at_least("--recover-steps", self.recover_steps, 0)
        if self.distill is not None:
            finite_at_least("the --distill weight", self.distill, 0.0, "how much the L1 distance to the unpruned "
                            "baseline's output weighs beside the ground truth's loss")
        if self.latency_profile not in (None, NONE) and self.channel_multiple != 1:
            raise InvalidArgumentError("--channel-multiple and --latency-profile both choose the widths: give one")
        if self.strategy != "coarse" and (self.granularity is not None or self.candidates is not None):
            raise InvalidArgumentError("--granularity and --candidates set the coarse search: add --strategy coarse "
                                       "or drop them")
        if self.one_shot:
            self._check_one_shot()
        else:
            self._check_loop()

    def _check_one_shot(self) -> None:
        if self.strategy != "threshold":
            raise InvalidArgumentError("--one-shot prunes by L1 filter norm without data: drop --strategy, or drop "
                                       "--one-shot (--strategy qr is the data-driven one-shot)")
        if self.channel_ratio is None:
            raise InvalidArgumentError("--one-shot needs --channel-ratio R with 0 < R < 1")
        if self.method or self.importance:
            raise InvalidArgumentError("--method and --importance set the iterative loop: --one-shot ranks by L1 "
                                       "filter norm; drop them or drop --one-shot")
        if self.target_latency is not None or self.target_mac is not None:
            raise InvalidArgumentError("--target-mac and --target-latency stop the iterative loop: --one-shot "
                                       "removes --channel-ratio of every group")
        if self.gate != "baseline":
            raise InvalidArgumentError("--gate judges the iterative loop's steps: --one-shot has no gate; drop one")
        if self.overrides.get("seed") is not None:
            raise InvalidArgumentError("--one-shot ranks by L1 filter norm and draws nothing: drop --seed")
        if self.recover_steps is not None:
            raise InvalidArgumentError("--recover-steps fine-tunes the QR strategy's reconstruction: --one-shot "
                                       "does not train; drop one")
        if self.distill is not None:
            raise InvalidArgumentError("--distill sets what fine-tuning learns from: --one-shot does not train; "
                                       "drop one")

    def _check_loop(self) -> None:
        if self.channel_ratio is not None or self.input_size is not None:
            raise InvalidArgumentError("--channel-ratio and --input-size go with --one-shot")
        if self.target_latency is not None and (self.latency_profile == NONE or self.channel_multiple != 1):
            raise InvalidArgumentError("--target-latency needs a latency profile to predict latency with: give "
                                       "--latency-profile (or leave the default, the host's) instead of "
                                       "--channel-multiple")
        if self.strategy != "threshold" and self.importance is not None:
            raise InvalidArgumentError(f"--importance ranks channels for the threshold strategy; --strategy "
                                       f"{self.strategy} chooses them itself (for pivoted QR inside the loop use "
                                       "--importance qr)")
        if self.strategy == "qr" and self.gate != "baseline":
            raise InvalidArgumentError("--gate control judges the loop's iterations; --strategy qr prunes once "
                                       "without a gate (its control is the baseline itself): drop --gate")
        if self.recover_steps and self.strategy != "qr":
            raise InvalidArgumentError("--recover-steps fine-tunes the QR strategy's reconstruction: add --strategy "
                                       "qr, or use --finetune-steps for the loop's iterations")
        if self.distill is not None and self.strategy == "qr" and not self.recover_steps:
            raise InvalidArgumentError("--distill sets what fine-tuning learns from: --strategy qr fine-tunes only "
                                       "with --recover-steps N; add it, or drop --distill")
        if self.strategy == "qr" and self.resume:
            raise InvalidArgumentError("--strategy qr runs once without a loop: there is nothing to --resume; run it "
                                       "again without --resume")

    @classmethod
    def from_cli(cls, params: dict) -> "PruneOptions":
        """The options of the command line's parameters: ``--finetune-steps``, ``--max-iterations`` and ``--seed``
        become preset overrides."""
        params = dict(params)
        overrides = {k: params.pop(k) for k in PRESET_OPTIONS if params.get(k) is not None}
        for k in PRESET_OPTIONS:
            params.pop(k, None)
        known = {f.name for f in fields(cls)}
        unknown = set(params) - known
        if unknown:
            raise InvalidArgumentError(f"unknown prune option(s) {sorted(unknown)}")
        return cls(**params, overrides=overrides)

    # -- what the pipeline reads --

    @property
    def loop_target_mac(self) -> float | None:
        """The loop's MAC target: as given, else 0.8 unless a latency target is given."""
        if self.target_mac is None and self.target_latency is None:
            return DEFAULT_TARGET_MAC
        return self.target_mac

    @property
    def profile_spec(self) -> str:
        """Where the widths come from: a profile file, ``host`` (the default for the loop) or ``none``."""
        if self.latency_profile is not None:
            return self.latency_profile
        return NONE if self.one_shot or self.channel_multiple != 1 else HOST

    @property
    def loop_strategy(self) -> str:
        """The proposer of the loop (the QR strategy's one-shot reconstruction runs no loop: threshold)."""
        return self.strategy if self.strategy in ("threshold", "coarse") else "threshold"

    @property
    def recover(self) -> int:
        return self.recover_steps or 0

    @property
    def search(self) -> dict:
        """The coarse search's settings, defaults filled in."""
        return {"granularity": self.granularity or "both",
                "candidates": CANDIDATES if self.candidates is None else self.candidates}
