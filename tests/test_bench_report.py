import json

import pytest

from edgeprune.deploy.bench.host import bench_host
from edgeprune.deploy.bench.parse import parse_benchmark_output, parse_op_profile_csv
from edgeprune.commands.report import build_report
from edgeprune.deploy.bench.report import analytic_cost
from edgeprune.graph.latency_profile import LatencyProfile
from edgeprune.graph.cost import model_cost
from edgeprune.core.errors import FileFormatError
from edgeprune.deploy.export import convert, fixed_shape_model
from keras_models import build_edsr
from test_bench_parse import DATA, FAKE_RUN


def test_report_joins_host_and_device_results(tmp_path):
    model = build_edsr(num_blocks=1, num_features=4)
    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(convert(fixed_shape_model(model, (16, 16))))
    cost = model_cost(model, (16, 16)).totals
    assert analytic_cost(tfl) == {"mac": cost.mac, "weights": cost.weights, "activations": cost.activations,
                                  "bw_elements": cost.bw_elements, "bw_bytes": cost.bw_bytes}
    host = bench_host(tfl, num_runs=2).to_dict()
    device = parse_benchmark_output(FAKE_RUN.read_text(), target="device", model=str(tfl)).to_dict()
    device["op_profile"] = parse_op_profile_csv((DATA / "op_profile_edsr_csv.csv").read_text())
    (tmp_path / "host.json").write_text(json.dumps(host))
    (tmp_path / "device.json").write_text(json.dumps([device]))
    rep = build_report([tmp_path / "host.json", tmp_path / "device.json"], tmp_path / "out")
    assert [r["target"] for r in rep["rows"]] == ["host", "device"]
    assert rep["rows"][1]["measured_us"] == 1810 and rep["rows"][1]["delegated"] == "6/7"
    assert all(r["cost"]["mac"] == cost.mac for r in rep["rows"])
    for name in ("report.md", "report.json", "latency_vs_mac.png", "latency_vs_bw.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert (tmp_path / "out" / "latency_vs_mac.png").read_bytes()[:4] == b"\x89PNG"
    # the device's per-op profile is in the report, by node type and slowest node
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "per-op profile of m.tflite (5 nodes)" in markdown
    assert "Depth To Space (NHWC, X32)" in markdown and "Delegate/Convolution (NHWC, F32) IGEMM:3" in markdown


def test_report_refuses_what_is_not_a_result(tmp_path):
    (tmp_path / "x.json").write_text('{"a": 1}')
    with pytest.raises(FileFormatError, match="is not an edgeprune benchmark result"):
        build_report([tmp_path / "x.json"], tmp_path / "o")
    with pytest.raises(FileFormatError, match="does not exist"):
        build_report([tmp_path / "none.json"], tmp_path / "o")
    (tmp_path / "cut.json").write_text('{"schema": "edgeprune.bench/1", "mod')
    with pytest.raises(FileFormatError, match="benchmark result '.*cut.json' is not valid JSON"):
        build_report([tmp_path / "cut.json"], tmp_path / "o")
    (tmp_path / "odd.json").write_text('[{"schema": "edgeprune.bench/1", "target": "device", "device": "pixel"}]')
    with pytest.raises(FileFormatError, match="benchmark result '.*odd.json': field 'device' is 'pixel'"):
        build_report([tmp_path / "odd.json"], tmp_path / "o")
    (tmp_path / "odd.json").write_text('{"schema": "edgeprune.bench/1", "model": 3}')
    with pytest.raises(FileFormatError, match="field 'model' is 3, which is not valid"):
        build_report([tmp_path / "odd.json"], tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_a_host_profile_predicts_host_rows_only(tmp_path):
    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(convert(fixed_shape_model(build_edsr(num_blocks=1, num_features=4), (16, 16))))
    profile = LatencyProfile("host", "test", 1, default={"mac_per_s": 1e10, "bytes_per_s": 1e10, "overhead_us": 1.0})
    profile.save(tmp_path / "host_profile.json")
    host = bench_host(tfl, num_runs=2).to_dict()
    device = parse_benchmark_output(FAKE_RUN.read_text(), target="device", model=str(tfl)).to_dict()
    (tmp_path / "all.json").write_text(json.dumps([host, device]))
    rep = build_report([tmp_path / "all.json"], tmp_path / "out", tmp_path / "host_profile.json")
    host_row, device_row = rep["rows"]
    assert host_row["predicted_us"] > 0 and host_row["error"] == host_row["predicted_us"] / host_row["measured_us"] - 1
    assert device_row["target"] == "device" and device_row["predicted_us"] is None and device_row["error"] is None
    assert json.loads((tmp_path / "out" / "report.json").read_text())["rows"][1]["predicted_us"] is None


@pytest.mark.parametrize("result, message", [
    ({"target": "device", "delegated_nodes": 6}, "has 'delegated_nodes' but no 'total_nodes'"),
    ({"target": "device", "memory_traffic": {"bytes_per_inference": "12MB"}},
     "field 'memory_traffic.bytes_per_inference' is '12MB', which is not valid"),
    ({"target": "device", "memory_traffic": {"bytes_per_inference": True}},
     "field 'memory_traffic.bytes_per_inference' is True"),
    ({"median_us": 5.0}, "has no 'target'"),
])
def test_report_refuses_a_partial_or_foreign_result(tmp_path, result, message):
    (tmp_path / "part.json").write_text(json.dumps({"schema": "edgeprune.bench/1", **result}))
    with pytest.raises(FileFormatError, match=f"benchmark result '.*part.json'.*{message}") as err:
        build_report([tmp_path / "part.json"], tmp_path / "o")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "o").exists()


def test_report_files_appear_together_or_not_at_all(tmp_path, monkeypatch):
    from edgeprune.commands import report as report_command

    host = parse_benchmark_output(FAKE_RUN.read_text(), target="device", model="m.tflite").to_dict()
    (tmp_path / "r.json").write_text(json.dumps(host))

    def plot_fails_on_bw(rows, key, label, path):
        if key == "bw_bytes":
            raise KeyboardInterrupt("killed while drawing the second plot")
        path.write_bytes(b"\x89PNG")

    monkeypatch.setattr(report_command, "plot_latency", plot_fails_on_bw)
    with pytest.raises(KeyboardInterrupt):
        build_report([tmp_path / "r.json"], tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
