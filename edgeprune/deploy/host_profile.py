"""The host as a pruning target: its latency profile, calibrated once per machine and cached, a profile file checked
for pruning with, and Keras models' latency measured here (fp32, fp16 or int8 TFLite, LiteRT with XNNPACK, interleaved runs).

The cache lives in ``$EDGEPRUNE_CACHE_DIR`` (default ``~/.cache/edgeprune``) under ``latency/``, one file per
*host key*: the CPU model, the SIMD features XNNPACK chooses its kernels by, the machine type, the LiteRT version,
the thread count, the profile schema and the calibration's version for the dtype (:data:`CALIBRATIONS`). A machine of another
kind, another LiteRT or a changed calibration calibrates afresh.
"""

import hashlib
import json
import platform
import tempfile
from pathlib import Path

from edgeprune.core.cache import CACHE_ENV, cache_dir  # noqa: F401 (CACHE_ENV: re-exported for callers)
from edgeprune.core.errors import FileFormatError, InvalidArgumentError

# CPU features that select XNNPACK's f32 kernels (x86 and Arm); the rest of /proc/cpuinfo's flags do not matter
KERNEL_FEATURES = ("sse4_1", "sse4_2", "avx", "f16c", "fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq",
                   "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "asimd", "asimdhp", "asimddp", "fphp",
                   "sve", "sve2", "i8mm", "bf16")
# how edgeprune.deploy.latency calibrates each dtype (part of the cache key: profiles of an earlier rule are
# calibrated afresh). 3: the main conv tile is fitted on the widths above 16 only (four idle calibrations of one
# AVX-512 host chose 32 twice and 16 twice when every width of the sweep counted: BENCHMARKS.md, "The calibration's
# tile choice"). int8 4: the single-layer models have int8 input and output, and the QUANTIZE and DEQUANTIZE of a
# float-input model are timed alone (BENCHMARKS.md, "Host latency model: calibration and whole-model predictions")
CALIBRATIONS = {"fp32": 3, "int8": 4}


def cpu_description() -> dict:
    """This machine's CPU model and kernel-relevant features (from /proc/cpuinfo where there is one)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and value.strip():
            model = value.strip()
        elif key in ("flags", "features"):
            flags.update(value.split())
    return {"model": model, "machine": platform.machine(), "features": [f for f in KERNEL_FEATURES if f in flags]}


def cpu_label(cpu: dict | None = None) -> str:
    cpu = cpu or cpu_description()
    return f"{cpu['model']} ({' '.join(cpu['features']) or 'no listed SIMD features'})"


def host_key(num_threads: int, dtype: str = "fp32") -> str:
    """The cache key of this host's profile at ``num_threads`` for models deployed in ``dtype``."""
    from importlib.metadata import version

    from edgeprune.graph.latency_profile import PROFILE_SCHEMA

    identity = {"cpu": cpu_description(), "litert": version("ai-edge-litert"), "threads": num_threads,
                "schema": PROFILE_SCHEMA, "calibration": CALIBRATIONS[dtype],
                **({"dtype": dtype} if dtype != "fp32" else {})}  # fp32 keys are those of profiles before dtypes
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def host_profile_path(num_threads: int, dtype: str = "fp32") -> Path:
    return cache_dir() / "latency" / f"host-{host_key(num_threads, dtype)}.json"


def host_profile(num_threads: int = 1, echo=None, progress=None, dtype: str = "fp32"):
    """(profile, source) of this host at ``num_threads`` for models deployed in ``dtype`` (fp32 or int8): the cached
    one, or calibrated now (about 30 s on an AVX-512 host, 2 minutes on a 2-core AVX2 one; int8 conversions take
    longer) and cached. An unreadable cache file is calibrated afresh."""
    from edgeprune.graph.latency_profile import LatencyProfile

    path = host_profile_path(num_threads, dtype)
    where = f"this host, {cpu_label()}"
    if path.is_file():
        try:
            return LatencyProfile.load(path), f"{where}; profile cached in {path}"
        except FileFormatError:
            pass
    if echo:
        echo(f"calibrating this host's {dtype} latency profile once ({num_threads} thread(s)); cached in {path}")
    from edgeprune.deploy.latency import calibrate_host

    profile = calibrate_host(num_threads=num_threads, progress=progress, dtype=dtype)
    profile.save(path)
    return profile, f"{where}; profile calibrated now, cached in {path}"


def pruning_profile(path, num_threads: int | None = None, dtype: str | None = None):
    """(profile, source) of a profile file to prune with: written by 'edgeprune calibrate' (its schema and runner),
    calibrated at ``num_threads`` and for ``dtype`` when those are given."""
    from edgeprune.graph.latency_profile import LatencyProfile, check_pruning_profile

    profile = LatencyProfile.load(path)
    check_pruning_profile(profile, f"'{path}'")
    if dtype is not None and profile.dtype != dtype:
        raise InvalidArgumentError(f"latency profile '{path}' prices {profile.dtype} models, not the {dtype} model "
                                   f"--deploy-dtype asks for: calibrate with --quantize {dtype}, or give "
                                   f"--deploy-dtype {profile.dtype}")
    if num_threads is not None and profile.num_threads != num_threads:
        raise InvalidArgumentError(f"latency profile '{path}' was calibrated with {profile.num_threads} thread(s), "
                                   f"not --num-threads {num_threads}: calibrate again with --num-threads "
                                   f"{num_threads}, or leave --num-threads out")
    return profile, f"{profile.target}, {profile.runner}; profile {path}"


LATENCY_MODES = ("none", "fp16", "int8")  # what measure_host_latency converts to (none = fp32)


def measure_host_latency(models, input_size, num_threads: int = 1, rounds: int = 15, warmup_runs: int = 2,
                         quantize: str = "none", calib_samples=None) -> dict:
    """Median latency (us) of Keras ``models`` exported as TFLite at ``input_size`` (fp32, or ``quantize`` as
    :func:`~edgeprune.deploy.export.convert` takes it: int8 needs ``calib_samples``, arrays of the input's shape),
    timed with LiteRT (its default XNNPACK delegate) in this process, one run of each model per round (so load on a
    shared machine affects all alike). Returns {"us": [per model], "rounds", "num_threads", "runner", "cpu"}."""
    from importlib.metadata import version

    from edgeprune.deploy.bench.host import interleaved_latency
    from edgeprune.deploy.export import convert, fixed_shape_model

    if quantize not in LATENCY_MODES:
        raise InvalidArgumentError(f"latency is measured for {' or '.join(LATENCY_MODES)} TFLite, not {quantize!r}")

    with tempfile.TemporaryDirectory(prefix="edgeprune-latency-") as tmp:
        paths = []
        for i, model in enumerate(models):
            path = Path(tmp) / f"model{i}.tflite"
            path.write_bytes(convert(fixed_shape_model(model, tuple(input_size)), quantize, calib_samples))
            paths.append(path)
        timed = interleaved_latency(paths, num_threads, rounds=rounds, warmup_runs=warmup_runs)
    return {"us": [timed[str(p)]["median_us"] for p in paths], "rounds": rounds, "num_threads": num_threads,
            "runner": f"ai_edge_litert {version('ai-edge-litert')} (XNNPACK), "
                      f"{'fp32' if quantize == 'none' else quantize}", "cpu": cpu_label()}
