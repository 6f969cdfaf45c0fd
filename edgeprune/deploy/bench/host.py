"""Host benchmark through LiteRT (``ai_edge_litert``) with its default XNNPACK delegate: benchmark_model's
semantics, run in a child process that loads nothing but LiteRT."""

import json
import os
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from edgeprune.deploy.bench.result import BenchResult, timing_stats
from edgeprune.core.checks import integer_at_least
from edgeprune.core.errors import EdgepruneError, InvalidArgumentError
from edgeprune.deploy.tflite_reader import TfliteGraph

TFLITE_MAGIC = b"TFL3"


def check_tflite_file(path) -> Path:
    """Raises unless ``path`` is an existing, complete-looking .tflite flatbuffer."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"model file '{path}' does not exist")
    head = path.read_bytes()[:8]
    if len(head) < 8 or head[4:8] != TFLITE_MAGIC:
        raise InvalidArgumentError(f"'{path}' is not a TFLite flatbuffer (no TFL3 identifier): is it truncated or "
                                   "another format?")
    return path


def worker_command(path, num_threads: int, warmup_runs: int, num_runs: int, max_secs: float = 0.0,
                   input_size=None) -> list[str]:
    """The command line of the host worker (:mod:`edgeprune.deploy.bench.host_worker`); with ``input_size`` (H, W)
    the worker resizes the model's input to it."""
    cmd = [sys.executable, "-m", "edgeprune.deploy.bench.host_worker", str(path), str(num_threads), str(warmup_runs),
           str(num_runs), str(max_secs)]
    return cmd + [str(int(d)) for d in input_size] if input_size else cmd


def worker_failure(path, stderr: str, input_size=None) -> EdgepruneError:
    """The one-line error for a host worker that exited with an error (its last line of stderr)."""
    last = ([l for l in stderr.strip().splitlines() if l.strip()][-1:] or ["no error output"])[0][:300]
    if "not a valid Flatbuffer" in last:
        return InvalidArgumentError(f"'{path}' is truncated or corrupt: LiteRT cannot read it as a flatbuffer")
    if input_size:
        size = "x".join(map(str, input_size))
        return InvalidArgumentError(f"LiteRT could not run '{path}' resized to {size} ({last}): export the model "
                                    f"at that size ('edgeprune export --input-size {size}') and give no --input-size")
    return EdgepruneError(f"LiteRT could not run '{path}': {last}")


