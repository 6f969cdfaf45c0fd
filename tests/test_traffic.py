"""DRAM traffic under Cachegrind: the cache options, the output parser, the failure paths, and what tiny conv models
move per inference through a simulated cache smaller than their working set."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from edgeprune.commands.bench import run_bench
from edgeprune.core.errors import EdgepruneError, InvalidArgumentError, MissingDependencyError
from edgeprune.core.runtime import keras
from edgeprune.deploy.bench import traffic
from edgeprune.deploy.bench.traffic import (Cache, PHONE_CACHES, analytical_bw, measure_traffic, parse_cachegrind,
                                            parse_caches, xnnpack_kernels)
from edgeprune.deploy.export import convert

needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")

SMALL = parse_caches("L1D=8K,2,64 LL=64K,8,64")
"""A 64 KiB last level: smaller than the working set of every model below."""


def conv_model(channels=(16, 16), size=32):
    """Convs of 3x3, 'same' padding, 16 input channels, one per entry of ``channels`` (its output width)."""
    x = inputs = keras.Input((size, size, 16), batch_size=1)
    for width in channels:
        x = keras.layers.Conv2D(width, 3, padding="same")(x)
    return convert(keras.Model(inputs, x))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("traffic")
    paths = {"one": d / "one.tflite", "two": d / "two.tflite", "two_pruned": d / "two_pruned.tflite"}
    paths["one"].write_bytes(conv_model((16,)))
    paths["two"].write_bytes(conv_model((32, 16)))
    paths["two_pruned"].write_bytes(conv_model((16, 16)))  # the slim model left by pruning half the middle width
    return paths


@pytest.fixture(scope="module")
def measured(models):
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    return {"one": measure_traffic(models["one"], (32, 32), SMALL),
            "one_4x": measure_traffic(models["one"], (64, 64), SMALL),
            "two": measure_traffic(models["two"], None, SMALL),
            "two_pruned": measure_traffic(models["two_pruned"], None, SMALL)}


def test_cache_options_replace_the_named_levels_of_the_phone_default():
    assert parse_caches(None) is PHONE_CACHES
    assert PHONE_CACHES.options() == ["--I1=65536,4,64", "--D1=65536,4,64", "--LL=2097152,16,64"]
    custom = parse_caches(["L1D=32K,8,64 LL=2M,16,64", "l1i=16k,4,64"])
    assert (custom.l1i, custom.l1d, custom.ll) == (Cache(16384, 4, 64), Cache(32768, 8, 64), Cache(2097152, 16, 64))
    assert custom.name == "custom (L1D=32K,8,64 LL=2M,16,64 l1i=16k,4,64)"
    assert parse_caches("D1=512,2,64 LL=3M,12,64").ll == Cache(3 * 1024 ** 2, 12, 64)


@pytest.mark.parametrize("spec, message", [
    ("L2=1M,8,64", "--cache entry 'L2=1M,8,64' is not LEVEL=SIZE,WAYS,LINE with LEVEL one of L1I, L1D, LL"),
    ("LL=2M,16", "--cache entry 'LL=2M,16' is not LEVEL=SIZE,WAYS,LINE"),
    ("LL=2M,x,64", "--cache entry 'LL=2M,x,64': ways and line size must be integers"),
    ("LL=2G,16,64", "cache size '2G' is not a size: give bytes, or K or M (e.g. 32K, 2M)"),
    ("LL=3000000,16,64", "cache LL=3000000,16,64: size / (ways x line) must be a power of two (the number of sets)"),
    ("L1D=32K,8,8", "cache L1D=32768,8,8: the line size must be a power of two of at least 16 bytes"),
    ("LL=2M,0,64", "cache LL=2097152,0,64: size, ways and line size must be positive"),
])
def test_bad_cache_options_are_refused_with_what_to_give(spec, message):
    with pytest.raises(InvalidArgumentError) as err:
        parse_caches(spec)
    assert str(err.value).startswith(message)


def test_cache_options_need_host_memory_traffic_and_quoting(models):
    with pytest.raises(InvalidArgumentError, match="^--cache sets the simulated caches of --host --memory-traffic"):
        run_bench([models["one"]], host=True, cache_specs=("LL=2M,16,64",))
    with pytest.raises(InvalidArgumentError, match="^'LL=2M,16,64' is a --cache entry, not a model: quote the"):
        run_bench([models["one"], "LL=2M,16,64"], host=True, memory_traffic=True, cache_specs=("L1D=32K,8,64",))
    with pytest.raises(InvalidArgumentError, match="^--input-size applies to --host"):
        run_bench([models["one"]], device="", input_size=(16, 16))


def test_cachegrind_output_is_parsed_into_totals_and_kernels():
    text = ("desc: I1 cache: 65536 B, 64 B, 4-way associative\ncmd: python w.py\nevents: Ir I1mr ILmr Dr D1mr DLmr Dw "
            "D1mw DLmw\nfl=???\nfn=xnn_f32_igemm_minmax_ukernel_5x16__fma3_broadcast_prfm\n0 700 0 0 100 10 2 0 0 0\n"
            "fn=xnn_f32_vadd_minmax_ukernel__avx_u16\n0 100 0 0 10 1 0 5 0 0\n0 100 0 0 0 0 0 0 0 0\n"
            "fl=Python/ceval.c\nfn=_PyEval_EvalFrameDefault\n12 5000 3 1 2000 4 1 900 2 1\n"
            "summary: 5900 3 1 2110 15 3 905 2 1\n")
    totals, per_fn = parse_cachegrind(text)
    assert totals == {"Ir": 5900, "I1mr": 3, "ILmr": 1, "Dr": 2110, "D1mr": 15, "DLmr": 3, "Dw": 905, "D1mw": 2,
                      "DLmw": 1}
    assert per_fn["xnn_f32_vadd_minmax_ukernel__avx_u16"] == 200 and per_fn["_PyEval_EvalFrameDefault"] == 5000
    kernels = xnnpack_kernels(per_fn)
    assert kernels["isa"] == "fma3" and kernels["isa_share"] == {"fma3": 0.7778, "avx": 0.2222}
    assert kernels["top"][0] == ["xnn_f32_igemm_minmax_ukernel_5x16__fma3_broadcast_prfm", 0.7778]
    assert xnnpack_kernels({"main": 10}) == {"isa": None, "isa_share": {}, "top": []}
    with pytest.raises(EdgepruneError, match="^Cachegrind wrote no complete output file"):
        parse_cachegrind("events: Ir\n")


def test_analytical_bw_at_a_resized_input_is_exact(models, tmp_path):
    own = analytical_bw(models["one"])
    assert own == {"mac": 2359296, "weights": 2304, "activations": 32768, "bw_elements": 35072, "bw_bytes": 140288,
                   "dtype": "fp32", "input_size": [32, 32]}
    resized = analytical_bw(models["one"], (64, 64))
    assert (resized["mac"], resized["activations"], resized["bw_bytes"]) == (4 * 2359296, 131072, 533504)
    inputs = keras.Input((8, 8, 4), batch_size=1)  # RESHAPE holds its target shape as a constant
    flat = tmp_path / "flat.tflite"
    flat.write_bytes(convert(keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Reshape((256,))(inputs)))))
    with pytest.raises(InvalidArgumentError) as err:
        analytical_bw(flat, (16, 16))
    assert str(err.value).startswith(f"'{flat}' cannot be resized to 16x16 (")
    assert str(err.value).endswith("): export it at that size ('edgeprune export --input-size 16x16')")


def test_a_missing_valgrind_is_one_line_that_says_how_to_install_it(models, tmp_path, monkeypatch):
    monkeypatch.setattr(traffic.shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match="install it with 'apt-get install valgrind'"):
        measure_traffic(models["one"])
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = subprocess.run([sys.executable, "-m", "edgeprune.cli", "bench", "--host", "--memory-traffic",
                           str(models["one"])], capture_output=True, text=True, env={**os.environ, "PATH": str(empty)},
                          timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("Error: valgrind is not installed (--memory-traffic on the host runs Cachegrind): install "
                           "it with 'apt-get install valgrind'\n")


@needs_valgrind
def test_a_measurement_past_the_timeout_is_stopped_and_reported(models, monkeypatch):
    started = []
    popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(traffic.subprocess, "Popen", recording_popen)
    with pytest.raises(EdgepruneError) as err:
        measure_traffic(models["one"], (32, 32), SMALL, timeout_s=1)
    assert str(err.value) == (f"the memory-traffic measurement of '{models['one']}' did not finish within 1 s and was "
                              "stopped: give a smaller --input-size or a larger --timeout")
    runs = [p for p in started if "--tool=cachegrind" in p.args]
    assert len(runs) == 2 and [p.returncode for p in runs] == [-9, -9]  # both killed


def test_the_result_has_the_device_paths_traffic_keys(measured):
    t = measured["one"]
    assert {"events_per_inference", "line_bytes", "bytes_per_inference", "method"} <= set(t)
    events, line = t["events_per_inference"], t["line_bytes"]
    assert line == 64 and t["runs"] == 1 and t["input_size"] == [32, 32] and t["caches"] == SMALL.to_dict()
    assert t["read_bytes_per_inference"] == (events["DLmr"] + events["ILmr"]) * 64
    assert t["write_bytes_per_inference"] == events["DLmw"] * 64
    assert t["bytes_per_inference"] == t["read_bytes_per_inference"] + t["write_bytes_per_inference"]
    assert t["traffic_to_bw"] == t["bytes_per_inference"] / 140288


def test_valgrind_runs_xnnpack_kernels_without_avx512(measured):
    kernels = measured["one"]["xnnpack"]
    assert kernels["isa"] is not None and not kernels["isa"].startswith("avx512")
    assert all(not isa.startswith("avx512") for isa in kernels["isa_share"])
    assert kernels["top"][0][0].startswith("xnn_f32_")  # a float conv micro-kernel ran the conv


def test_a_conv_larger_than_the_cache_moves_at_least_its_weights_input_and_output(measured):
    t = measured["one"]
    assert t["analytical"]["bw_bytes"] == 4 * (16 * 16 * 9 + 2 * 32 * 32 * 16) == 140288 > SMALL.ll.size
    assert t["bytes_per_inference"] >= 140288


def test_a_4x_larger_input_moves_at_least_3x_the_traffic(measured):
    assert measured["one_4x"]["analytical"]["activations"] == 4 * measured["one"]["analytical"]["activations"]
    assert measured["one_4x"]["bytes_per_inference"] >= 3 * measured["one"]["bytes_per_inference"]


def test_halving_the_middle_width_cuts_traffic_near_the_analytical_ratio(measured):
    """Analytical BW: 16->32->16 convs at 32x32 move 4 x (9216 + 98304) bytes, the 16->16->16 slim model 4 x (4608 +
    65536): ratio 0.652. Neither fits the 64 KiB LL, so each tensor crosses it once per write and once per read, as
    the model counts; what the model leaves out (XNNPACK's indirection buffers of 9 pointers per output pixel, code,
    the interpreter's own data) does not depend on the pruned width. So traffic = BW + X with the same X for both,
    and the measured ratio (B_p + X) / (B_b + X) lies between the analytical ratio and 1."""
    base, pruned = measured["two"], measured["two_pruned"]
    bw_b, bw_p = base["analytical"]["bw_bytes"], pruned["analytical"]["bw_bytes"]
    assert (bw_b, bw_p) == (430080, 280576)
    analytical_ratio = bw_p / bw_b
    ratio = pruned["bytes_per_inference"] / base["bytes_per_inference"]
    assert pruned["bytes_per_inference"] < base["bytes_per_inference"]
    assert analytical_ratio - 0.02 <= ratio < 1
    excess_b, excess_p = base["bytes_per_inference"] - bw_b, pruned["bytes_per_inference"] - bw_p
    assert abs(excess_b - excess_p) <= 0.05 * bw_b


@needs_valgrind
def test_bench_host_memory_traffic_prints_the_caches_and_writes_the_schema(models):
    cmd = [sys.executable, "-m", "edgeprune.cli", "bench", "--host", "--memory-traffic", str(models["one"]),
           "--cache", "L1D=8K,2,64", "--cache", "LL=64K,8,64", "--num-runs", "2"]
    table = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert table.returncode == 0, table.stderr
    assert ("DRAM traffic simulated by Cachegrind, caches custom (L1D=8K,2,64 LL=64K,8,64): L1I 65,536 B 4-way 64 B, "
            "L1D 8,192 B 2-way 64 B, LL 65,536 B 8-way 64 B") in table.stdout
    assert "traffic input, dtype        16x16, fp32" in table.stdout
    result = json.loads(subprocess.run(cmd + ["--json", "--input-size", "32x32"], capture_output=True, text=True,
                                       timeout=600).stdout)
    assert result["schema"] == "edgeprune.bench/1" and result["input_shapes"] == [[1, 32, 32, 16]]
    assert result["memory_traffic"]["analytical"]["bw_bytes"] == 140288
    assert result["memory_traffic"]["bytes_per_inference"] >= 140288
