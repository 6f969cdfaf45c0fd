"""On-device benchmarking: push benchmark_model and a model with adb, run it, parse its output into the shared
result schema, optionally count memory traffic with simpleperf, and always clean up what was pushed. Its pieces
(``prepare_device``: selection and the ABI check; ``device_workdir``: a folder that is always removed;
``push_binary``) also serve device calibration (:mod:`edgeprune.deploy.device_calibration`)."""

import os
import re
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from edgeprune.deploy.bench.adb import Adb, Device, DeviceError
from edgeprune.deploy.bench.host import check_tflite_file
from edgeprune.deploy.bench.parse import BenchmarkParseError, parse_benchmark_output, parse_op_profile_csv
from edgeprune.deploy.bench.result import BenchResult
from edgeprune.core.checks import integer_at_least
from edgeprune.core.errors import InvalidArgumentError

DEVICE_ROOT = "/data/local/tmp"
# ELF e_machine of each Android ABI
ABI_MACHINES = {"arm64-v8a": 183, "armeabi-v7a": 40, "armeabi": 40, "x86_64": 62, "x86": 3}
MACHINE_NAMES = {183: "aarch64 (arm64-v8a)", 40: "arm (armeabi-v7a)", 62: "x86_64", 3: "x86"}
CACHE_ENV = "EDGEPRUNE_BENCHMARK_MODEL_DIR"
# ARMv8 PMU events simpleperf knows by these names; refills are counted in cache lines
TRAFFIC_EVENTS = ("raw-l3d-cache-refill", "raw-l2d-cache-refill", "raw-bus-access")


@dataclass
class DeviceOptions:
    num_threads: int = 1
    warmup_runs: int = 1
    num_runs: int = 50
    max_secs: float = 150.0
    use_xnnpack: bool = True
    use_gpu: bool = False
    use_nnapi: bool = False
    op_profiling: bool = False
    peak_memory: bool = True
    big_cores: bool = False
    memory_traffic: bool = False
    timeout_s: float = 900.0

    def validate(self) -> None:
        for name in ("num_threads", "warmup_runs", "num_runs"):
            integer_at_least(f"--{name.replace('_', '-')}", getattr(self, name))
        if self.use_gpu and self.use_nnapi:
            raise InvalidArgumentError("choose one accelerator delegate: --use-gpu or --use-nnapi")
        if self.memory_traffic and self.num_runs < 2:
            raise InvalidArgumentError("--memory-traffic needs --num-runs of at least 2 (it subtracts the count of a "
                                       f"one-run pass), got {self.num_runs}")

    def flags(self, graph: str, num_runs: int | None = None) -> list[str]:
        flags = [f"--graph={graph}", f"--num_threads={self.num_threads}", f"--warmup_runs={self.warmup_runs}",
                 f"--num_runs={num_runs or self.num_runs}", "--min_secs=0", "--warmup_min_secs=0",
                 f"--max_secs={self.max_secs:g}", f"--use_xnnpack={str(self.use_xnnpack).lower()}"]
        if self.use_gpu:
            flags.append("--use_gpu=true")
        if self.use_nnapi:
            flags.append("--use_nnapi=true")
        if self.peak_memory:
            flags.append("--report_peak_memory_footprint=true")
        return flags


