"""The host as a pruning target: the cached host profile, profile files checked for pruning, and latency measured
on this host."""

import json

import numpy as np

import pytest

from edgeprune.deploy import host_profile as hp
from edgeprune.core.errors import FileFormatError, InvalidArgumentError
from edgeprune.graph.latency_profile import LatencyProfile
from edgeprune.core.runtime import keras
from conftest import TEST_HOST_PROFILE


def test_the_host_key_names_the_cpu_litert_and_threads():
    cpu = hp.cpu_description()
    assert cpu["machine"] and set(cpu["features"]) <= set(hp.KERNEL_FEATURES)
    assert hp.host_key(1) == hp.host_key(1) != hp.host_key(2)
    assert hp.host_profile_path(1).parent == hp.cache_dir() / "latency"


def test_an_int8_profile_of_the_earlier_calibration_is_not_reused_and_fp32_keys_stay(monkeypatch):
    """int8 calibrations changed (single-layer models with int8 input and output, conversions timed alone): their
    key moved on from calibration 3; fp32 ones did not, and keep the key they always had."""
    import hashlib
    from importlib.metadata import version

    from edgeprune.graph.latency_profile import PROFILE_SCHEMA

    def key(calibration, **dtype):
        identity = {"cpu": hp.cpu_description(), "litert": version("ai-edge-litert"), "threads": 1,
                    "schema": PROFILE_SCHEMA, "calibration": calibration, **dtype}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]

    assert hp.CALIBRATIONS == {"fp32": 3, "int8": 4}
    assert hp.host_key(1) == key(3)
    assert hp.host_key(1, "int8") == key(4, dtype="int8") != key(3, dtype="int8")


def test_the_host_profile_is_calibrated_once_then_read_from_the_cache(tmp_path, monkeypatch):
    from edgeprune.deploy import latency

    monkeypatch.setenv(hp.CACHE_ENV, str(tmp_path))
    calls = []

    def fake_calibrate(num_threads=1, progress=None, **_):  # stands in for minutes of timing; covered elsewhere
        calls.append(num_threads)
        return LatencyProfile(**{**TEST_HOST_PROFILE, "num_threads": num_threads})

    monkeypatch.setattr(latency, "calibrate_host", fake_calibrate)
    lines = []
    profile, source = hp.host_profile(2, echo=lines.append)
    assert calls == [2] and profile.num_threads == 2 and "calibrated now" in source
    assert lines[0].startswith("calibrating this host's fp32 latency profile once (2 thread(s))")
    path = hp.host_profile_path(2)
    assert json.loads(path.read_text())["num_threads"] == 2
    again, source = hp.host_profile(2)
    assert calls == [2] and again.to_dict() == profile.to_dict() and f"cached in {path}" in source
    path.write_text('{"schema": "edgeprune.latency-pro')  # a truncated cache file is calibrated afresh
    hp.host_profile(2)
    assert calls == [2, 2] and LatencyProfile.load(path).num_threads == 2


def test_profile_files_for_pruning_are_checked(tmp_path):
    path = tmp_path / "p.json"
    LatencyProfile(**{**TEST_HOST_PROFILE, "runner": "benchmark_model on Pixel 7 (arm64-v8a)"}).save(path)
    profile, source = hp.pruning_profile(path)
    assert profile.channel_tile == 4 and source.endswith(f"profile {path}")
    with pytest.raises(InvalidArgumentError, match="calibrated with 1 thread"):
        hp.pruning_profile(path, num_threads=4)
    LatencyProfile(**{**TEST_HOST_PROFILE, "runner": "tvm"}).save(path)
    with pytest.raises(FileFormatError, match="comes from runner 'tvm', not one edgeprune calibrates"):
        hp.pruning_profile(path)


def test_latency_is_measured_on_this_host_and_grows_with_the_work():
    def conv_model(width):
        inputs = keras.Input((None, None, 3))
        x = keras.layers.Conv2D(width, 3, padding="same")(inputs)
        return keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same")(x))

    measured = hp.measure_host_latency([conv_model(4), conv_model(128)], (64, 64), rounds=5)
    small, large = measured["us"]
    assert 0 < small < large  # 32 times the MAC
    assert measured["rounds"] == 5 and measured["num_threads"] == 1
    assert measured["runner"].startswith("ai_edge_litert") and measured["cpu"]


def test_int8_latency_is_measured_on_int8_graphs(monkeypatch):
    def conv_model(width):
        inputs = keras.Input((None, None, 3))
        x = keras.layers.Conv2D(width, 3, padding="same")(inputs)
        return keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same")(x))

    from edgeprune.deploy import export
    from edgeprune.deploy.tflite_reader import TfliteGraph

    converted, real_convert = [], export.convert
    monkeypatch.setattr(export, "convert", lambda *a: converted.append(real_convert(*a)) or converted[-1])
    samples = [np.random.default_rng(i).random((1, 32, 32, 3), dtype=np.float32) for i in range(2)]
    measured = hp.measure_host_latency([conv_model(4), conv_model(128)], (32, 32), rounds=3, quantize="int8",
                                       calib_samples=samples)
    assert 0 < measured["us"][0] < measured["us"][1] and measured["runner"].endswith("(XNNPACK), int8")
    assert len(converted) == 2 and [TfliteGraph(c).weight_dtype() for c in converted] == ["INT8", "INT8"]
    with pytest.raises(InvalidArgumentError, match="latency is measured for none or fp16 or int8 TFLite, not 'int4'"):
        hp.measure_host_latency([conv_model(4)], (32, 32), rounds=1, quantize="int4")
    with pytest.raises(InvalidArgumentError, match="int8 quantisation needs calibration data"):
        hp.measure_host_latency([conv_model(4)], (32, 32), rounds=1, quantize="int8")
