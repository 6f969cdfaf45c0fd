"""benchmark_model output parsing: captured outputs of several versions, and properties of random/truncated text."""

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeprune.deploy.bench.parse import BenchmarkParseError, parse_benchmark_output

DATA = Path(__file__).parent / "data" / "benchmark_model"
FAKE_RUN = Path(__file__).parent / "fakes" / "device_run_output.txt"
# what each captured output (tests/data/benchmark_model/SOURCES.md) must give: a result, or an error
EXPECTED = {
    "external_delegate_stray_line_tf2_15.txt": "complete", "gpu_delegate_full_opencl.txt": "complete",
    "new_xnnpack_cpu_desktop.txt": "complete", "nnapi_partial_logcat_tf2_9.txt": "complete",
    "nnapi_replacing_line_tf2_15.txt": "complete", "old_average_timings_op_profiling.txt": "complete",
    "old_no_stats_tflite1_12.txt": "complete", "op_profiling_scientific_tf2_8.txt": "complete",
    "peak_memory_footprint_tf2_4.txt": "complete", "percentiles_scientific_cpu_tf2_20.txt": "complete",
    "xnnpack_partial_percentiles_tf2_20.txt": "complete",
    "failed_run_nnapi_delegate_tf2_4.txt": "failed", "failed_run_xnnpack_delegate_tf2_8.txt": "failed",
    "nnapi_partial_op_profiling_tf2_4.txt": "no summary",  # the reporter pasted only the profiling tables
}
CAPTURES = sorted(DATA.glob("*.txt"))
COMPLETE = [DATA / n for n, kind in EXPECTED.items() if kind == "complete"]
FAILED = [DATA / n for n, kind in EXPECTED.items() if kind != "complete"]


def test_every_capture_has_an_expectation():
    assert sorted(p.name for p in CAPTURES) == sorted(EXPECTED)
SCHEMA_KEYS = {"runs", "avg_us", "std_us", "min_us", "max_us", "median_us", "p95_us", "init_us", "first_us",
               "warmup_avg_us", "mem_overall_mb", "delegated_nodes", "total_nodes"}


def parse_file(path):
    return parse_benchmark_output(path.read_text(errors="replace"))


@pytest.mark.parametrize("path", COMPLETE, ids=[p.name for p in COMPLETE])
def test_every_captured_complete_run_parses(path):
    r = parse_file(path).to_dict()
    assert SCHEMA_KEYS <= set(r)
    assert r["runs"] >= 1 and r["avg_us"] > 0 and r["init_us"] is not None
    if r["min_us"] is not None:
        assert r["min_us"] <= r["avg_us"] <= r["max_us"]


@pytest.mark.parametrize("path", FAILED, ids=[p.name for p in FAILED])
def test_every_captured_failed_run_is_an_error(path):
    with pytest.raises(BenchmarkParseError):
        parse_file(path)


def test_recent_format_with_percentiles_memory_and_delegate():
    r = parse_benchmark_output(FAKE_RUN.read_text())
    assert (r.runs, r.avg_us, r.std_us, r.min_us, r.max_us) == (10, 1820, 60, 1750, 1950)
    assert (r.p5_us, r.median_us, r.p95_us) == (1750, 1810, 1950)
    assert (r.init_us, r.first_us, r.warmup_avg_us) == (3200, 2100, 2100)
    assert (r.mem_overall_mb, r.mem_peak_rss_mb, r.num_threads) == (2.25, 6.5, 2)
    assert (r.delegated_nodes, r.total_nodes, r.delegate, r.delegate_partitions) == (6, 7, "TfLiteXNNPackDelegate", 2)
    assert r.warnings == ["TfLiteXNNPackDelegate took 6 of 7 nodes; the rest run on the CPU"]


OLD = """Num threads: [1]
Graph: [/data/local/tmp/mobilenet.tflite]
Loaded model /data/local/tmp/mobilenet.tflite
Initialized session in 2.915ms
Running benchmark for at least 1 iterations and at least 0.5 seconds
count=5 first=1.11811e+05 curr=98730 min=97012 max=111811 avg=101303 std=5512

Running benchmark for at least 50 iterations and at least 1 seconds
count=50 first=98771 curr=98220 min=97101 max=1.02e+05 avg=98730.9 std=894

Average inference timings in us: Warmup: 101303, Init: 2915, Inference: 98730.9
Peak memory footprint (MB): init=3.17969 overall=21.3008
"""