def elf_machine(path) -> int:
    """ELF e_machine of a local binary, or InvalidArgumentError if it is not an ELF executable."""
    with open(path, "rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        raise InvalidArgumentError(f"'{path}' is not an ELF executable: give the benchmark_model binary for Android")
    order = "little" if head[5] == 1 else "big"
    return int.from_bytes(head[18:20], order)


def find_benchmark_binary(explicit, abi: str) -> Path:
    """The user's binary, or ``$EDGEPRUNE_BENCHMARK_MODEL_DIR/<abi>/benchmark_model`` (default cache folder
    ``~/.cache/edgeprune/benchmark_model``)."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise InvalidArgumentError(f"benchmark_model binary '{path}' does not exist")
        return path
    root = Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "edgeprune" / "benchmark_model"))
    path = root / abi / "benchmark_model"
    if not path.is_file():
        raise InvalidArgumentError(f"no benchmark_model for {abi}: put TFLite's prebuilt binary at '{path}' or give "
                                   "--benchmark-binary (see android_bench/README.md for where to get it)")
    return path


def check_binary_abi(binary, abi: str) -> None:
    machine = elf_machine(binary)
    wanted = ABI_MACHINES.get(abi)
    if wanted is None:
        raise DeviceError(f"the device reports an unknown ABI '{abi}'")
    if machine != wanted:
        raise InvalidArgumentError(f"'{binary}' is built for {MACHINE_NAMES.get(machine, f'machine {machine}')}, but "
                                   f"the device's ABI is {abi}: use the benchmark_model build for {abi}")


def big_core_mask(adb: Adb) -> tuple[str, list[int]]:
    """taskset mask (hex) of the CPUs with the highest maximum frequency, read from cpufreq."""
    out = adb.shell(["sh", "-c", "for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq; do "
                     "echo \"$f $(cat \"$f\")\"; done"], check=False).stdout
    freqs = {}
    for line in out.splitlines():
        m = re.search(r"/cpu(\d+)/cpufreq/cpuinfo_max_freq\s+(\d+)", line)
        if m:
            freqs[int(m[1])] = int(m[2])
    if not freqs:
        raise DeviceError("cannot read CPU frequencies from /sys/devices/system/cpu/*/cpufreq on the device")
    top = max(freqs.values())
    cores = sorted(c for c, f in freqs.items() if f == top)
    return format(sum(1 << c for c in cores), "x"), cores


def parse_simpleperf_stat(text: str) -> dict[str, int]:
    """Event counts from ``simpleperf stat`` output (its table or its --csv form)."""
    counts = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+([\w:.-]+)", line) or re.match(r"^\s*(\d+),([\w:.-]+),", line)
        if m:
            counts[m[2]] = int(m[1].replace(",", ""))
    return counts


def prepare_device(adb: Adb, serial: str | None, binary) -> tuple[Device, str, Path]:
    """Selects the device (by serial, or the only one), reads its ABI and finds the benchmark_model binary for it,
    refusing one built for another ABI before anything is pushed. Returns (device, abi, binary)."""
    device = adb.select(serial)
    abi = adb.getprop("ro.product.cpu.abi")
    binary = find_benchmark_binary(binary, abi)
    check_binary_abi(binary, abi)
    return device, abi, binary


@contextmanager
def device_workdir(adb: Adb):
    """A fresh folder under DEVICE_ROOT for one run's files; removed with all it holds on leaving, also when the run
    fails. A failed removal is the error only when nothing else went wrong: it never hides the error that ended the
    run."""
    workdir = f"{DEVICE_ROOT}/edgeprune-{uuid.uuid4().hex[:12]}"
    failed = False
    try:
        adb.shell(["mkdir", "-p", workdir])
        yield workdir
    except BaseException:
        failed = True
        raise
    finally:
        try:
            adb.shell(["rm", "-rf", workdir], check=False)
        except DeviceError:
            if not failed:
                raise


def push_binary(adb: Adb, binary, workdir: str) -> str:
    """Pushes benchmark_model into ``workdir`` and makes it executable; returns its device path."""
    remote_bin = f"{workdir}/benchmark_model"
    adb.push(binary, remote_bin)
    adb.shell(["chmod", "755", remote_bin])
    return remote_bin


def bench_device(model_path, serial: str | None = None, binary=None, options: DeviceOptions | None = None,
                 adb: Adb | None = None, adb_path: str | None = None) -> BenchResult:
    """Runs benchmark_model on an attached device or emulator; returns the parsed result of a complete run."""
    options = options or DeviceOptions()
    options.validate()
    model_path = check_tflite_file(model_path)
    adb = adb or Adb(adb_path, timeout_s=60)
    device, abi, binary = prepare_device(adb, serial, binary)
    with device_workdir(adb) as workdir:
        remote_bin = push_binary(adb, binary, workdir)
        remote_model = f"{workdir}/{PurePosixPath(model_path.name)}"
        adb.push(model_path, remote_model)
        prefix, cores = [], None
        if options.big_cores:
            mask, cores = big_core_mask(adb)
            prefix = ["taskset", mask]
        flags = options.flags(remote_model)
        csv_remote = f"{workdir}/op_profile.csv"
        if options.op_profiling:
            flags += ["--enable_op_profiling=true", f"--profiling_output_csv_file={csv_remote}"]
        traffic = None
        if options.memory_traffic:
            traffic, output = _run_with_traffic(adb, prefix, remote_bin, flags, options, model_path)
        else:
            proc = adb.shell(prefix + [remote_bin] + flags, timeout_s=options.timeout_s, check=False)
            output = proc.stdout + proc.stderr
        try:
            result = parse_benchmark_output(output, target="device", model=str(model_path))
        except BenchmarkParseError as exc:
            raise DeviceError(f"the device run did not complete: {exc}") from None
        if options.use_gpu and not any("Gpu" in d["name"] or "GPU" in d["name"] for d in result.delegates):
            result.warnings.append("the GPU delegate was requested but took no node: the model ran on the CPU")
        if options.use_nnapi and not any("Nnapi" in d["name"] for d in result.delegates):
            result.warnings.append("the NNAPI delegate was requested but took no node: the model ran on the CPU")
        if options.op_profiling:
            profile, warning = _pulled_op_profile(adb, csv_remote)
            result.op_profile = profile or result.op_profile
            if warning:
                result.warnings.append(warning)
        result.model_size_bytes = model_path.stat().st_size
        result.memory_traffic = traffic
        result.device = {"serial": device.serial, "abi": abi, "model": adb.getprop("ro.product.model"),
                         "sdk": adb.getprop("ro.build.version.sdk"), "big_cores": cores,
                         "benchmark_binary": str(binary), "flags": flags}
        return result


def _pulled_op_profile(adb: Adb, remote: str) -> tuple[dict | None, str | None]:
    """(the per-op tables of the CSV file benchmark_model wrote on the device, None), or (None, a warning) when it
    wrote none or an unreadable one: with ``--profiling_output_csv_file`` the tables go to that file, not the log."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "op_profile.csv"
        try:
            adb.pull(remote, local)
            text = local.read_text(errors="replace")
        except (DeviceError, OSError) as exc:
            return None, f"benchmark_model wrote no op-profiling CSV ({remote}: {exc})"
    try:
        return parse_op_profile_csv(text), None
    except BenchmarkParseError as exc:
        return None, f"the op-profiling CSV could not be read: {exc}"


def _run_with_traffic(adb: Adb, prefix, remote_bin, flags, options: DeviceOptions, model_path):
    """Runs benchmark_model under ``simpleperf stat`` twice (all runs, then one run) and converts the difference of
    cache-refill counts into bytes per inference (line size from sysfs, 64 if unknown)."""
    which = adb.shell(["sh", "-c", "command -v simpleperf"], check=False).stdout.strip()
    if not which:
        raise DeviceError("simpleperf is not on the device (it ships with Android 9+ as /system/bin/simpleperf)")
    line = adb.shell(["cat", "/sys/devices/system/cpu/cpu0/cache/index2/coherency_line_size"], check=False)
    line_bytes = int(line.stdout.strip()) if line.stdout.strip().isdigit() else 64
    events = ",".join(TRAFFIC_EVENTS)
    outputs, counts = {}, {}
    for runs in (options.num_runs, 1):
        run_flags = [f for f in flags if not f.startswith("--num_runs=")] + [f"--num_runs={runs}"]
        argv = ["simpleperf", "stat", "-e", events, "--"] + prefix + [remote_bin] + run_flags
        proc = adb.shell(argv, timeout_s=options.timeout_s, check=False)
        outputs[runs] = proc.stdout + proc.stderr
        counts[runs] = parse_simpleperf_stat(outputs[runs])
    extra_runs = options.num_runs - 1  # at least 1: DeviceOptions.validate
    per_inference = {}
    for event in TRAFFIC_EVENTS:
        if event in counts[options.num_runs] and event in counts[1]:
            per_inference[event] = (counts[options.num_runs][event] - counts[1][event]) / extra_runs
    if not per_inference:
        raise DeviceError("simpleperf counted none of the memory events " + events + " on this device")
    refill = per_inference.get("raw-l3d-cache-refill", per_inference.get("raw-l2d-cache-refill"))
    traffic = {"events_per_inference": per_inference, "line_bytes": line_bytes,
               "bytes_per_inference": refill * line_bytes if refill is not None else None,
               "method": "simpleperf stat, (count with N runs - count with 1 run) / (N - 1); bytes = last-level "
                         "cache refills x line size"}
    return traffic, outputs[options.num_runs]
