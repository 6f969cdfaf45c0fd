"""``edgeprune bench``: one entry point for the host, a device, or a saved benchmark_model log, and what the
command prints."""

import json
import re
from pathlib import Path

from edgeprune.core.checks import device_only
from edgeprune.core.errors import InvalidArgumentError


def run_bench(model_paths, host: bool = False, device: str | None = None, parse_log=None, num_threads: int = 1,
              warmup_runs: int = 1, num_runs: int = 50, max_secs: float = 0.0, latency_profile=None,
              benchmark_binary=None, adb_path=None, use_gpu=False, use_nnapi=False, use_xnnpack=True,
              op_profiling=False, big_cores=False, memory_traffic=False, timeout_s: float | None = None,
              input_size=None, cache_specs=()) -> list[dict]:
    """The benchmark results (one schema for host, device and log) of ``model_paths``, run where the options say.
    ``input_size`` (H, W) and ``cache_specs`` (``--cache`` values, :func:`~edgeprune.deploy.bench.traffic.parse_caches`)
    apply to the host; ``timeout_s`` (default 900 s) to a device run and to a host's Cachegrind measurement. An
    option that means nothing where the run goes is refused, before anything runs."""
    modes = sum([bool(host), device is not None, parse_log is not None])
    if modes != 1:
        raise InvalidArgumentError("choose where to run: --host, --device [SERIAL] or --parse-log FILE (one of them)")
    if host and timeout_s is not None and not memory_traffic:
        raise InvalidArgumentError("--timeout limits a device run or a host --memory-traffic measurement: drop it, "
                                   "or add --memory-traffic")
    if host:
        device_only({"--benchmark-binary": benchmark_binary is not None, "--adb": adb_path is not None,
                     "--use-gpu": use_gpu, "--use-nnapi": use_nnapi, "--no-xnnpack": not use_xnnpack,
                     "--op-profiling": op_profiling, "--big-cores": big_cores})
    if device is not None and latency_profile is not None:
        raise InvalidArgumentError("--latency-profile predicts host latency: use it with --host (a device's profile "
                                   "goes to 'edgeprune report --latency-profile')")
    if parse_log is not None:
        from edgeprune.deploy.bench.parse import parse_benchmark_output

        path = Path(parse_log)
        if not path.is_file():
            raise InvalidArgumentError(f"log file '{path}' does not exist")
        return [parse_benchmark_output(path.read_text(errors="replace"), target="log").to_dict()]
    if not model_paths:
        raise InvalidArgumentError("give at least one MODEL.tflite")
    if cache_specs and not (host and memory_traffic):
        raise InvalidArgumentError("--cache sets the simulated caches of --host --memory-traffic; give those too")
    misplaced = [p for p in model_paths if re.match(r"(L1I|L1D|I1|D1|LL)=", str(p), re.I) and not Path(p).exists()]
    if misplaced:
        raise InvalidArgumentError(f"'{misplaced[0]}' is a --cache entry, not a model: quote the --cache value "
                                   "(--cache 'L1D=32K,8,64 LL=2M,16,64') or repeat --cache before each entry")
    if host:
        from edgeprune.deploy.bench.host import bench_models

        caches = None
        if memory_traffic:
            from edgeprune.deploy.bench.traffic import parse_caches

            caches = parse_caches(cache_specs)
        return bench_models(model_paths, num_threads, warmup_runs, num_runs, max_secs, latency_profile, input_size,
                            memory_traffic, caches, 900.0 if timeout_s is None else timeout_s)
    if input_size:
        raise InvalidArgumentError("--input-size applies to --host: a device runs the model at its exported size")
    from edgeprune.deploy.bench.adb import Adb
    from edgeprune.deploy.bench.device import DeviceOptions, bench_device

    options = DeviceOptions(num_threads=num_threads, warmup_runs=warmup_runs, num_runs=num_runs,
                            max_secs=max_secs or 150.0, use_xnnpack=use_xnnpack, use_gpu=use_gpu,
                            use_nnapi=use_nnapi, op_profiling=op_profiling, big_cores=big_cores,
                            memory_traffic=memory_traffic, timeout_s=900.0 if timeout_s is None else timeout_s)
    options.validate()
    adb = Adb(adb_path)
    return [bench_device(p, device or None, benchmark_binary, options, adb=adb).to_dict() for p in model_paths]


def bench_command(model_paths, as_json: bool = False, **options) -> tuple[str, list[str]]:
    """Runs :func:`run_bench` (``options``: its keyword arguments) and returns what the command prints: on stdout
    the results as JSON (one object for one model) or as a table, and on stderr one ``warning: ...`` line per
    warning of each result (the table only; JSON carries its warnings)."""
    from edgeprune.commands.render import bench_table

    results = run_bench(model_paths, **options)
    if as_json:
        return json.dumps(results[0] if len(results) == 1 else results), []
    return bench_table(results), [f"warning: {w}" for r in results for w in r.get("warnings", [])]