def test_older_summary_scientific_notation_and_peak_memory():
    r = parse_benchmark_output(OLD)
    assert (r.runs, r.avg_us, r.max_us, r.init_us, r.warmup_avg_us) == (50, 98730.9, 102000.0, 2915, 101303)
    assert r.first_us == 111811.0  # from the warm-up statistics line: older builds print no "First inference"
    assert r.median_us is None and r.mem_overall_mb == 21.3008 and r.delegated_nodes is None


GPU_FALLBACK = """STARTING!
Use gpu: [1]
INFO: Created TensorFlow Lite delegate for GPU.
Initialized session in 120.5ms.
count=50 first=30000 curr=29000 min=28000 max=31000 avg=29500 std=500

Inference timings in us: Init: 120500, First inference: 30000, Warmup (avg): 30000, Inference (avg): 29500
"""


def test_a_silent_cpu_fallback_is_reported():
    r = parse_benchmark_output(GPU_FALLBACK)
    assert r.delegated_nodes is None
    assert r.warnings == ["a delegate was created (Created TensorFlow Lite delegate for GPU) but no node was given to "
                          "it: the model ran on the CPU (silent fallback)"]


PROFILE = """count=20 first=5000 curr=4900 min=4800 max=5100 avg=4950 std=70

Inference timings in us: Init: 1000, First inference: 5000, Warmup (avg): 5000, Inference (avg): 4950
Operator-wise Profiling Info for Regular Benchmark Runs:
============================== Run Order ==============================
\t             [node type]\t  [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t                 CONV_2D\t    0.000\t    2.100\t    2.050\t 41.414%\t 41.414%\t     0.000\t        1\t[model/head/Conv2D]
\t                     ADD\t    2.101\t    0.300\t    0.290\t  5.859%\t 47.273%\t     0.000\t        1\t[model/add/add]

============================== Summary by node type ==============================
\t             [Node type]\t  [count]\t  [avg ms]\t    [avg %]\t    [cdf %]\t  [mem KB]\t[times called]
\t                 CONV_2D\t       36\t     4.100\t    82.828%\t    82.828%\t     0.000\t       36
\t                     ADD\t       18\t     0.850\t    17.172%\t   100.000%\t     0.000\t       18
"""


def test_op_profiling_tables():
    r = parse_benchmark_output(PROFILE)
    assert r.op_profile["run_order"][0] == {"node_type": "CONV_2D", "first_ms": 2.1, "avg_ms": 2.05,
                                            "percent": 41.414, "mem_kb": 0.0, "times_called": 1,
                                            "name": "[model/head/Conv2D]"}
    assert [(t["node_type"], t["count"], t["avg_ms"]) for t in r.op_profile["by_node_type"]] == [
        ("CONV_2D", 36, 4.1), ("ADD", 18, 0.85)]


def test_failed_run_shows_the_error_lines():
    text = "STARTING!\nERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'\nERROR: Benchmarking failed.\n"
    with pytest.raises(BenchmarkParseError, match="benchmark_model failed: ERROR: Benchmarking failed.*version '6'"):
        parse_benchmark_output(text)


FULL = [FAKE_RUN.read_text(), OLD, GPU_FALLBACK, PROFILE] + [p.read_text(errors="replace") for p in COMPLETE]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=2000))
def test_random_text_never_crashes_and_never_yields_a_result(text):
    with pytest.raises(BenchmarkParseError):
        parse_benchmark_output(text)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(range(len(FULL))), st.data())
