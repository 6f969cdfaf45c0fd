"""Named presets of data sizes and training budgets per task (``--preset quick|full``).

``quick`` fits a 2-core CPU in minutes and is what the README's main command and CI-sized runs use; ``full`` is the
papers' scale (DIV2K-size patches, long schedules) for a machine with accelerators.
"""

from edgeprune.errors import InvalidArgumentError

# the prune loop: fine-tuning budget per iteration, its learning rate, and the steps of the level (the fraction of
# the baseline's MAC to remove) that sets the adaptive threshold
LOOP_QUICK = {"finetune_steps": 100, "finetune_lr": 1.25e-4, "initial_step": 0.1, "min_step": 0.025, "grow": 1.0,
              "max_iterations": 6}
LOOP_FULL = {"finetune_steps": 5000, "finetune_lr": 5e-5, "initial_step": 0.05, "min_step": 0.005, "grow": 1.0,
             "max_iterations": 40}

PRESETS = {
    "quick": {
        # measured: 600 steps at 5e-4 beat bicubic on the held-out photos (30.21 vs 29.67 dB); 300 at 2e-4 did not
        "edsr": {"train_images": 48, "train_size": 96, "val_side": 128, "patch": 24, "batch_size": 16,
                 "steps": 600, "learning_rate": 5e-4, **LOOP_QUICK},
        # measured on the 8 held-out photos as raw: 300 steps at 1e-3 give 15.76 dB / 0.419, at 2e-4 15.24 / 0.354
        "sid": {"train_images": 24, "train_size": 256, "val_side": 128, "patch": 64, "batch_size": 8,
                "steps": 300, "learning_rate": 1e-3, **LOOP_QUICK},
    },
    "full": {
        "edsr": {"train_images": 800, "train_size": 192, "val_side": 512, "patch": 48, "batch_size": 16,
                 "steps": 300000, "learning_rate": 1e-4, **LOOP_FULL},
        "sid": {"train_images": 400, "train_size": 1024, "val_side": 512, "patch": 256, "batch_size": 1,
                "steps": 400000, "learning_rate": 1e-4, **LOOP_FULL},
    },
}


def preset(name: str, task: str) -> dict:
    if name not in PRESETS:
        raise InvalidArgumentError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    return dict(PRESETS[name][task])
