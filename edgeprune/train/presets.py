"""Named presets of data sizes and training budgets per task (``--preset quick|full``).

``quick`` fits a 2-core CPU in minutes and is what the README's main command and CI-sized runs use; ``full`` is the
papers' scale (DIV2K-size patches, long schedules) for a machine with accelerators.
"""

from edgeprune.errors import InvalidArgumentError

# the prune loop: fine-tuning budget per iteration, its learning rate (the baseline schedule's last rate, lr/4),
# and the steps of the level (the fraction of the baseline's MAC to remove) that sets the adaptive threshold
LOOP_QUICK = {"finetune_steps": 100, "finetune_lr": 1.25e-4, "initial_step": 0.1, "min_step": 0.025, "grow": 1.0,
              "max_iterations": 6}
LOOP_FULL = {"finetune_steps": 5000, "finetune_lr": 5e-5, "initial_step": 0.05, "min_step": 0.005, "grow": 1.0,
             "max_iterations": 40}
# the paper's loop: all four options, units ranked by normalised filter magnitude (a --method/--importance default)
PAPER_LOOP = {"method": "D", "importance": "magnitude"}

PRESETS = {
    "quick": {
        # measured: 600 steps at 5e-4 beat bicubic on the held-out photos (30.21 vs 29.67 dB); 300 at 2e-4 did not
        "edsr": {"train_images": 48, "train_size": 96, "val_side": 128, "patch": 24, "batch_size": 16,
                 "steps": 600, "learning_rate": 5e-4, **LOOP_QUICK, **PAPER_LOOP},
        # measured on the 8 held-out photos (256x256, as raw), 900 steps at 1e-3, one fixed sensor at ratio 100 and
        # shot noise 1e-4: 23.95 dB / 0.675, and 100 more steps at 2.5e-4 add +0.06 dB whatever the seed (at shot
        # 1e-3: 20.49 / 0.457, and 100 more steps land 0 to 0.49 dB lower, too noisy for a 0.05 dB gate).
        # Gradients clipped to a global norm of 0.5 (typical norms: 0.47 at initialisation, 0.08-0.18 after 900
        # steps): one of four unclipped runs spiked to a loss of 4.2 in its third epoch and ended at 15.02 dB.
        # Patches of 128 packed pixels at batch 2, not 64 at batch 8: trained on 64-pixel patches the U-Net's 4x4
        # bottleneck only ever sees zero-padded borders, and on larger images its output falls apart (5.7 dB).
        # The loop ranks SID's units by measured Taylor importance under method B, not by magnitude under D: on
        # this baseline, masking down to MAC 0.8 before any fine-tuning gives 9.19 dB by magnitude (D), 12.31 by
        # magnitude (B), 19.15 by Taylor (D) and 22.93 by Taylor (B); after 100 fine-tuning steps Taylor (D) is at
        # 23.65 dB and Taylor (B) at 23.97 (BENCHMARKS.md, "SID, session 4"). D equals C on SID (no residual groups).
        "sid": {"train_images": 24, "train_size": 256, "val_side": 256, "patch": 128, "batch_size": 2,
                "steps": 900, "learning_rate": 1e-3, "ratios": [100.0], "sensor": "fixed",
                "clipnorm": 0.5, **LOOP_QUICK, "finetune_lr": 2.5e-4, "method": "B", "importance": "taylor"},
    },
    "full": {
        "edsr": {"train_images": 800, "train_size": 192, "val_side": 512, "patch": 48, "batch_size": 16,
                 "steps": 300000, "learning_rate": 1e-4, **LOOP_FULL, **PAPER_LOOP},
        "sid": {"train_images": 400, "train_size": 1024, "val_side": 512, "patch": 256, "batch_size": 1,
                "steps": 400000, "learning_rate": 1e-4, "ratios": [100.0, 250.0, 300.0], "sensor": "random",
                **LOOP_FULL, **PAPER_LOOP},
    },
}


def preset(name: str, task: str) -> dict:
    if name not in PRESETS:
        raise InvalidArgumentError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    return dict(PRESETS[name][task])
