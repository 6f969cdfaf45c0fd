import dataclasses
import json

import pytest

from edgeprune.core.errors import InvalidArgumentError
from edgeprune.prune.criteria import IMPORTANCE
from edgeprune.prune.importance import METHODS
from edgeprune.train.fit import TrainConfig
from edgeprune.train.presets import FINETUNE_SEED_STRIDE, PRESETS, Preset, preset


def test_presets_cover_both_tasks_and_cannot_be_changed():
    for name in PRESETS:
        for task in ("edsr", "sid"):
            settings = preset(name, task)
            assert {"steps", "batch_size", "patch", "learning_rate"} <= set(settings.to_dict())
    settings = preset("quick", "edsr")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.steps = 1
    settings.to_dict()["steps"] = 1
    assert preset("quick", "edsr").steps == 400 and preset("quick", "edsr").to_dict()["steps"] == 400


def test_unknown_preset():
    with pytest.raises(InvalidArgumentError, match="unknown preset 'fast': use one of quick, full"):
        preset("fast", "edsr")


def test_every_preset_names_a_method_and_an_importance():
    for name in PRESETS:
        for task in ("edsr", "sid"):
            settings = preset(name, task)
            assert settings.method in METHODS and settings.importance in IMPORTANCE
    # the paper's loop everywhere but SID's quick preset (measured: magnitudes of its briefly trained baseline
    # do not rank channels, see BENCHMARKS.md)
    assert (preset("quick", "sid").method, preset("quick", "sid").importance) == ("B", "taylor")
    assert {(preset(n, t).method, preset(n, t).importance) for n in PRESETS for t in ("edsr", "sid")
            if (n, t) != ("quick", "sid")} == {("D", "magnitude")}


def test_the_recorded_json_is_what_the_untyped_presets_recorded():
    """Reports, run records and the baseline cache key keep their JSON layout (the quick budgets:
    EDSR 400 steps, SID 600, 60 fine-tuning steps per iteration)."""
    assert json.dumps(preset("quick", "edsr").to_dict()) == json.dumps({
        "train_images": 48, "train_size": 96, "val_side": 128, "patch": 24, "batch_size": 16, "steps": 400,
        "learning_rate": 5e-4, "finetune_steps": 60, "finetune_lr": 1.25e-4, "initial_step": 0.1,
        "min_step": 0.025, "grow": 1.0, "max_iterations": 6, "method": "D", "importance": "magnitude"})
    assert json.dumps(preset("quick", "sid").to_dict()) == json.dumps({
        "train_images": 24, "train_size": 256, "val_side": 256, "patch": 128, "batch_size": 2, "steps": 600,
        "learning_rate": 1e-3, "ratios": [100.0], "sensor": "fixed", "clipnorm": 0.5, "finetune_steps": 60,
        "finetune_lr": 2.5e-4, "initial_step": 0.1, "min_step": 0.025, "grow": 1.0, "max_iterations": 6,
        "method": "B", "importance": "taylor"})
    assert json.dumps(preset("quick", "sid").baseline_dict()) == json.dumps({
        "train_images": 24, "train_size": 256, "patch": 128, "batch_size": 2, "steps": 600, "learning_rate": 1e-3,
        "ratios": [100.0], "sensor": "fixed", "clipnorm": 0.5})
    assert "clipnorm" not in preset("full", "sid").to_dict() and "ratios" not in preset("full", "edsr").to_dict()


def test_train_configs_and_overrides():
    sid = preset("quick", "sid")
    assert sid.train_config() == TrainConfig(steps=600, batch_size=2, patch=128, learning_rate=1e-3, clipnorm=0.5)
    assert sid.finetune_config() == TrainConfig(steps=60, batch_size=2, patch=128, learning_rate=2.5e-4,
                                                clipnorm=0.5)
    tuned = sid.with_overrides({"finetune_steps": 3, "max_iterations": None})
    assert isinstance(tuned, Preset) and tuned.finetune_steps == 3 and tuned.max_iterations == 6
    assert list(tuned.to_dict()) == list(sid.to_dict())
    with pytest.raises(InvalidArgumentError, match=r"unknown setting\(s\) \['clipnorm'\]: known are"):
        preset("quick", "edsr").with_overrides({"clipnorm": 1.0})


def test_a_seed_is_recorded_only_when_given_and_spaces_the_fine_tuning_streams():
    edsr = preset("quick", "edsr")
    assert edsr.seed is None and "seed" not in edsr.to_dict() and "seed" not in edsr.baseline_dict()
    assert edsr.train_config().seed == 0 and edsr.finetune_config().seed == 0  # what every run before had
    seeded = edsr.with_overrides({"seed": 2, "finetune_steps": None})
    assert seeded.to_dict()["seed"] == 2 and seeded.baseline_dict()["seed"] == 2  # another baseline's cache key
    assert list(seeded.to_dict())[:-1] == list(edsr.to_dict())
    assert seeded.train_config().seed == 2
    # the loop draws from the fine-tuning seed + iteration and the control from + 10000: seeds never overlap
    assert seeded.finetune_config().seed == 2 * FINETUNE_SEED_STRIDE > 10_000 + edsr.max_iterations
    assert seeded.with_overrides({"seed": 3}).seed == 3
