"""Width rules: which kept widths a device computes without waste, and scores that remove whole tiles."""

import numpy as np
import pytest

from edgeprune.core.errors import InvalidArgumentError
from edgeprune.graph.coupling import Coupling
from edgeprune.graph.latency_profile import LatencyProfile
from edgeprune.prune.widths import WidthRule, blocks, nearest_allowed, smallest_allowed_at_least, width_rule
from keras_models import build_edsr


def _profile(small, main):
    return LatencyProfile("device", "benchmark_model on a test phone", 1,
                          default={"mac_per_s": 1e10, "bytes_per_s": 1e10, "overhead_us": 1.0},
                          channel_tile=main, small_channel_tile=small)


def test_allowed_widths_count_channels_of_every_tiled_producer():
    coupling = Coupling(build_edsr(scale=2, num_blocks=1, num_features=16))
    rule = WidthRule.of_multiple(8)
    assert rule.allowed(coupling, "head") == [8, 16]
    assert rule.allowed(coupling, "block00_conv1") == [8, 16]
    # the upsampler's units are 4 channels each (depth-to-space by 2): 8-channel multiples are even unit counts
    assert rule.allowed(coupling, "up0_conv") == [2, 4, 6, 8, 10, 12, 14, 16]
    tiles = WidthRule.from_profile(_profile(4, 8))  # up to 4 outputs in one small tile, else tiles of 8
    assert tiles.allowed(coupling, "head") == [4, 8, 16]
    assert tiles.allowed(coupling, "up0_conv") == [1, 2, 4, 6, 8, 10, 12, 14, 16]
    assert WidthRule().allowed(coupling, "head") == list(range(1, 17)) and not WidthRule().aligns
    assert WidthRule.of_multiple(32).allowed(coupling, "head") == [16]  # narrower than the multiple: kept whole


def test_rule_descriptions_and_choice():
    assert width_rule(16).to_dict() == {"multiple": 16, "tiles": None, "source": "multiples of 16 channels"}
    rule = width_rule(1, _profile(1, 16), "my phone")
    assert rule.tiles == (1, 16) and rule.source.startswith("my phone: conv output tiles of 16")
    with pytest.raises(InvalidArgumentError, match="--channel-multiple and --latency-profile both choose"):
        width_rule(8, _profile(1, 16))
    with pytest.raises(InvalidArgumentError, match="channel multiple must be an integer >= 1, got 0"):
        width_rule(0)


def test_a_rule_that_leaves_nothing_to_prune_is_refused():
    coupling = Coupling(build_edsr(scale=2, num_blocks=1, num_features=16))
    with pytest.raises(InvalidArgumentError, match="a channel multiple of 128 leaves no group anything to prune "
                                                   r"\(its widest prunable layer has 64 output channels\)"):
        WidthRule.of_multiple(128).check_fits(coupling)  # the upsampler conv: 16 units of 4 channels
    with pytest.raises(InvalidArgumentError, match="conv tile of 128 channels leaves no group anything to prune"):
        WidthRule.from_profile(_profile(128, 128)).check_fits(coupling)
    WidthRule.of_multiple(8).check_fits(coupling)


def test_nearest_and_smallest_allowed():
    assert nearest_allowed(45, [16, 32, 48, 64]) == 48
    assert nearest_allowed(40, [16, 32, 48, 64]) == 48  # a tie goes to the wider width
    assert nearest_allowed(3, [16, 32]) == 16
    assert smallest_allowed_at_least(17, [16, 32, 64]) == 32 and smallest_allowed_at_least(99, [16, 32]) == 32


def test_blocks_remove_whole_blocks_lowest_first():
    score = np.array([5.0, 1.0, 3.0, 2.0, 4.0, 0.0, 7.0, 6.0])
    # the four lowest (units 5, 1, 3, 2) form the one block to 4; its score is their mean; the rest never go
    assert blocks(score, list(range(8)), [4, 8], floor=1) == [(1.5, [1, 2, 3, 5])]
    # blocks 8->6 (units 5, 1: mean 0.5) and 6->4 (units 3, 2: mean 2.5); the floor of 3 stops at width 4
    assert blocks(score, list(range(8)), [2, 4, 6, 8], floor=3) == [(0.5, [1, 5]), (2.5, [2, 3])]


def test_block_scores_never_fall_and_every_prefix_of_blocks_keeps_an_allowed_width():
    rng = np.random.default_rng(0)
    for trial in range(50):
        score = rng.random(32)
        kept = sorted(rng.choice(32, size=int(rng.integers(17, 33)), replace=False).tolist())
        allowed = [8, 16, 24, 32]
        found = blocks(score, kept, allowed, floor=1)
        values = [v for v, _ in found]
        assert values == sorted(values), trial
        left = set(kept)
        for _, units in found:
            assert set(units) <= left
            left -= set(units)
            assert len(left) in allowed, (trial, len(left))
        assert len(left) == 8 or not found
