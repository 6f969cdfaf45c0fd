import json

import pytest

from edgeprune.core.errors import InvalidArgumentError, UnsupportedModelError
from edgeprune.core.modelio import load_model
from edgeprune.prune.oneshot import OUTPUT_FILES, one_shot_prune
from edgeprune.core.runtime import keras


def test_edsr_at_0_3_shrinks_the_trunk_uniformly_and_matches_the_plan(tmp_path):
    report = one_shot_prune("edsr", 0.3, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(OUTPUT_FILES)
    slim = load_model(tmp_path / "pruned.keras")
    assert slim.get_layer("head").filters == 45  # 64 - floor(0.3 * 64)
    assert {slim.get_layer(f"block{i:02d}_conv2").filters for i in range(16)} == {45}
    assert {slim.get_layer(f"block{i:02d}_conv1").filters for i in range(16)} == {45}
    assert slim.get_layer("up0_conv").filters == 45 * 4 and slim.get_layer("tail").filters == 3
    assert report["plan_prediction"]["matches_pruned"]
    assert report["pruned"]["totals"]["mac"] == report["plan_prediction"]["totals"]["mac"]
    # closed form at 1020x1020: every 64-wide layer is now 45 wide
    f, hw = 45, 1020 * 1020
    mac = hw * (27 * f + 32 * 9 * f * f + 9 * f * f + 9 * f * 4 * f + 4 * 9 * f * 3)
    assert report["pruned"]["totals"]["mac"] == mac
    assert report["equivalence"]["max_rel_diff"] <= 1e-5
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["original"]["totals"]["mac"] == 1_428_061_363_200
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert len(plan["groups"]["head"]["keep"]) == 45


def test_sid_keeps_its_input_and_output_channels(tmp_path):
    report = one_shot_prune("sid", 0.5, tmp_path, input_size=(64, 64))
    slim = load_model(tmp_path / "pruned.keras")
    assert slim.input_shape[-1] == 4 and slim.get_layer("conv10").filters == 12
    assert slim.get_layer("conv1_1").filters == 16 and slim.get_layer("conv5_2").filters == 256
    assert report["pruned"]["input_size"] == [64, 64]
    assert report["mac_ratio"] < 0.3


@pytest.mark.parametrize("ratio", [0, 1, -0.1, 1.5, float("nan")])
def test_ratio_outside_0_1_writes_nothing(tmp_path, ratio):
    with pytest.raises(InvalidArgumentError, match="channel ratio must be strictly between 0 and 1"):
        one_shot_prune("edsr", ratio, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_failure_while_writing_leaves_no_file(tmp_path, monkeypatch):
    import edgeprune.prune.oneshot as oneshot

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(oneshot, "write_json_atomic", broken)
    with pytest.raises(OSError):
        one_shot_prune("edsr", 0.3, tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError):
        one_shot_prune("edsr", 0.3, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_model_with_nothing_prunable(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="a")(inputs)
    x = keras.layers.LayerNormalization(name="ln")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, name="out")(x))
    with pytest.raises(UnsupportedModelError, match="has no prunable channel group .*LayerNormalization 'ln'"):
        one_shot_prune(model, 0.3, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_kept_count_rounds_to_hardware_multiples():
    from edgeprune.prune.oneshot import kept_count

    def multiples(n, size=64):
        return sorted({*range(n, size + 1, n), size})

    assert kept_count(64, 0.3) == 45
    assert kept_count(64, 0.3, multiples(8)) == 48 and kept_count(64, 0.2, multiples(32)) == 64
    assert kept_count(64, 0.5, multiples(32)) == 32
    assert kept_count(64, 0.9, multiples(16)) == 16  # never below one multiple
    assert kept_count(12, 0.5, multiples(16, 12)) == 12  # a group smaller than the multiple stays whole
    assert kept_count(3, 0.9) == 1


def test_channel_multiple_in_one_shot(tmp_path):
    report = one_shot_prune("edsr", 0.3, tmp_path, input_size=(32, 32), channel_multiple=16)
    kept = {n: g["kept"] for n, g in report["groups"].items()}
    # the multiple counts channels: the upsampler's depth-to-space units span 4 channels each, so 44 units are 176
    # channels (11 tiles of 16), the nearest aligned width to the 45 that R = 0.3 asks for
    assert {k for n, k in kept.items() if n != "up0_conv"} == {48} and kept["up0_conv"] == 44
    assert report["widths"] == {"multiple": 16, "tiles": None, "source": "multiples of 16 channels"}
    widths = {l["name"]: l["output_shapes"][0][-1] for l in report["pruned"]["layers"] if l["type"] == "Conv2D"}
    assert all(w % 16 == 0 for n, w in widths.items() if n != "tail"), widths
    with pytest.raises(InvalidArgumentError, match="channel multiple must be an integer >= 1"):
        one_shot_prune("edsr", 0.3, tmp_path / "x", channel_multiple=0)


def test_one_shot_for_a_profile_keeps_whole_tiles_and_predicts_latency(tmp_path):
    from conftest import TEST_HOST_PROFILE
    from edgeprune.commands.render import one_shot_summary
    from edgeprune.graph.latency_profile import LatencyProfile

    profile = LatencyProfile(**{**TEST_HOST_PROFILE, "channel_tile": 16, "small_channel_tile": 16})
    report = one_shot_prune("edsr", 0.3, tmp_path, input_size=(32, 32), profile=profile, profile_source="phone")
    assert report["widths"]["tiles"] == [16, 16] and report["widths"]["source"].startswith("phone: conv output")
    widths = [l["output_shapes"][0][-1] for l in report["pruned"]["layers"] if l["type"] == "Conv2D"]
    assert all(w % 16 == 0 for w in widths[:-1])  # all but the 3-channel output conv
    predicted = report["predicted_latency"]
    assert 0 < predicted["ratio"] < 1 and predicted["input_size"] == [32, 32]
    assert "predicted latency:" in one_shot_summary(report, tmp_path)
    with pytest.raises(InvalidArgumentError, match="--channel-multiple and --latency-profile both choose"):
        one_shot_prune("edsr", 0.3, tmp_path / "x", profile=profile, channel_multiple=8)
    assert not (tmp_path / "x").exists()
