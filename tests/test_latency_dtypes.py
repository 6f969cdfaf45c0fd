"""The latency model prices bytes at the deployed dtype: a profile records the dtype it was calibrated for, .tflite
tensors are counted at their element sizes, the host calibrates int8 models, and pruning refuses a profile of another
dtype than the deployment asks for."""

import json

import numpy as np
import pytest

from edgeprune.core.errors import FileFormatError, InvalidArgumentError
from edgeprune.deploy.conversion_models import CONVERSION_GRID
from edgeprune.deploy.export import convert, fixed_shape_model, random_samples
from edgeprune.deploy.latency import op_features
from edgeprune.deploy.tflite_reader import TfliteGraph
from edgeprune.graph.cost import model_cost
from edgeprune.graph.latency_profile import LatencyProfile, layer_bytes, predict_report
from keras_models import build_edsr

from conftest import TEST_HOST_PROFILE


def _tiny():
    return fixed_shape_model(build_edsr(num_blocks=1, num_features=8), (16, 16))


def test_a_profile_prices_bytes_at_its_dtype():
    report = model_cost(_tiny(), (16, 16))
    fp32 = predict_report(LatencyProfile(**TEST_HOST_PROFILE), report)
    int8 = predict_report(LatencyProfile(**TEST_HOST_PROFILE, dtype="int8"), report)
    conv = next(c for c in report.layers if c.type == "Conv2D")
    assert layer_bytes(conv, "fp32") == 4 * (conv.weights + conv.bias + conv.other_params + conv.activations)
    assert layer_bytes(conv, "int8") == conv.weights + conv.other_params + conv.activations + 4 * conv.bias
    by_name = {l["name"]: l for l in int8["layers"]}
    assert by_name[conv.name]["bytes"] == layer_bytes(conv, "int8")
    layers = int8["layers"][1:-1]  # between the int8 model's conversions of its input and output
    assert [l["name"] for l in fp32["layers"]] == [l["name"] for l in layers]
    assert all(a["bytes"] > b["bytes"] for a, b in zip(fp32["layers"], layers) if a["bytes"])


def test_an_int8_prediction_prices_the_models_own_input_and_output_conversions():
    """A float-input int8 x2 model at 16x16 converts its 16x16x3 input (4 + 1 bytes an element: 3,840) and its
    32x32x3 output (15,360); with no roofline of their own they take the default one: 2e10 B/s, 5 us."""
    report = model_cost(_tiny(), (16, 16))
    fp32 = predict_report(LatencyProfile(**TEST_HOST_PROFILE), report)
    assert not {"QUANTIZE", "DEQUANTIZE"} & {l["op"] for l in fp32["layers"]}
    int8 = predict_report(LatencyProfile(**TEST_HOST_PROFILE, dtype="int8"), report)
    first, last = int8["layers"][0], int8["layers"][-1]
    assert (first["op"], first["mac"], first["bytes"], first["name"]) == ("QUANTIZE", 0, 3_840, "(quantize 16x16x3)")
    assert (last["op"], last["bytes"], last["name"]) == ("DEQUANTIZE", 15_360, "(dequantize 32x32x3)")
    assert first["us"] == pytest.approx(5 + 3_840 / 2e10 * 1e6) and last["us"] == pytest.approx(5 + 15_360 / 2e10 * 1e6)
    assert [l["op"] for l in int8["layers"]].count("QUANTIZE") == 1
    assert int8["total_us"] == pytest.approx(sum(l["us"] for l in int8["layers"]))


def test_an_int8_tflite_prediction_prices_the_output_dequantize():
    from edgeprune.deploy.latency import predict_tflite

    model = _tiny()
    graph = TfliteGraph(convert(model, "int8", random_samples(model)))
    ops = [o["op"] for o in predict_tflite(LatencyProfile(**TEST_HOST_PROFILE, dtype="int8"), graph)["ops"]]
    assert ops.count("QUANTIZE") == ops.count("DEQUANTIZE") == 1


def test_tflite_tensors_are_counted_at_their_element_sizes():
    model = _tiny()
    fp32 = {f[0]: f for f in op_features(TfliteGraph(convert(model)))}
    int8_graph = TfliteGraph(convert(model, "int8", random_samples(model)))
    conv = next(op for op in int8_graph.ops if op.name == "CONV_2D")
    # an int8 conv's data and weights at 1 byte, its int32 bias at 4
    data, weights, bias = (np.prod(s) for s in conv.input_shapes)
    assert conv.tensor_bytes() == data + weights + 4 * bias + np.prod(conv.output_shapes[0])
    int8 = [f for f in op_features(int8_graph) if f[0] == "CONV_2D"]
    assert int8[0][2] == conv.tensor_bytes() < fp32["CONV_2D"][2]


