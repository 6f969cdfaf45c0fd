"""Named presets of data sizes and training budgets per task (``--preset quick|full``), as typed configuration.

``quick`` fits a 2-core CPU in minutes and is what the README's main command and CI-sized runs use; ``full`` is the
papers' scale (DIV2K-size patches, long schedules) for a machine with accelerators. The measurements behind the
quick values are in BENCHMARKS.md, "Figures behind the library's defaults".

A :class:`Preset` is the one place a :class:`~edgeprune.train.fit.TrainConfig` is made from a preset (the
baseline's, :meth:`Preset.train_config`, and one loop iteration's, :meth:`Preset.finetune_config`). Its
:meth:`Preset.to_dict` is the JSON that reports, run records and the baseline cache key have always recorded.
"""

from dataclasses import dataclass, fields, replace

from edgeprune.core.checks import integer_at_least
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.train.fit import TrainConfig

# What a trained baseline depends on, in the order the baseline cache key records them (DIR/baseline.json)
BASELINE_FIELDS = ("train_images", "train_size", "patch", "batch_size", "steps", "learning_rate", "ratios",
                   "sensor", "clipnorm", "seed")
FINETUNE_SEED_STRIDE = 100_000  # the fine-tuning seed of Preset.seed s is s * this (seed 0: 0, as always)
_OPTIONAL = ("ratios", "sensor", "clipnorm", "seed")  # left out of the JSON when unset (SID's only, and the seed)


@dataclass(frozen=True)
class Preset:
    """Data sizes, the baseline's training budget and the prune loop's budget for one task."""

    # the data: training images (count, side), validation side, input-side training patch
    train_images: int
    train_size: int
    val_side: int
    patch: int
    # the baseline's training
    batch_size: int
    steps: int
    learning_rate: float
    ratios: tuple[float, ...] | None = None  # SID: exposure ratios of the built-in training data
    sensor: str | None = None  # SID: "fixed" (one camera, one noise level) or "random"
    clipnorm: float | None = None  # global gradient norm clip (baseline and fine-tuning); None: no clipping
    # the prune loop: fine-tuning budget per iteration and its learning rate, the MAC level's steps
    finetune_steps: int = 100
    finetune_lr: float = 1.25e-4
    initial_step: float = 0.1
    min_step: float = 0.025
    grow: float = 1.0
    max_iterations: int = 6
    # the loop's default ranking (--method, --importance)
    method: str = "D"
    importance: str = "magnitude"
    # the seed of every random draw in training (initial weights, patches) and in the loop (fine-tuning patches,
    # the control's, coarse masks, QR's sample batches); None: 0, the presets' own (--seed)
    seed: int | None = None

    def to_dict(self) -> dict:
        """The settings as the JSON records them (SID-only fields omitted when unset)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _OPTIONAL and value is None:
                continue
            out[f.name] = list(value) if f.name == "ratios" else value
        return out

    def with_overrides(self, overrides: dict | None) -> "Preset":
        """This preset with ``overrides`` (setting -> value; None keeps the preset's) applied."""
        known = [*self.to_dict(), *(["seed"] if self.seed is None else [])]
        unknown = set(overrides or {}) - set(known)
        if unknown:
            raise InvalidArgumentError(f"unknown setting(s) {sorted(unknown)}: known are {sorted(known)}")
        changes = {k: v for k, v in (overrides or {}).items() if v is not None}
        if "seed" in changes:  # seed 0 is the presets' own: recorded as no seed, so its JSON is every earlier run's
            changes["seed"] = integer_at_least("--seed", changes["seed"], 0) or None
        return replace(self, **changes)

    def train_config(self) -> TrainConfig:
        """The baseline's training."""
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, patch=self.patch,
                           learning_rate=self.learning_rate, clipnorm=self.clipnorm, seed=self.seed or 0)

    def finetune_config(self) -> TrainConfig:
        """One iteration's fine-tuning in the prune loop (and, with more steps, the control's). The loop draws
        iteration k's patches from its seed + k and the control's from its seed + 10000; two values of ``seed``
        give fine-tuning seeds :data:`FINETUNE_SEED_STRIDE` apart, so no two runs share a stream."""
        return TrainConfig(steps=self.finetune_steps, batch_size=self.batch_size, patch=self.patch,
                           learning_rate=self.finetune_lr, clipnorm=self.clipnorm,
                           seed=FINETUNE_SEED_STRIDE * (self.seed or 0))

    def baseline_dict(self) -> dict:
        """The settings a trained baseline depends on (the baseline cache key's ``train``)."""
        settings = self.to_dict()
        return {k: settings[k] for k in BASELINE_FIELDS if k in settings}


# the prune loop: fine-tuning budget per iteration, its learning rate (the baseline schedule's last rate, lr/4),
# and the steps of the level (the fraction of the baseline's MAC to remove) that sets the adaptive threshold
LOOP_QUICK = {"finetune_steps": 60, "finetune_lr": 1.25e-4, "initial_step": 0.1, "min_step": 0.025, "grow": 1.0,
              "max_iterations": 6}
LOOP_FULL = {"finetune_steps": 5000, "finetune_lr": 5e-5, "initial_step": 0.05, "min_step": 0.005, "grow": 1.0,
             "max_iterations": 40}
# the paper's loop: all four options, units ranked by normalised filter magnitude (a --method/--importance default)
PAPER_LOOP = {"method": "D", "importance": "magnitude"}

PRESETS = {
    "quick": {
        # 400 steps at 5e-4: the main command's budget on a 2-core AVX2 host (600 steps measured 0.54 dB above bicubic;
        # 300 measured 29.04 dB, 0.6 below bicubic, and saved no wall time on a noisy evening)
        "edsr": Preset(train_images=48, train_size=96, val_side=128, patch=24, batch_size=16, steps=400,
                       learning_rate=5e-4, **LOOP_QUICK, **PAPER_LOOP),
        # 600 steps (500 measured worse in all: the weaker baseline needed six loop iterations and a longer control);
        # one fixed sensor at ratio 100 (a gate of 0.05 dB needs a steady validation set), clipped gradients,
        # 128-pixel packed patches at batch 2, the loop ranking by Taylor importance under method B
        "sid": Preset(train_images=24, train_size=256, val_side=256, patch=128, batch_size=2, steps=600,
                      learning_rate=1e-3, ratios=(100.0,), sensor="fixed", clipnorm=0.5,
                      **{**LOOP_QUICK, "finetune_lr": 2.5e-4}, method="B", importance="taylor"),
    },
    "full": {
        "edsr": Preset(train_images=800, train_size=192, val_side=512, patch=48, batch_size=16, steps=300000,
                       learning_rate=1e-4, **LOOP_FULL, **PAPER_LOOP),
        "sid": Preset(train_images=400, train_size=1024, val_side=512, patch=256, batch_size=1, steps=400000,
                      learning_rate=1e-4, ratios=(100.0, 250.0, 300.0), sensor="random", **LOOP_FULL,
                      **PAPER_LOOP),
    },
}


def preset(name: str, task: str) -> Preset:
    if name not in PRESETS:
        raise InvalidArgumentError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[name][task]
