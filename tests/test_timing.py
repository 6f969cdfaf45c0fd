"""Phase times add up per name, nest, count entries, and survive an exception in the timed block."""

import pytest

from edgeprune.core.timing import PhaseTimes


def test_phases_accumulate_count_nest_and_keep_their_order():
    now = [0.0]
    times = PhaseTimes(clock=lambda: now[0])
    with times.phase("baseline"):
        now[0] += 5
    for _ in range(2):
        with times.phase("loop"):
            with times.phase("loop.finetune"):
                now[0] += 3
            now[0] += 1
    with pytest.raises(RuntimeError):
        with times.phase("control"):
            now[0] += 2
            raise RuntimeError("killed")
    got = times.as_dict()
    assert list(got["phases"]) == ["baseline", "loop.finetune", "loop", "control"]
    assert got["phases"]["loop"] == {"seconds": 8.0, "count": 2}
    assert got["phases"]["loop.finetune"] == {"seconds": 6.0, "count": 2}
    assert got["phases"]["control"]["seconds"] == 2.0 and got["total_seconds"] == 15.0
    assert times.seconds("baseline") == 5.0 and times.seconds("missing") == 0.0