def test_the_profile_file_records_its_dtype_and_older_files_are_fp32(tmp_path):
    profile = LatencyProfile(**TEST_HOST_PROFILE, dtype="int8")
    path = profile.save(tmp_path / "p.json")
    assert LatencyProfile.load(path).dtype == "int8"
    data = json.loads(path.read_text())
    del data["dtype"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert LatencyProfile.load(tmp_path / "old.json").dtype == "fp32"
    data["dtype"] = "bf16"
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(FileFormatError, match="field 'dtype' is 'bf16', not one of fp32, fp16, int8"):
        LatencyProfile.load(tmp_path / "bad.json")


def test_the_host_calibrates_int8_models_and_refuses_fp16():
    from edgeprune.deploy.latency import calibrate_host

    profile = calibrate_host([build_edsr(num_blocks=1, num_features=8)], (16, 16), runs=1, width_multipliers=(1.0,),
                             workers=1, dtype="int8")
    assert profile.dtype == "int8" and profile.target == "host"
    # each single-layer model is its layer's op alone (int8 input and output: no conversion around it) ...
    layers = [s for s in profile.samples if not s["layer"].endswith("(conversion)")]
    assert layers and all(s["ops"] == [s["op"]] for s in layers)
    assert {s["op"] for s in layers} == {"CONV_2D", "ADD", "DEPTH_TO_SPACE"}
    # ... and a float-input model's conversions are timed alone, at the model's input (16x16x3) and output (32x32x3,
    # one of the grid's shapes) and at the grid's shapes, each fitted under its own roofline
    conversions = [s for s in profile.samples if s["layer"].endswith("(conversion)")]
    shapes = 1 + len(CONVERSION_GRID)
    assert [s["op"] for s in conversions] == ["QUANTIZE", "DEQUANTIZE"] * shapes
    assert all(s["ops"] == [s["op"]] and s["mac"] == 0 for s in conversions)
    assert conversions[0]["layer"] == "QUANTIZE 16x16x3 (conversion)" and conversions[0]["bytes"] == 16 * 16 * 3 * 5
    assert {"QUANTIZE", "DEQUANTIZE"} <= set(profile.ops)
    with pytest.raises(InvalidArgumentError, match="runs an fp16 model in fp32"):
        calibrate_host([build_edsr(num_blocks=1, num_features=8)], (16, 16), dtype="fp16")


def test_pruning_refuses_a_profile_of_another_dtype_than_the_deployment(tmp_path):
    from edgeprune.deploy.host_profile import pruning_profile
    from edgeprune.prune.options import PruneOptions

    path = LatencyProfile(**TEST_HOST_PROFILE, dtype="int8").save(tmp_path / "int8.json")
    assert pruning_profile(path, dtype="int8")[0].dtype == "int8"
    assert pruning_profile(path)[0].dtype == "int8"  # no --deploy-dtype: the profile's own
    with pytest.raises(InvalidArgumentError, match="prices int8 models, not the fp32 model --deploy-dtype asks for"):
        pruning_profile(path, dtype="fp32")
    with pytest.raises(InvalidArgumentError, match="--deploy-dtype fp16 needs a device's fp16 profile"):
        PruneOptions("edsr", tmp_path / "run", deploy_dtype="fp16")
    assert PruneOptions("edsr", tmp_path / "run", deploy_dtype="fp16", latency_profile=str(path)).deploy_dtype == "fp16"


def test_an_int8_prune_predicts_and_measures_int8_side_by_side(tmp_path):
    from functools import partial

    from edgeprune.deploy.host_profile import measure_host_latency
    from edgeprune.prune.pipeline import Hardware, prune_command
    from test_pipeline import TINY, _tiny_file

    profile = LatencyProfile(**TEST_HOST_PROFILE, dtype="int8")
    hardware = Hardware(profile=profile, profile_source="a test int8 profile", dtype="int8",
                        measure=partial(measure_host_latency, rounds=2, quantize="int8"))
    report = prune_command(str(_tiny_file(tmp_path)), tmp_path / "run", target_mac=0.9, tolerance_psnr=50.0,
                           tolerance_ssim=1.0, overrides=TINY, verbose=0, hardware=hardware)
    latency = report["latency"]
    assert latency["dtype"] == "int8" and latency["profile"]["dtype"] == "int8"
    assert latency["measured"]["runner"].endswith(", int8") and latency["measured"]["ratio"] > 0
    assert latency["predicted"]["ratio"] > 0
