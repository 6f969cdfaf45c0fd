import json

import pytest

from edgeprune.deploy.bench.host import bench_host
from edgeprune.deploy.bench.parse import parse_benchmark_output, parse_op_profile_csv
from edgeprune.commands.report import build_report
from edgeprune.deploy.bench.report import analytic_cost
from edgeprune.graph.latency_profile import LatencyProfile
from edgeprune.graph.cost import model_cost
from edgeprune.core.errors import FileFormatError, InvalidArgumentError
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
    ({"target": "host", "memory_traffic": {"bytes_per_inference": 1.0, "analytical": {"mac": 1}}},
     "memory_traffic has no memory_traffic.analytical.weights"),
    ({"target": "host", "memory_traffic": {"bytes_per_inference": 1.0, "analytical": "many"}},
     "field 'memory_traffic.analytical' is 'many'"),
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


def _traffic_result(tfl, traffic_bytes, size=(16, 16), ll=2097152):
    """A host result of 'bench --host --memory-traffic' for ``tfl`` with the given traffic (the rest as measured)."""
    from edgeprune.deploy.bench.traffic import analytical_bw, parse_caches

    caches = parse_caches(f"LL={ll},16,64").to_dict()
    return {"schema": "edgeprune.bench/1", "target": "host", "model": str(tfl), "runner": "ai_edge_litert",
            "num_threads": 1, "median_us": 100.0,
            "memory_traffic": {"bytes_per_inference": traffic_bytes, "read_bytes_per_inference": traffic_bytes - 64,
                               "write_bytes_per_inference": 64, "input_size": list(size), "caches": caches,
                               "analytical": analytical_bw(tfl, size), "xnnpack": {"isa": "fma3"}}}


def test_report_pairs_simulated_traffic_with_its_baseline(tmp_path):
    base, pruned = tmp_path / "base.tflite", tmp_path / "pruned.tflite"
    base.write_bytes(convert(fixed_shape_model(build_edsr(num_blocks=1, num_features=8), (16, 16))))
    pruned.write_bytes(convert(fixed_shape_model(build_edsr(num_blocks=1, num_features=8, block_features=[4]),
                                                 (16, 16))))
    other_size = _traffic_result(pruned, 500.0, size=(32, 32))  # another size: no baseline of its own
    results = [_traffic_result(base, 1000.0), _traffic_result(pruned, 800.0), other_size]
    (tmp_path / "r.json").write_text(json.dumps(results))
    rep = build_report([tmp_path / "r.json"], tmp_path / "out", baselines=["base.tflite"])
    b, p, o = rep["rows"]
    bw_b, bw_p = b["traffic"]["bw_bytes"], p["traffic"]["bw_bytes"]
    assert b["cost"] == {k: results[0]["memory_traffic"]["analytical"][k] for k in b["cost"]}
    assert b["traffic"]["ratio"] == 1000.0 / bw_b and "vs_baseline" not in b and "vs_baseline" not in o
    assert p["vs_baseline"] == {"baseline": str(base), "traffic_ratio": 0.8, "bw_ratio": bw_p / bw_b,
                                "mac_ratio": p["traffic"]["mac"] / b["traffic"]["mac"]}
    assert 0 < p["vs_baseline"]["mac_ratio"] < p["vs_baseline"]["bw_ratio"] < 1
    assert "traffic ratio" in rep["table"] and f"{bw_p / bw_b:.3f}" in rep["table"]
    assert (tmp_path / "out" / "traffic_vs_bw.png").read_bytes()[:4] == b"\x89PNG"
    assert "![traffic vs BW](traffic_vs_bw.png)" in (tmp_path / "out" / "report.md").read_text()
    with pytest.raises(InvalidArgumentError, match="^--baseline 'none.tflite' is not the model of any result given"):
        build_report([tmp_path / "r.json"], tmp_path / "out2", baselines=["none.tflite"])
