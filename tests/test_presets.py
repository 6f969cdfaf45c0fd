import pytest

from edgeprune.errors import InvalidArgumentError
from edgeprune.presets import PRESETS, preset


def test_presets_cover_both_tasks_and_return_copies():
    for name in PRESETS:
        for task in ("edsr", "sid"):
            settings = preset(name, task)
            assert {"steps", "batch_size", "patch", "learning_rate"} <= set(settings)
    settings = preset("quick", "edsr")
    settings["steps"] = 1
    assert preset("quick", "edsr")["steps"] == 600


def test_unknown_preset():
    with pytest.raises(InvalidArgumentError, match="unknown preset 'fast': use one of quick, full"):
        preset("fast", "edsr")
