import json

import pytest

from edgeprune.graph.cost import model_cost
from edgeprune.commands.calibrate import calibrate_command
from edgeprune.core.errors import FileFormatError, InvalidArgumentError
from edgeprune.deploy.export import convert, fixed_shape_model
from edgeprune.graph.latency_profile import LatencyProfile, Roofline, effective_mac, predict_report, tiled_channels
from edgeprune.deploy.latency import choose_tiles, fit_roofline, predict_tflite
from edgeprune.core.modelio import save_model
from edgeprune.core.runtime import keras
from edgeprune.deploy.tflite_reader import TfliteGraph
from keras_models import build_edsr


def test_tiled_channels():
    assert [tiled_channels(c, (16, 32)) for c in (3, 16, 17, 32, 33, 52, 64)] == [16, 16, 32, 32, 64, 64, 64]
    assert [tiled_channels(c, (1, 1)) for c in (3, 52)] == [3, 52]
    assert effective_mac(1000, 52, (16, 32)) == pytest.approx(1000 * 64 / 52)
    assert effective_mac(1000, 0, (16, 32)) == 1000


def test_choose_tiles_recovers_a_synthetic_kernel():
    sweep = [{"out_channels": c, "measured_us": 10.0 * tiled_channels(c, (16, 32))} for c in range(8, 65, 8)]
    assert choose_tiles(sweep) == (16, 32)
    linear = [{"out_channels": c, "measured_us": 3.0 * c} for c in range(8, 65, 8)]
    assert choose_tiles(linear) == (1, 1)


@pytest.mark.parametrize("host, us, main_tile", [
    # measured sweeps (3x3 conv, 64x64x64 input, output widths 8..64; BENCHMARKS.md): two idle calibrations of one
    # AVX-512 host (the 20% rule on every width chose 32, 16, -, -; the 5% rule 32, 32, 32, 16) and the AVX2 host
    ("avx512, first", (546, 547, 968, 744, 1352, 1382, 1375, 1378), 32),
    ("avx512, second", (478, 486, 882, 677, 1276, 1297, 1284, 1298), 32),
    ("avx512, third", (471, 468, 845, 644, 1246, 1244, 1240, 1239), 32),
    ("avx512, fourth", (437, 440, 859, 642, 1278, 1271, 1272, 1273), 32),  # the 5% rule on all widths chose 16
    ("avx2", (582, 865, 1698, 1706, 2545, 2563, 3377, 3400), 16),
])
def test_choose_tiles_on_measured_sweeps(host, us, main_tile):
    sweep = [{"out_channels": c, "measured_us": float(t)} for c, t in zip(range(8, 65, 8), us)]
    assert choose_tiles(sweep)[1] == main_tile


def test_fit_recovers_rooflines_per_op():
    truth = {"CONV_2D": Roofline(50e9, 20e9, 2.0), "ADD": Roofline(1e9, 80e9, 5.0)}
    samples = []
    for mac, nbytes in [(1e8, 1e6), (5e8, 4e6), (2e9, 1e7), (3e7, 2e7), (1e9, 1e8)]:
        samples.append({"op": "CONV_2D", "mac": mac, "bytes": nbytes, "out_channels": 0,
                        "measured_us": truth["CONV_2D"].us(mac, nbytes)})
    for nbytes in (1e5, 1e6, 1e7, 5e7):
        samples.append({"op": "ADD", "mac": 0, "bytes": nbytes, "measured_us": truth["ADD"].us(0, nbytes)})
    default, per_op, fit = fit_roofline(samples, (1, 1))
    assert per_op["CONV_2D"]["mac_per_s"] == pytest.approx(50e9, rel=1e-3)
    assert per_op["CONV_2D"]["bytes_per_s"] == pytest.approx(20e9, rel=1e-3)
    assert per_op["ADD"]["bytes_per_s"] == pytest.approx(80e9, rel=1e-3)
    assert per_op["ADD"]["overhead_us"] == pytest.approx(5.0, rel=1e-2)
    assert fit["max_abs_rel_err"] < 1e-3 and all("predicted_us" in s for s in samples)


def _profile():
    return LatencyProfile("host", "test", 1, default={"mac_per_s": 1e10, "bytes_per_s": 1e10, "overhead_us": 1.0},
                          ops={"CONV_2D": {"mac_per_s": 5e10, "bytes_per_s": 2e10, "overhead_us": 2.0}},
                          channel_tile=32, small_channel_tile=16)


def test_predictions_from_tflite_ops_and_from_the_cost_model_agree_on_convs():
    model = build_edsr(num_blocks=1, num_features=8)
    graph = TfliteGraph(convert(fixed_shape_model(model, (16, 16))))
    profile = _profile()
    from_tflite = predict_tflite(profile, graph)
    from_keras = predict_report(profile, model_cost(model, (16, 16)))
    conv_t = sorted(o["us"] for o in from_tflite["ops"] if o["op"] == "CONV_2D")
    conv_k = sorted(l["us"] for l in from_keras["layers"] if l["op"] == "CONV_2D")
    assert conv_t == pytest.approx(conv_k, rel=0.02)  # same MAC and tiles; bytes differ only by bias
    head = next(l for l in from_keras["layers"] if l["name"] == "head")
    assert head["us"] == pytest.approx(profile.op_us("CONV_2D", head["mac"], head["bytes"], 8))
    assert from_keras["total_us"] == pytest.approx(sum(l["us"] for l in from_keras["layers"]))


