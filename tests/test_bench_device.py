"""The device path: the real adb client with no device, and a clearly named test double for the success path.

The double (tests/fakes/fake_adb.py + fake_benchmark_model.c) runs device commands through a real POSIX `sh -c` in a
sandbox, so quoting mistakes would show as split arguments or executed code. It does not prove adb's protocol,
Android's shell, a real benchmark_model, delegates or simpleperf on a phone.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeprune.deploy.bench.adb import Adb, DeviceError, find_adb, shell_command
from edgeprune.deploy.bench.device import (DeviceOptions, bench_device, check_binary_abi, elf_machine,
                                    parse_simpleperf_stat)
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.deploy.export import convert, fixed_shape_model
from keras_models import build_edsr

FAKES = Path(__file__).parent / "fakes"
RUN_OUTPUT = FAKES / "device_run_output.txt"  # what the benchmark_model double prints


@pytest.fixture(scope="module")
def tflite_bytes():
    return convert(fixed_shape_model(build_edsr(num_blocks=1, num_features=2), (8, 8)))


@pytest.fixture(scope="module")
def fake_binary(tmp_path_factory):
    if not shutil.which("cc"):
        pytest.skip("no C compiler to build the benchmark_model test double")
    out = tmp_path_factory.mktemp("bin") / "benchmark_model"
    subprocess.run(["cc", "-O1", "-o", str(out), str(FAKES / "fake_benchmark_model.c")], check=True)
    return out


@pytest.fixture
def fake_device(tmp_path, monkeypatch, fake_binary):
    root = tmp_path / "device"
    (root / "data/local/tmp").mkdir(parents=True)
    for cpu, freq in ((0, 1800000), (1, 2800000)):  # a little and a big core (this host has two CPUs for taskset)
        d = root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        d.mkdir(parents=True)
        (d / "cpuinfo_max_freq").write_text(f"{freq}\n")
    adb = tmp_path / "adb"
    adb.write_text(f"#!/bin/sh\nexec {sys.executable} {FAKES / 'fake_adb.py'} \"$@\"\n")
    adb.chmod(0o755)
    env = {"FAKE_ADB_ROOT": str(root), "FAKE_ADB_LOG": str(tmp_path / "adb.log"),
           "FAKE_ADB_DEVICES": "emulator-5554 device product:sdk_gphone64_x86_64 model:Pixel_7",
           "FAKE_ADB_PROPS": "ro.product.cpu.abi=x86_64|ro.product.model=Pixel 7 (emulator)|ro.build.version.sdk=34",
           "FAKE_BENCH_ARGV_LOG": str(tmp_path / "argv.log"), "FAKE_BENCH_OUTPUT": str(RUN_OUTPUT)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return {"adb": str(adb), "root": root, "tmp": tmp_path, "binary": fake_binary}


def argv_runs(fake) -> list[list[str]]:
    text = (fake["tmp"] / "argv.log").read_text()
    return [run.strip("\n").split("\n") for run in text.split("--end--\n") if run.strip()]


def test_shell_command_quotes_every_argument():
    cmd = shell_command(["ls", "a b", "x;rm -rf /", "it's", "$(id)"])
    assert cmd == "ls 'a b' 'x;rm -rf /' 'it'\"'\"'s' '$(id)'"
    out = subprocess.run(["sh", "-c", f"printf '%s\\n' {cmd[3:]}"], capture_output=True, text=True).stdout
    assert out.splitlines() == ["a b", "x;rm -rf /", "it's", "$(id)"]


def test_real_adb_with_no_device_end_to_end(tmp_path, tflite_bytes):
    if not shutil.which("adb"):
        if os.environ.get("CI"):
            pytest.fail("CI must install the adb client (.ci/run does: apt-get install adb)")
        pytest.skip("adb is not installed here")
    adb = Adb()
    assert adb.devices() == []
    with pytest.raises(DeviceError, match="no Android device or emulator is attached"):
        adb.select()
    with pytest.raises(DeviceError, match="device 'emulator-5554' is not attached"):
        adb.select("emulator-5554")
    model = tmp_path / "m.tflite"
    model.write_bytes(tflite_bytes)
    with pytest.raises(DeviceError, match="no Android device or emulator is attached"):
        bench_device(model, adb=adb)


def test_missing_adb_has_an_install_hint(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("ADB", raising=False)
    monkeypatch.delenv("ANDROID_HOME", raising=False)
    monkeypatch.delenv("ANDROID_SDK_ROOT", raising=False)
    with pytest.raises(DeviceError, match="adb was not found: install it \\(Debian/Ubuntu: apt-get install adb"):
        find_adb()


@pytest.mark.parametrize("devices, serial, message", [
    ("", None, "no Android device or emulator is attached"),
    ("R58M device usb:1", "XYZ", "device 'XYZ' is not attached \\(attached: R58M\\)"),
    ("R58M unauthorized usb:1", None, "device 'R58M' is unauthorized: accept the USB debugging prompt"),
    ("R58M offline usb:1", None, "device 'R58M' is offline"),
    ("R58M device usb:1|emulator-5554 device x", None, "2 devices are attached .* choose one with --device SERIAL"),
])
def test_device_selection_errors(fake_device, devices, serial, message, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_DEVICES", devices)
    with pytest.raises(DeviceError, match=message):
        Adb(fake_device["adb"]).select(serial)


def test_several_devices_with_a_serial(fake_device, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_DEVICES", "R58M device usb:1|emulator-5554 device x")
    assert Adb(fake_device["adb"]).select("emulator-5554").serial == "emulator-5554"


def test_abi_check_reads_the_elf_header(tmp_path, fake_binary):
    assert elf_machine(fake_binary) == 62  # this machine is x86_64, like an x86_64 emulator
    check_binary_abi(fake_binary, "x86_64")
    with pytest.raises(InvalidArgumentError, match="is built for x86_64, but the device's ABI is arm64-v8a: use the "
                                                    "benchmark_model build for arm64-v8a"):
        check_binary_abi(fake_binary, "arm64-v8a")
    script = tmp_path / "benchmark_model"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(InvalidArgumentError, match="is not an ELF executable"):
        elf_machine(script)


NASTY = "my model; touch INJECTED 'q\" $(id).tflite"


def test_emulator_run_with_a_hostile_model_name(fake_device, tflite_bytes):
    model = fake_device["tmp"] / NASTY
    model.write_bytes(tflite_bytes)
    options = DeviceOptions(num_threads=2, warmup_runs=1, num_runs=10, big_cores=True)
    result = bench_device(model, binary=fake_device["binary"], options=options, adb_path=fake_device["adb"]).to_dict()
    runs = argv_runs(fake_device)
    assert len(runs) == 1
    argv = runs[0]
    graph = next(a for a in argv if a.startswith("--graph="))
    assert graph.endswith("/" + NASTY) and graph.startswith("--graph=" + str(fake_device["root"]))
    assert "--num_threads=2" in argv and "--num_runs=10" in argv
    assert not list(fake_device["root"].rglob("INJECTED")) and not (fake_device["tmp"] / "INJECTED").exists()
    assert result["target"] == "device" and result["runs"] > 0 and result["avg_us"] > 0
    assert result["device"]["abi"] == "x86_64" and result["device"]["model"] == "Pixel 7 (emulator)"
    assert result["device"]["big_cores"] == [1]
    calls = [json.loads(l) for l in (fake_device["tmp"] / "adb.log").read_text().splitlines()]
    run_call = next(c for c in calls if c[:3] == ["-s", "emulator-5554", "shell"] and "benchmark_model " in c[3])
    assert run_call[3].startswith("taskset 2 ")
    # everything pushed is removed again
    assert list((fake_device["root"] / "data/local/tmp").iterdir()) == []


def test_a_failed_device_run_is_an_error_and_is_cleaned_up(fake_device, tflite_bytes, monkeypatch):
    model = fake_device["tmp"] / "m.tflite"
    model.write_bytes(tflite_bytes)
    failed = fake_device["tmp"] / "failed.txt"
    failed.write_text("STARTING!\nLoaded model m.tflite\nERROR: Failed to apply GPU delegate.\n"
                      "ERROR: Benchmarking failed.\n")
    monkeypatch.setenv("FAKE_BENCH_OUTPUT", str(failed))
    with pytest.raises(DeviceError, match="the device run did not complete: benchmark_model failed: ERROR: Failed to "
                                          "apply GPU delegate"):
        bench_device(model, binary=fake_device["binary"], options=DeviceOptions(use_gpu=True),
                     adb_path=fake_device["adb"])
    assert list((fake_device["root"] / "data/local/tmp").iterdir()) == []


def test_wrong_binary_for_the_device_is_refused_before_pushing(fake_device, tflite_bytes, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_PROPS", "ro.product.cpu.abi=arm64-v8a")
    model = fake_device["tmp"] / "m.tflite"
    model.write_bytes(tflite_bytes)
    with pytest.raises(InvalidArgumentError, match="the device's ABI is arm64-v8a"):
        bench_device(model, binary=fake_device["binary"], adb_path=fake_device["adb"])
    calls = (fake_device["tmp"] / "adb.log").read_text()
    assert '"push"' not in calls


def test_memory_traffic_from_simpleperf(fake_device, tflite_bytes, monkeypatch):
    """simpleperf here is also a test double: it runs the command and prints counts proportional to --num_runs."""
    bindir = fake_device["tmp"] / "devbin"
    bindir.mkdir()
    (bindir / "simpleperf").write_text(
        "#!/bin/sh\nshift 4\nruns=1\nfor a in \"$@\"; do case \"$a\" in --num_runs=*) runs=${a#--num_runs=};; esac; done\n"
        "\"$@\"\nrc=$?\necho 'Performance counter statistics:'\n"
        "echo \"  $((1000 + 250000 * runs))  raw-l3d-cache-refill   # test double\"\n"
        "echo \"  $((5000 + 900000 * runs))  raw-bus-access\"\nexit $rc\n")
    (bindir / "simpleperf").chmod(0o755)
    monkeypatch.setenv("FAKE_ADB_DEVICE_PATH", str(bindir))
    model = fake_device["tmp"] / "m.tflite"
    model.write_bytes(tflite_bytes)
    result = bench_device(model, binary=fake_device["binary"], options=DeviceOptions(num_runs=5, memory_traffic=True),
                          adb_path=fake_device["adb"])
    traffic = result.memory_traffic
    assert traffic["events_per_inference"]["raw-l3d-cache-refill"] == 250000
    assert traffic["bytes_per_inference"] == 250000 * 64
    assert [a for a in argv_runs(fake_device)[0] if a.startswith("--num_runs")] == ["--num_runs=5"]
    assert [a for a in argv_runs(fake_device)[1] if a.startswith("--num_runs")] == ["--num_runs=1"]


def test_simpleperf_output_formats():
    table = "Performance counter statistics:\n\n   1,234,567  raw-l3d-cache-refill   # 1.2 M/sec\n      42  raw-bus-access\n"
    assert parse_simpleperf_stat(table) == {"raw-l3d-cache-refill": 1234567, "raw-bus-access": 42}
    assert parse_simpleperf_stat("1234,raw-l2d-cache-refill,1.2 M/sec,(100%),\n") == {"raw-l2d-cache-refill": 1234}


def test_op_profiling_pulls_the_csv_benchmark_model_wrote_and_shows_it(fake_device, tflite_bytes, monkeypatch):
    """With --profiling_output_csv_file benchmark_model writes its per-op tables to that file, not to its log: the
    file is pulled before the work folder is removed, parsed, and shown in the summary."""
    from edgeprune.commands.render import bench_table

    monkeypatch.setenv("FAKE_BENCH_PROFILE_CSV", str(Path(__file__).parent / "data/benchmark_model/op_profile_edsr_csv.csv"))
    model = fake_device["tmp"] / "m.tflite"
    model.write_bytes(tflite_bytes)
    result = bench_device(model, binary=fake_device["binary"], options=DeviceOptions(op_profiling=True),
                          adb_path=fake_device["adb"]).to_dict()
    profile = result["op_profile"]
    assert [n["node_type"] for n in profile["run_order"]] == ["Convolution (NHWC, F32) IGEMM"] * 2 + [
        "Add (ND, F32)", "Convolution (NHWC, F32) IGEMM", "Depth To Space (NHWC, X32)"]
    assert profile["run_order"][3] == {"node_type": "Convolution (NHWC, F32) IGEMM", "first_ms": 1.173,
                                       "avg_ms": 1.1602, "percent": 52.4847, "mem_kb": 0.0, "times_called": 1,
                                       "name": "Delegate/Convolution (NHWC, F32) IGEMM:3"}
    assert [(t["node_type"], t["count"], t["avg_ms"]) for t in profile["by_node_type"]] == [
        ("Convolution (NHWC, F32) IGEMM", 3, 2.03), ("Depth To Space (NHWC, X32)", 1, 0.139),
        ("Add (ND, F32)", 1, 0.039)]
    assert not [w for w in result["warnings"] if "op-profiling" in w]
    text = bench_table([result])
    assert "per-op profile of m.tflite (5 nodes)" in text and "Delegate/Convolution (NHWC, F32) IGEMM:3" in text
    assert list((fake_device["root"] / "data/local/tmp").iterdir()) == []  # pulled, then cleaned up
    # a run that wrote no CSV is reported, not silently empty
    monkeypatch.delenv("FAKE_BENCH_PROFILE_CSV")
    again = bench_device(model, binary=fake_device["binary"], options=DeviceOptions(op_profiling=True),
                         adb_path=fake_device["adb"]).to_dict()
    assert again["op_profile"] is None
    assert any(w.startswith("benchmark_model wrote no op-profiling CSV") for w in again["warnings"])


def test_memory_traffic_with_one_run_is_refused_before_anything_runs():
    with pytest.raises(InvalidArgumentError, match=r"^--memory-traffic needs --num-runs of at least 2 \(it subtracts "
                                                   r"the count of a one-run pass\), got 1$"):
        DeviceOptions(num_runs=1, memory_traffic=True).validate()
    DeviceOptions(num_runs=2, memory_traffic=True).validate()


class _StubAdb:
    """Records shell commands; the clean-up (rm) times out."""

    def __init__(self):
        self.calls = []

    def shell(self, argv, timeout_s=None, check=True):
        self.calls.append(argv[0])
        if argv[0] == "rm":
            raise DeviceError("adb shell timed out after 60 s: is the device still connected?")


def test_a_clean_up_timeout_does_not_hide_the_error_that_ended_the_run():
    from edgeprune.deploy.bench.device import device_workdir

    adb = _StubAdb()
    with pytest.raises(DeviceError, match="^the device run did not complete: Segmentation fault$"):
        with device_workdir(adb):
            raise DeviceError("the device run did not complete: Segmentation fault")
    assert adb.calls == ["mkdir", "rm"]
    with pytest.raises(DeviceError, match="^adb shell timed out"):  # with nothing else to report, it is the error
        with device_workdir(_StubAdb()):
            pass