def test_truncated_output_never_yields_a_result_from_an_incomplete_run(index, data):
    text = FULL[index]
    summary_end = max(text.find("\n", i) + 1 for i in (text.find("Inference timings in us"),
                                                      text.find("Average inference timings in us")) if i >= 0)
    cut = data.draw(st.integers(0, len(text)))
    full = parse_benchmark_output(text)
    if cut < summary_end:
        with pytest.raises(BenchmarkParseError):
            parse_benchmark_output(text[:cut])
    else:
        r = parse_benchmark_output(text[:cut])
        assert (r.runs, r.avg_us, r.init_us, r.min_us, r.max_us) == (full.runs, full.avg_us, full.init_us, full.min_us,
                                                                     full.max_us)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([l for t in FULL for l in t.splitlines()] + ["garbage", "", "count=", "=1 2 3"]),
                max_size=60))
def test_shuffled_real_lines_never_crash(lines):
    try:
        r = parse_benchmark_output("\n".join(lines) + "\n")
    except BenchmarkParseError:
        return
    assert r.runs >= 1 and r.avg_us is not None


def test_captured_details_of_several_versions():
    r = parse_file(DATA / "percentiles_scientific_cpu_tf2_20.txt")
    assert (r.runs, r.avg_us, r.p5_us, r.median_us, r.p95_us) == (50, 1.24027e06, 1238753, 1239807, 1247415)
    assert (r.warmup_avg_us, r.mem_overall_mb) == (1.3576e06, 109.832)
    r = parse_file(DATA / "old_average_timings_op_profiling.txt")
    assert (r.runs, r.avg_us, r.init_us, r.warmup_avg_us) == (50, 79760.9, 38467, 83235)
    assert r.min_us == 77385 and r.op_profile["by_node_type"][0]["node_type"] == "CONV_2D"
    assert r.op_profile["run_order"][0]["first_ms"] == 4.269  # the [start] column is skipped
    r = parse_file(DATA / "nnapi_partial_logcat_tf2_9.txt")  # logcat prefixes
    assert (r.runs, r.avg_us, r.init_us) == (75, 12167.6, 126059)
    assert any("only part of the graph (44 delegate kernels)" in w for w in r.warnings)
    r = parse_file(DATA / "external_delegate_stray_line_tf2_15.txt")
    assert (r.delegate, r.delegated_nodes, r.total_nodes, r.runs) == ("Vx Delegate", 31, 31, 876)
    with pytest.raises(BenchmarkParseError, match="no complete timing summary"):
        parse_file(DATA / "nnapi_partial_op_profiling_tf2_4.txt")


def test_the_op_profiling_csv_file_is_read_from_its_regular_runs_section():
    from edgeprune.deploy.bench.parse import parse_op_profile_csv

    text = (DATA / "op_profile_edsr_csv.csv").read_text()
    profile = parse_op_profile_csv(text)
    assert len(profile["run_order"]) == 5  # not the initialisation's two nodes
    assert profile["run_order"][1]["times_called"] == 2 and profile["run_order"][1]["avg_ms"] == 0.6522
    assert sum(t["count"] for t in profile["by_node_type"]) == 5
    with pytest.raises(BenchmarkParseError, match="no 'Operator-wise Profiling Info for Regular Benchmark Runs:'"):
        parse_op_profile_csv(text.split("Operator-wise")[0])
    with pytest.raises(BenchmarkParseError, match="has no per-node rows"):
        parse_op_profile_csv("Operator-wise Profiling Info for Regular Benchmark Runs:\n")


@pytest.mark.parametrize("name", ["Aborted.tflite", "Permission denied/m.tflite", "Segmentation fault.tflite"])
def test_a_model_path_echoed_by_the_tool_is_not_a_failure(name):
    path = f"/data/local/tmp/edgeprune-1/{name}"
    text = FAKE_RUN.read_text().replace("/data/local/tmp/model.tflite", path)
    assert f"Graph: [{path}]" in text and f"Loaded model {path}" in text
    result = parse_benchmark_output(text)
    assert result.model == path and result.avg_us == 1820


@pytest.mark.parametrize("line", ["/system/bin/sh: /data/local/tmp/e/benchmark_model: can't execute: Permission denied",
                                  "Aborted", "Segmentation fault (core dumped)"])
def test_the_shells_failure_lines_are_still_failures(line):
    with pytest.raises(BenchmarkParseError, match="benchmark_model failed: " + re.escape(line)):
        parse_benchmark_output(FAKE_RUN.read_text() + line + "\n")
