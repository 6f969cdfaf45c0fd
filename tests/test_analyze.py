import json

import pytest

from edgeprune.commands.analyze import analyze, analyze_command
from edgeprune.core.errors import InvalidArgumentError, ShapeError
from edgeprune.core.modelio import save_model
from keras_models import build_edsr


def test_reference_models_default_to_the_papers_input_size():
    assert analyze("edsr").input_size == (1020, 1020)
    report = analyze("sid")
    assert report.input_size == (1424, 2128) and report.model == "sid"


def test_sid_size_must_be_a_multiple_of_16():
    with pytest.raises(InvalidArgumentError, match="multiple of 16"):
        analyze("sid", (100, 100))


def test_saved_model_uses_its_static_size_or_needs_one(tmp_path):
    static = save_model(build_edsr(num_blocks=1, num_features=2, input_size=(12, 10)), tmp_path / "s.keras")
    assert analyze(str(static)).input_size == (12, 10)
    dynamic = save_model(build_edsr(num_blocks=1, num_features=2), tmp_path / "d.keras")
    with pytest.raises(ShapeError, match="give an input size"):
        analyze(str(dynamic))
    assert analyze(str(dynamic), (5, 6), "int8").totals.bw_bytes == analyze(str(dynamic), (5, 6)).totals.bw_elements


def test_analyze_command_prints_the_cost_table_then_the_latency_table_or_one_json_object(tmp_path):
    from edgeprune.commands.render import cost_table, latency_table
    from edgeprune.graph.latency_profile import LatencyProfile, predict_report

    model = str(save_model(build_edsr(num_blocks=1, num_features=4), tmp_path / "m.keras"))
    path = LatencyProfile("host", "test", 1, {"mac_per_s": 1e9, "bytes_per_s": 1e9, "overhead_us": 1.0},
                          channel_tile=8, small_channel_tile=8).save(tmp_path / "p.json")
    report = analyze(model, (8, 8), "fp16")
    latency = predict_report(LatencyProfile.load(path), report)
    assert analyze_command(model, (8, 8), "fp16") == cost_table(report)
    assert analyze_command(model, (8, 8), "fp16", all_layers=True) == cost_table(report, all_layers=True)
    assert analyze_command(model, (8, 8), "fp16", latency_profile=path) == \
        f"{cost_table(report)}\n\n{latency_table(latency)}"
    assert analyze_command(model, (8, 8), "fp16", all_layers=True, latency_profile=path) == \
        f"{cost_table(report, all_layers=True)}\n\n{latency_table(latency, all_layers=True)}"
    assert analyze_command(model, (8, 8), "fp16", as_json=True) == json.dumps(report.to_dict())
    assert analyze_command(model, (8, 8), "fp16", as_json=True, latency_profile=path) == \
        json.dumps(report.to_dict() | {"latency": latency})


def test_zero_kernels_are_counted_and_the_dense_mac_stays(tmp_path):
    from edgeprune.core.modelio import save_model
    from keras_models import build_edsr

    model = build_edsr(num_blocks=1, num_features=8)
    conv = next(l for l in model.layers if type(l).__name__ == "Conv2D" and l.kernel.shape[2] == 8)
    kernel, *rest = conv.get_weights()
    kernel[:, :, 0, :3] = 0  # 3 of its 8 x 8 kernels
    conv.set_weights([kernel, *rest])
    path = save_model(model, tmp_path / "sparse.keras")
    data = json.loads(analyze_command(str(path), (16, 16), as_json=True))
    report = analyze(str(path), (16, 16))
    per_kernel = report.layer(conv.name).mac / 64
    z = data["zero_kernels"]
    assert z["layers"][conv.name] == [3, 64] and z["zero_kernels"] == 3
    assert z["mac"] == report.totals.mac and z["mac_skipping_zero_kernels"] == report.totals.mac - 3 * per_kernel
    text = analyze_command(str(path), (16, 16))
    assert f"3 of {z['kernels']:,} conv kernels are all zero" in text and "a dense TFLite conv multiplies" in text
    assert "zero_kernels" not in json.loads(analyze_command("edsr", (16, 16), as_json=True))
