"""``edgeprune calibrate --host | --device [SERIAL]``: time single-layer TFLite models on this machine (LiteRT,
:mod:`edgeprune.deploy.latency`) or on an Android device or emulator (benchmark_model through adb,
:mod:`edgeprune.deploy.device_calibration`) and fit the latency model."""

from pathlib import Path

from edgeprune.core.checks import device_only, integer_at_least
from edgeprune.core.errors import InvalidArgumentError


def check_calibrate_options(out_path, model_specs, num_threads, runs, include_references: bool = True,
                            host: bool = True, device: str | None = None, benchmark_binary=None,
                            adb_path=None, dtype: str = "fp32") -> None:
    """Raises unless the options name one target and something to calibrate and a profile file to write and, for a
    device, unless adb finds it ready and benchmark_model is there for its ABI: checked before any layer is
    converted or timed (and before the CLI draws its progress bar). ``device`` is None (not asked), "" (the one
    attached) or a serial."""
    if host and device is not None:
        raise InvalidArgumentError("choose one target to calibrate: --host or --device [SERIAL], not both")
    if not host and device is None:
        raise InvalidArgumentError("choose what to calibrate: --host (this machine) or --device [SERIAL] (an "
                                   "Android device or emulator through adb)")
    if host and dtype == "fp16":
        raise InvalidArgumentError("--quantize fp16 is calibrated on a device: this host's XNNPACK runs an fp16 model's"
                                   " weights dequantized to fp32, so its fp32 profile prices it (leave --quantize out)")
    if host:
        device_only({"--benchmark-binary": benchmark_binary is not None, "--adb": adb_path is not None})
    integer_at_least("--runs", runs)
    integer_at_least("--num-threads", num_threads)
    if not str(out_path).endswith(".json"):
        raise InvalidArgumentError(f"output '{out_path}' must end in .json")
    if not include_references and not model_specs:
        raise InvalidArgumentError("nothing to calibrate: give --model, or leave out --only-given-models")
    if device is not None:
        from edgeprune.deploy.bench.adb import Adb
        from edgeprune.deploy.bench.device import prepare_device

        if benchmark_binary is not None and not Path(benchmark_binary).is_file():
            raise InvalidArgumentError(f"benchmark_model binary '{benchmark_binary}' does not exist")
        prepare_device(Adb(adb_path, timeout_s=60), device or None, benchmark_binary)


def calibrate_command(out_path, model_specs, input_size, num_threads, runs, progress=None,
                      include_references: bool = True, width_multipliers=(1.0, 0.75, 0.5), host: bool = True,
                      device: str | None = None, benchmark_binary=None, adb_path=None, dtype: str = "fp32"):
    """EDSR, SID and the given models' layer shapes, converted to ``dtype`` (fp32, fp16 on a device, int8) and timed
    on this machine (``host``) or on the device ``device`` ("" for the one attached); writes the profile to
    ``out_path`` and returns it."""
    check_calibrate_options(out_path, model_specs, num_threads, runs, include_references, host, device,
                            benchmark_binary, adb_path, dtype)
    import keras_models
    from edgeprune.core.modelio import resolve_model

    models = [keras_models.build_reference("edsr"), keras_models.build_reference("sid")] if include_references else []
    models += [resolve_model(spec).model for spec in model_specs]
    if host:
        from edgeprune.deploy.latency import calibrate_host

        profile = calibrate_host(models, input_size, num_threads, runs, width_multipliers, progress=progress,
                                 dtype=dtype)
    else:
        from edgeprune.deploy.device_calibration import calibrate_device

        profile = calibrate_device(models, input_size, num_threads, runs, width_multipliers, serial=device or None,
                                   binary=benchmark_binary, adb_path=adb_path, progress=progress, dtype=dtype)
    profile.save(out_path)
    return profile
