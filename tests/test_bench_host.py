import numpy as np
import pytest

import subprocess

from edgeprune.deploy.bench import host
from edgeprune.deploy.bench.host import bench_host, interleaved_latency
from edgeprune.deploy.bench.host_worker import delegate_partitions
from edgeprune.deploy.bench.result import SCHEMA, timing_stats
from edgeprune.deploy.tflite_reader import TfliteGraph
from edgeprune.core.errors import EdgepruneError, InvalidArgumentError
from edgeprune.deploy.export import convert, fixed_shape_model
from edgeprune.core.runtime import keras, tf
from keras_models import build_edsr

DEVICE_KEYS = {"runs", "avg_us", "std_us", "min_us", "max_us", "median_us", "p95_us", "init_us", "first_us",
               "warmup_avg_us", "mem_overall_mb", "delegated_nodes", "total_nodes"}


@pytest.fixture(scope="module")
def tflite_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tfl")
    paths = []
    for width in (4, 8):
        path = d / f"w{width}.tflite"
        path.write_bytes(convert(fixed_shape_model(build_edsr(num_blocks=1, num_features=width), (16, 16))))
        paths.append(path)
    return paths


def test_timing_stats_exact():
    s = timing_stats([4, 1, 3, 2, 10])
    assert (s["runs"], s["avg_us"], s["min_us"], s["max_us"], s["median_us"]) == (5, 4.0, 1.0, 10.0, 3.0)
    assert s["std_us"] == pytest.approx(np.std([4, 1, 3, 2, 10]))
    assert s["p95_us"] == pytest.approx(np.percentile([4, 1, 3, 2, 10], 95))
    with pytest.raises(ValueError):
        timing_stats([])


def test_host_result_has_the_device_schema(tflite_files):
    r = bench_host(tflite_files[0], num_threads=1, warmup_runs=2, num_runs=7).to_dict()
    assert r["schema"] == SCHEMA and r["target"] == "host" and DEVICE_KEYS <= set(r)
    assert r["runs"] == 7 and len(r["timings_us"]) == 7
    assert r["min_us"] <= r["p5_us"] <= r["median_us"] <= r["p95_us"] <= r["max_us"]
    assert r["init_us"] > 0 and r["first_us"] > 0 and r["mem_peak_rss_mb"] > r["mem_overall_mb"] > 0
    assert r["input_shapes"] == [[1, 16, 16, 3]] and r["total_nodes"] > 0 and r["delegate_partitions"] >= 1


def test_interleaved_latency_measures_every_model(tflite_files):
    result = interleaved_latency(tflite_files, rounds=3)
    assert set(result) == {str(p) for p in tflite_files}
    assert all(len(v["timings_us"]) == 3 and v["median_us"] > 0 for v in result.values())


def test_bad_files_and_counts(tmp_path, tflite_files):
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        bench_host(tmp_path / "none.tflite")
    text = tmp_path / "x.tflite"
    text.write_text("hello world, not a model")
    with pytest.raises(InvalidArgumentError, match="is not a TFLite flatbuffer"):
        bench_host(text)
    truncated = tmp_path / "t.tflite"
    truncated.write_bytes(tflite_files[0].read_bytes()[:2000])
    with pytest.raises(InvalidArgumentError, match="is truncated or corrupt"):
        bench_host(truncated)
    with pytest.raises(InvalidArgumentError, match="--num-runs must be an integer >= 1, got 0"):
        bench_host(tflite_files[0], num_runs=0)


def test_the_delegate_is_recorded_only_when_it_took_a_partition(tmp_path, tflite_files):
    r = bench_host(tflite_files[0], num_runs=2).to_dict()
    assert r["delegate"] == "xnnpack" and r["delegate_partitions"] == 1 and r["warnings"] == []
    assert r["total_nodes"] == len(TfliteGraph.read(tflite_files[0]).ops)
    inputs = keras.Input((8, 8), batch_size=1)
    cumsum = tmp_path / "cumsum.tflite"  # CUMSUM: a builtin op XNNPACK does not take
    cumsum.write_bytes(convert(keras.Model(inputs, tf.math.cumsum(inputs, axis=1))))
    r = bench_host(cumsum, num_runs=2).to_dict()
    assert (r["delegate"], r["delegate_partitions"], r["total_nodes"]) == (None, 0, 1)
    assert r["warnings"] == ["XNNPACK took no node of the graph: it ran on LiteRT's builtin CPU kernels"]


def test_the_private_litert_call_the_worker_needs_is_still_there(tflite_files):
    """LiteRT's public API does not report delegation: if an upgrade moves ``_get_ops_details``, this fails."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite_files[0]))
    interpreter.allocate_tensors()
    assert delegate_partitions(interpreter) == 1


@pytest.mark.parametrize("stdout", ["", "Segmentation fault", "[1, 2]", '{"init_us": 1}',
                                    '{"init_us": 1, "first_us": 1, "warmup_avg_us": 1, "timings_us": [], '
                                    '"rss_before_kb": 1, "hwm_kb": 2, "delegate_partitions": 1, "input_shapes": []}'])
def test_a_worker_that_prints_no_result_is_a_one_line_error(monkeypatch, tflite_files, stdout):
    def fake_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 0, stdout=stdout, stderr="")

    monkeypatch.setattr(host.subprocess, "run", fake_run)
    with pytest.raises(EdgepruneError, match="the LiteRT benchmark worker gave no result for .* run it again") as info:
        bench_host(tflite_files[0])
    assert "\n" not in str(info.value)


def test_the_host_run_resizes_the_input_or_says_to_export_at_that_size(tmp_path, tflite_files):
    r = bench_host(tflite_files[0], num_runs=2, input_size=(8, 12)).to_dict()
    assert r["input_shapes"] == [[1, 8, 12, 3]] and r["runs"] == 2
    inputs = keras.Input((8, 8, 4), batch_size=1)  # RESHAPE holds its target shape as a constant
    fixed = tmp_path / "flat.tflite"
    fixed.write_bytes(convert(keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Reshape((256,))(inputs)))))
    with pytest.raises(InvalidArgumentError) as err:
        bench_host(fixed, num_runs=1, input_size=(16, 16))
    assert str(err.value).startswith(f"'{fixed}' cannot be resized to 16x16 (")
    assert str(err.value).endswith("): export it at that size ('edgeprune export --input-size 16x16')")
