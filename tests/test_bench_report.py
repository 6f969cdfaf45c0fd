import json

import pytest

from edgeprune.deploy.bench.host import bench_host
from edgeprune.deploy.bench.parse import parse_benchmark_output
from edgeprune.deploy.bench.report import analytic_cost, build_report
from edgeprune.graph.cost import model_cost
from edgeprune.errors import InvalidArgumentError
from edgeprune.deploy.export import convert, fixed_shape_model
from keras_models import build_edsr
from test_bench_parse import FAKE_RUN


def test_report_joins_host_and_device_results(tmp_path):
    model = build_edsr(num_blocks=1, num_features=4)
    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(convert(fixed_shape_model(model, (16, 16))))
    cost = model_cost(model, (16, 16)).totals
    assert analytic_cost(tfl) == {"mac": cost.mac, "weights": cost.weights, "activations": cost.activations,
                                  "bw_elements": cost.bw_elements, "bw_bytes": cost.bw_bytes}
    host = bench_host(tfl, num_runs=2).to_dict()
    device = parse_benchmark_output(FAKE_RUN.read_text(), target="device", model=str(tfl)).to_dict()
    (tmp_path / "host.json").write_text(json.dumps(host))
    (tmp_path / "device.json").write_text(json.dumps([device]))
    rep = build_report([tmp_path / "host.json", tmp_path / "device.json"], tmp_path / "out")
    assert [r["target"] for r in rep["rows"]] == ["host", "device"]
    assert rep["rows"][1]["measured_us"] == 1810 and rep["rows"][1]["delegated"] == "6/7"
    assert all(r["cost"]["mac"] == cost.mac for r in rep["rows"])
    for name in ("report.md", "report.json", "latency_vs_mac.png", "latency_vs_bw.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert (tmp_path / "out" / "latency_vs_mac.png").read_bytes()[:4] == b"\x89PNG"


def test_report_refuses_what_is_not_a_result(tmp_path):
    (tmp_path / "x.json").write_text('{"a": 1}')
    with pytest.raises(InvalidArgumentError, match="is not an edgeprune benchmark result"):
        build_report([tmp_path / "x.json"], tmp_path / "o")
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        build_report([tmp_path / "none.json"], tmp_path / "o")