def test_profile_round_trip_and_bad_files(tmp_path):
    path = _profile().save(tmp_path / "p.json")
    loaded = LatencyProfile.load(path)
    assert loaded.channel_tile == 32 and loaded.roofline("ADD").mac_per_s == 1e10
    assert json.loads(path.read_text())["schema"] == "edgeprune.latency-profile/1"
    with pytest.raises(FileFormatError, match="does not exist: make one with 'edgeprune calibrate'"):
        LatencyProfile.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text('{"schema": "other"}')
    with pytest.raises(FileFormatError, match="is not an edgeprune latency profile"):
        LatencyProfile.load(tmp_path / "bad.json")


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "holds a JSON list, not a JSON object: it is not a latency profile"),
    ('{"schema": "edgeprune.latency-profile/1", "target": "h"', "is not valid JSON"),
    ('{"schema": "edgeprune.latency-profile/1"}', "field 'target' is None, which is not valid"),
    ('{"schema": "edgeprune.latency-profile/1", "target": "host", "runner": "r", "num_threads": 1, "default": '
     '{"mac_per_s": 0, "bytes_per_s": 1, "overhead_us": 1}}', "field 'default' is .* which is not a roofline"),
    ('{"schema": "edgeprune.latency-profile/1", "target": "host", "runner": "r", "num_threads": 1, "default": '
     '{"mac_per_s": 1, "bytes_per_s": 1, "overhead_us": 1}, "ops": {"ADD": [1]}}', "field 'ops.ADD' is \\[1\\]"),
    ('{"schema": "edgeprune.latency-profile/1", "target": "host", "runner": "r", "num_threads": 1, "default": '
     '{"mac_per_s": 1, "bytes_per_s": 1, "overhead_us": 1}, "channel_tile": 0}', "field 'channel_tile' is 0"),
])
def test_a_foreign_or_broken_profile_is_a_one_line_error(tmp_path, text, message):
    (tmp_path / "p.json").write_text(text)
    with pytest.raises(FileFormatError, match=message) as info:
        LatencyProfile.load(tmp_path / "p.json")
    assert "\n" not in str(info.value)


def test_a_tflite_prediction_prices_each_op_by_its_roofline_and_tile_and_leaves_out_dequantize():
    """One 3x3 conv, 8x8x3 -> 20 channels, exported with fp16 weights (a DEQUANTIZE op feeds it float32 weights).
    MAC 8*8 * 3*3*3 * 20 = 34,560, on 32 channels computed (20 > the small tile 16: rounded up to the main tile 32):
    55,296; bytes (8*8*3 in + 20*3*3*3 weights + 20 bias + 8*8*20 out) * 4 = 8,128. CONV_2D's roofline: 5e10 MAC/s,
    2e10 B/s, 2 us overhead -> max(1.10592, 0.4064) + 2 us."""
    inputs = keras.Input((8, 8, 3), batch_size=1)
    model = keras.Model(inputs, keras.layers.Conv2D(20, 3, padding="same")(inputs))
    graph = TfliteGraph(convert(model, "fp16"))
    assert graph.op_counts()["DEQUANTIZE"] >= 1
    prediction = predict_tflite(_profile(), graph)
    assert prediction["ops"] == [{"op": "CONV_2D", "mac": 34_560, "bytes": 8_128, "us": pytest.approx(3.10592)}]
    assert prediction["total_us"] == pytest.approx(3.10592)


def test_calibrate_a_tiny_model_for_real(tmp_path):
    model = save_model(build_edsr(num_blocks=1, num_features=8), tmp_path / "tiny.keras")
    out = tmp_path / "prof.json"
    profile = calibrate_command(out, [str(model)], (16, 16), 1, 2, include_references=False,
                                width_multipliers=(1.0,))
    assert out.is_file() and profile.fit["samples"] == len(profile.samples) > 8
    assert {s["op"] for s in profile.samples} >= {"CONV_2D", "ADD", "DEPTH_TO_SPACE"}
    assert profile.channel_tile >= profile.small_channel_tile >= 1
    assert all(s["measured_us"] > 0 and s["predicted_us"] > 0 for s in profile.samples)
    with pytest.raises(InvalidArgumentError, match="nothing to calibrate"):
        calibrate_command(tmp_path / "p.json", [], (16, 16), 1, 1, include_references=False)
    with pytest.raises(InvalidArgumentError, match="choose what to calibrate: --host"):
        calibrate_command(tmp_path / "p.json", [], (16, 16), 1, 1, host=False)


def test_layers_converted_in_worker_processes_are_the_layers_converted_here():
    from edgeprune.deploy.latency import calibration_layers, converted_layers

    layers = calibration_layers([build_edsr(num_blocks=1, num_features=8)], (16, 16), (1.0,))
    seen = []
    here = list(converted_layers(layers, workers=1))
    there = list(converted_layers(layers, workers=2, progress=lambda done, total: seen.append((done, total))))
    assert [(d, f) for d, _, f in there] == [(d, f) for d, _, f in here] and len(here) == len(layers) > 4
    assert seen == [(i + 1, len(layers)) for i in range(len(layers))]  # every conversion, as it ends