def bench_host(model_path, num_threads: int = 1, warmup_runs: int = 1, num_runs: int = 50,
               max_secs: float = 0.0, timeout_s: float = 3600.0, input_size=None) -> BenchResult:
    """Benchmarks one .tflite file on this machine (random input data, as benchmark_model); with ``input_size``
    (H, W) at that input size (the graph resized by LiteRT), else at the file's own."""
    path = check_tflite_file(model_path)
    for name, value in (("--num-threads", num_threads), ("--warmup-runs", warmup_runs), ("--num-runs", num_runs)):
        integer_at_least(name, value)
    if input_size:
        from edgeprune.deploy.bench.traffic import analytical_bw

        analytical_bw(path, input_size)  # LiteRT's reference kernels refuse a graph that cannot take that size
    cmd = worker_command(path, num_threads, warmup_runs, num_runs, max_secs, input_size)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise EdgepruneError(f"the benchmark of '{path}' did not finish within {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        raise worker_failure(path, proc.stderr, input_size)
    raw = _worker_result(proc.stdout, path)
    partitions = raw["delegate_partitions"]
    warnings = [] if partitions else ["XNNPACK took no node of the graph: it ran on LiteRT's builtin CPU kernels"]
    stats = timing_stats(raw["timings_us"])
    return BenchResult(
        target="host", runner=f"ai_edge_litert {version('ai-edge-litert')} (XNNPACK)", model=str(path),
        model_size_bytes=path.stat().st_size, num_threads=num_threads, delegate="xnnpack" if partitions else None,
        init_us=raw["init_us"], first_us=raw["first_us"], warmup_avg_us=raw["warmup_avg_us"],
        mem_overall_mb=(raw["hwm_kb"] - raw["rss_before_kb"]) / 1024, mem_peak_rss_mb=raw["hwm_kb"] / 1024,
        total_nodes=len(TfliteGraph.read(path).ops), delegate_partitions=partitions,
        input_shapes=raw["input_shapes"], timings_us=raw["timings_us"], warnings=warnings, **stats,
    )


_WORKER_KEYS = ("init_us", "first_us", "warmup_avg_us", "timings_us", "rss_before_kb", "hwm_kb",
                "delegate_partitions", "input_shapes")


def _worker_result(stdout: str, path: Path) -> dict:
    """The host worker's JSON object, checked: anything else is a one-line error, never a traceback."""
    try:
        raw = json.loads(stdout)
    except ValueError:
        raw = None
    missing = [k for k in _WORKER_KEYS if k not in raw] if isinstance(raw, dict) else list(_WORKER_KEYS)
    if missing or not isinstance(raw["timings_us"], list) or not raw["timings_us"]:
        head = " ".join(stdout.split())[:80] or "nothing"
        raise EdgepruneError(f"the LiteRT benchmark worker gave no result for '{path}' (it printed {head!r}): "
                             "run it again; if it persists, check that ai-edge-litert is installed intact")
    return raw


def interleaved_latency(model_paths, num_threads: int = 1, rounds: int = 5, warmup_runs: int = 1) -> dict:
    """Median latency (us) of several models measured in one process, one run of each model per round, so load on a
    shared machine affects all alike. Returns {path: {"median_us", "timings_us"}}."""
    from ai_edge_litert.interpreter import Interpreter

    interpreters = {}
    rng = np.random.default_rng(0)
    for p in model_paths:
        it = Interpreter(model_path=str(check_tflite_file(p)), num_threads=num_threads)
        it.allocate_tensors()
        for d in it.get_input_details():
            it.set_tensor(d["index"], rng.random(d["shape"], dtype=np.float32).astype(d["dtype"]))
        for _ in range(warmup_runs):
            it.invoke()
        interpreters[str(p)] = it
    timings = {p: [] for p in interpreters}
    for _ in range(rounds):
        for p, it in interpreters.items():
            t0 = time.perf_counter()
            it.invoke()
            timings[p].append((time.perf_counter() - t0) * 1e6)
    return {p: {"median_us": float(np.median(t)), "timings_us": t} for p, t in timings.items()}


def bench_models(model_paths, num_threads: int = 1, warmup_runs: int = 1, num_runs: int = 50, max_secs: float = 0.0,
                 latency_profile=None, input_size=None, memory_traffic: bool = False, caches=None,
                 timeout_s: float = 3600.0) -> list[dict]:
    """Benchmarks each model (``bench_host``, at ``input_size`` where given); with a latency profile, adds the
    prediction and a side-by-side measurement: ``interleaved_median_us`` from runs of all models interleaved in one
    process; with ``memory_traffic``, the DRAM traffic per inference under Cachegrind
    (:func:`edgeprune.deploy.bench.traffic.measure_traffic`, at ``input_size`` or its default, with ``caches`` or the
    default hierarchy), the latency then measured natively at the same size."""
    paths = [check_tflite_file(p) for p in model_paths]
    profile = None
    if latency_profile:
        from edgeprune.graph.latency_profile import LatencyProfile

        profile = LatencyProfile.load(latency_profile)
    if memory_traffic:
        from edgeprune.deploy.bench import traffic

        traffic.find_valgrind()  # before anything runs
        input_size = tuple(input_size or traffic.DEFAULT_INPUT_SIZE)
    if profile and input_size:
        raise InvalidArgumentError("--latency-profile predicts a model at its own input size; leave out "
                                   "--input-size and --memory-traffic, or export the model at that size")
    results = [bench_host(p, num_threads, warmup_runs, num_runs, max_secs, timeout_s, input_size).to_dict()
               for p in paths]
    if memory_traffic:
        for path, result in zip(paths, results):
            result["memory_traffic"] = traffic.measure_traffic(path, input_size, caches or traffic.PHONE_CACHES,
                                                               num_threads=num_threads, timeout_s=timeout_s)
    if profile:
        from edgeprune.deploy.latency import predict_tflite

        side_by_side = interleaved_latency(paths, num_threads, rounds=max(3, min(num_runs, 15)))
        for path, result in zip(paths, results):
            predicted = predict_tflite(profile, TfliteGraph.read(path))["total_us"]
            measured = side_by_side[str(path)]["median_us"]
            result["latency_model"] = {"predicted_us": predicted, "interleaved_median_us": measured,
                                       "error": predicted / measured - 1, "profile": str(latency_profile)}
    return results
