"""Calibrating the latency model on an Android device or emulator: the single-layer models of a host calibration
(:func:`edgeprune.deploy.latency.calibration_set`), timed by TFLite's benchmark_model through adb and fitted into
the same :class:`~edgeprune.graph.latency_profile.LatencyProfile` (rooflines and conv output-channel tiles).

The device is chosen and the binary's ABI checked before anything is converted; the binary (once) and the models
(one push per file) go into one work folder under ``/data/local/tmp``, benchmark_model runs once per model, and the
folder is removed at the end, also when a run fails. Each layer's time is the median of its timed runs (the average when the
binary's output has no median, for every layer alike).
"""

import itertools
import tempfile
from pathlib import Path

from edgeprune.deploy.bench.adb import Adb, DeviceError
from edgeprune.deploy.bench.device import DeviceOptions, device_workdir, prepare_device, push_binary
from edgeprune.deploy.bench.parse import BenchmarkParseError, parse_benchmark_output
from edgeprune.deploy.conversion_models import conversion_shapes
from edgeprune.deploy.latency import (calibrated_models, calibration_set, converted_conversions, converted_layers,
                                      fit_profile, layer_sample)
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.graph.latency_profile import LatencyProfile

# one single-layer model's run; far above what any calibration layer takes, so only a hung device reaches it
RUN_TIMEOUT_S = 300.0
# the file name of the i-th calibration model, on this machine and on the device
MODEL_FILE_NAME = "layer-{index:03d}.tflite"


DEVICE_DTYPES = {"fp32": "none", "fp16": "fp16", "int8": "int8"}  # the profile's dtype -> convert's mode


def calibrate_device(models=None, input_size=(128, 128), num_threads: int = 1, runs: int = 5,
                     width_multipliers=(1.0, 0.75, 0.5), serial: str | None = None, binary=None,
                     adb: Adb | None = None, adb_path: str | None = None, progress=None,
                     dtype: str = "fp32") -> LatencyProfile:
    """Times the calibration models with benchmark_model (XNNPACK, ``num_threads``, one warm-up and ``runs`` timed
    runs each) on the device ``serial`` (or the only one attached) and fits the profile. ``progress(done, total)``
    is called once per model converted and once per model timed (``total`` = twice the models). ``dtype``: what
    the single-layer models are converted to (fp32, fp16 weights, or full-integer int8), the profile's dtype."""
    if dtype not in DEVICE_DTYPES:
        raise InvalidArgumentError(f"a device is calibrated for {', '.join(DEVICE_DTYPES)} models, not {dtype!r}")
    options = DeviceOptions(num_threads=num_threads, warmup_runs=1, num_runs=runs, peak_memory=False,
                            timeout_s=RUN_TIMEOUT_S)
    options.validate()
    adb = adb or Adb(adb_path, timeout_s=60)
    device, abi, binary = prepare_device(adb, serial, binary)
    name = adb.getprop("ro.product.model") or device.serial
    sdk = adb.getprop("ro.build.version.sdk")
    models = calibrated_models(models)
    layers = calibration_set(models, input_size, width_multipliers)
    # int8: the single-layer models have int8 input and output, and a float-input model's conversions are timed apart
    shapes = conversion_shapes(models, input_size) if dtype == "int8" else []
    count = len(layers) + 2 * len(shapes)
    total = 2 * count
    with tempfile.TemporaryDirectory(prefix="edgeprune-calibrate-") as local:
        converted = []
        stream = itertools.chain(converted_layers(layers, quantize=DEVICE_DTYPES[dtype]), converted_conversions(shapes))
        for i, (desc, content, features) in enumerate(stream):
            path = Path(local) / MODEL_FILE_NAME.format(index=i)
            path.write_bytes(content)
            converted.append((desc, path, features))
            if progress:
                progress(i + 1, total)
        with device_workdir(adb) as workdir:
            remote_bin = push_binary(adb, binary, workdir)
            for _, path, _ in converted:
                adb.push(path, f"{workdir}/{path.name}")
            results = []
            for i, (desc, path, _) in enumerate(converted):
                results.append(_run_layer(adb, remote_bin, f"{workdir}/{path.name}", options, desc))
                if progress:
                    progress(count + i + 1, total)
    statistic = "median" if all(r.median_us is not None for r in results) else "avg"
    samples = [layer_sample(desc, features, getattr(r, f"{statistic}_us"))
               for (desc, _, features), r in zip(converted, results)]
    profile = fit_profile(samples, "device", f"benchmark_model on {name} ({abi}, sdk {sdk}), XNNPACK", num_threads,
                          dtype)
    profile.fit["measured"] = f"benchmark_model's {statistic} of {runs} timed runs after 1 warm-up"
    return profile


def _run_layer(adb: Adb, remote_bin: str, remote_model: str, options: DeviceOptions, desc: str):
    """The parsed result of one complete benchmark_model run of a pushed model, or a DeviceError naming the layer."""
    try:
        proc = adb.shell([remote_bin] + options.flags(remote_model), timeout_s=options.timeout_s, check=False)
        return parse_benchmark_output(proc.stdout + proc.stderr, target="device", model=remote_model)
    except (BenchmarkParseError, DeviceError) as exc:
        raise DeviceError(f"layer '{desc}' did not run on the device: {exc}") from None
