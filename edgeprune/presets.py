"""Named presets of data sizes and training budgets per task (``--preset quick|full``).

``quick`` fits a 2-core CPU in minutes and is what the README's main command and CI-sized runs use; ``full`` is the
papers' scale (DIV2K-size patches, long schedules) for a machine with accelerators.
"""

from edgeprune.errors import InvalidArgumentError

PRESETS = {
    "quick": {
        # measured: 600 steps at 5e-4 beat bicubic on the held-out photos (30.21 vs 29.67 dB); 300 at 2e-4 did not
        "edsr": {"train_images": 48, "train_size": 96, "val_side": 128, "patch": 24, "batch_size": 16,
                 "steps": 600, "learning_rate": 5e-4},
        "sid": {"train_images": 24, "train_size": 256, "val_side": 128, "patch": 64, "batch_size": 8,
                "steps": 300, "learning_rate": 2e-4},
    },
    "full": {
        "edsr": {"train_images": 800, "train_size": 192, "val_side": 512, "patch": 48, "batch_size": 16,
                 "steps": 300000, "learning_rate": 1e-4},
        "sid": {"train_images": 400, "train_size": 1024, "val_side": 512, "patch": 256, "batch_size": 1,
                "steps": 400000, "learning_rate": 1e-4},
    },
}


def preset(name: str, task: str) -> dict:
    if name not in PRESETS:
        raise InvalidArgumentError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    return dict(PRESETS[name][task])
