"""``edgeprune calibrate --device`` through the clearly named test double of the device path.

The double (tests/fakes/fake_adb.py + fake_benchmark_model.c, as in test_bench_device.py) runs device commands through
a real POSIX ``sh -c`` in a sandbox folder; with $FAKE_BENCH_TIMES, benchmark_model answers each pushed model with
the time a known synthetic device takes for it (a roofline per op and conv output-channel tiles of 8 and 16, priced
over the model's TFLite ops), so the key test checks that calibration recovers that device. What the double does not
prove: adb's wire protocol, Android's shell, that a real benchmark_model accepts these models and flags, a real
device's timings and their spread (here every run takes exactly the priced time), thermal throttling over a long
calibration, or big.LITTLE scheduling of the runs.
"""

import json

import numpy as np
import pytest

from edgeprune.commands.calibrate import calibrate_command, check_calibrate_options
from edgeprune.deploy import device_calibration
from edgeprune.deploy.bench.adb import DeviceError
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.graph.latency_profile import LatencyProfile
from edgeprune.core.modelio import save_model
from keras_models import build_edsr
from test_bench_device import argv_runs, fake_binary, fake_device  # noqa: F401 (fixtures)

# The synthetic device: CONV_2D compute-bound at 20 GMAC/s with output channels in tiles of 16 (8 for convs of at
# most 8 outputs; the sweep's widths are multiples of 8, so a tile of 8 alone would look like no tile), every other
# op a bandwidth roofline.
SYNTHETIC = LatencyProfile(
    "device", "synthetic", 2, default={"mac_per_s": 1e12, "bytes_per_s": 4e9, "overhead_us": 3.0},
    ops={"CONV_2D": {"mac_per_s": 20e9, "bytes_per_s": 10e9, "overhead_us": 5.0}},
    channel_tile=16, small_channel_tile=8)


def device_time_us(features) -> float:
    return sum(SYNTHETIC.op_us(name, mac, nbytes, cout) for name, mac, nbytes, cout in features)


@pytest.fixture
def synthetic_device(fake_device, monkeypatch):
    """The fake device, answering every model calibration converts with SYNTHETIC's time for it; returns the
    fake's folders and the {file name: (features, us)} it answers from. ``skip`` (a set of indices) leaves models
    out of the times file, so the double fails on them like benchmark_model on a model it cannot build."""
    times_file = fake_device["tmp"] / "times.txt"
    times_file.write_text("")
    monkeypatch.setenv("FAKE_BENCH_TIMES", str(times_file))
    answered, skip = {}, set()
    real = device_calibration.converted_layers

    def recording(layers, quantize="none"):  # the double must know each model's time before it is pushed and run
        for i, (desc, content, features) in enumerate(real(layers, quantize=quantize)):
            name = device_calibration.MODEL_FILE_NAME.format(index=i)
            if i not in skip:
                answered[name] = (features, device_time_us(features))
                with times_file.open("a") as f:
                    f.write(f"{name} {answered[name][1]:.3f}\n")
            yield desc, content, features

    monkeypatch.setattr(device_calibration, "converted_layers", recording)
    return {**fake_device, "answered": answered, "skip": skip}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_model(build_edsr(num_blocks=1, num_features=8), tmp_path_factory.mktemp("model") / "tiny.keras")


def calibrate_on(fake, out, model, **kwargs):
    options = dict(include_references=False, width_multipliers=(1.0,), host=False, device="",
                   benchmark_binary=str(fake["binary"]), adb_path=fake["adb"])
    return calibrate_command(out, [str(model)], (16, 16), 2, 3, **{**options, **kwargs})


def adb_calls(fake) -> list[list[str]]:
    return [json.loads(line) for line in (fake["tmp"] / "adb.log").read_text().splitlines()]


def test_calibration_recovers_the_synthetic_device(synthetic_device, tiny_model, tmp_path):
    out = tmp_path / "device.json"
    steps = []
    calibrate_on(synthetic_device, out, tiny_model, progress=lambda done, total: steps.append((done, total)))
    profile = LatencyProfile.load(out)
    answered = synthetic_device["answered"]
    n = len(answered)
    assert profile.target == "device" and profile.num_threads == 2 and len(profile.samples) == n > 8
    assert profile.runner == "benchmark_model on Pixel 7 (emulator) (x86_64, sdk 34), XNNPACK"
    assert (profile.small_channel_tile, profile.channel_tile) == (8, 16)
    assert profile.fit["measured"] == "benchmark_model's median of 3 timed runs after 1 warm-up"
    predicted = np.array([sum(profile.op_us(*f) for f in features) for features, _ in answered.values()])
    truth = np.array([us for _, us in answered.values()])
    rel = np.abs(predicted - truth) / truth
    # exact up to the double's 3 decimals, but for op types with under 3 samples (DEPTH_TO_SPACE here): they take
    # the default roofline, fitted over every sample
    assert np.median(rel) < 1e-3 and rel.max() < 0.1, rel
    assert [s["measured_us"] for s in profile.samples] == pytest.approx(list(truth), rel=1e-4)
    assert steps == [(i, 2 * n) for i in range(1, 2 * n + 1)]

    calls = [c[2:] for c in adb_calls(synthetic_device) if c[:2] == ["-s", "emulator-5554"]]
    pushes = [c for c in calls if c[0] == "push"]
    workdir = pushes[0][2].rsplit("/", 1)[0]
    assert workdir.startswith("/data/local/tmp/edgeprune-")
    assert [p[2] for p in pushes if p[1] == str(synthetic_device["binary"])] == [f"{workdir}/benchmark_model"]
    assert sorted(p[2] for p in pushes[1:]) == sorted(f"{workdir}/{name}" for name in answered)
    assert calls[-1] == ["shell", f"rm -rf {workdir}"]
    assert list((synthetic_device["root"] / "data/local/tmp").iterdir()) == []
    runs = argv_runs(synthetic_device)
    assert len(runs) == n and all({"--num_threads=2", "--num_runs=3", "--warmup_runs=1", "--use_xnnpack=true"}
                                  <= set(argv) for argv in runs)
    # and pruning for that device keeps whole tiles of its 16 channels
    from edgeprune.prune.oneshot import one_shot_prune

    report = one_shot_prune(build_edsr(num_blocks=1, num_features=32), 0.3, tmp_path / "pruned", (16, 16),
                            profile=profile, profile_source=str(out))
    assert {g["kept"] for n, g in report["groups"].items() if n != "up0_conv"} == {16}
    assert report["groups"]["up0_conv"]["kept"] == 24  # of 32 units of 4 channels: 96 channels, 6 tiles of 16


def test_a_layer_that_fails_on_the_device_is_named_and_cleaned_up(synthetic_device, tiny_model, tmp_path,
                                                                   monkeypatch):
    real = device_calibration.calibration_set
    monkeypatch.setattr(device_calibration, "calibration_set", lambda *args: real(*args)[:3])
    synthetic_device["skip"].add(1)
    out = tmp_path / "device.json"
    with pytest.raises(DeviceError, match="layer 'Conv2D 16x16x3 -> 8' did not run on the device: benchmark_model "
                                          "failed: .*Could not build model") as info:
        calibrate_on(synthetic_device, out, tiny_model)
    assert "\n" not in str(info.value) and not out.exists()
    assert list((synthetic_device["root"] / "data/local/tmp").iterdir()) == []


def test_no_device_is_a_one_line_error_before_anything_is_converted(fake_device, tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_DEVICES", "")
    monkeypatch.setattr(device_calibration, "converted_layers", None)  # never reached
    out = tmp_path / "device.json"
    with pytest.raises(DeviceError, match="no Android device or emulator is attached") as info:
        calibrate_on(fake_device, out, tiny_model)
    assert "\n" not in str(info.value) and not out.exists()
    assert '"push"' not in (fake_device["tmp"] / "adb.log").read_text()
    with pytest.raises(DeviceError, match="device 'R58M' is not attached \\(attached: none\\)"):
        check_calibrate_options(out, [], 1, 1, host=False, device="R58M", adb_path=fake_device["adb"])


def test_a_binary_for_another_abi_is_refused_before_pushing(fake_device, tiny_model, tmp_path, monkeypatch):
    """The library function checks the device itself (here past the command's checks)."""
    monkeypatch.setenv("FAKE_ADB_PROPS", "ro.product.cpu.abi=arm64-v8a")
    monkeypatch.setattr(device_calibration, "converted_layers", None)  # never reached
    with pytest.raises(InvalidArgumentError, match="is built for x86_64, but the device's ABI is arm64-v8a"):
        device_calibration.calibrate_device([], (16, 16), binary=fake_device["binary"], adb_path=fake_device["adb"])
    assert '"push"' not in (fake_device["tmp"] / "adb.log").read_text()
    with pytest.raises(InvalidArgumentError, match="the device's ABI is arm64-v8a"):
        calibrate_on(fake_device, tmp_path / "device.json", tiny_model)
    assert not (tmp_path / "device.json").exists()


@pytest.mark.parametrize("options, error, message", [
    (dict(host=True, device=""), InvalidArgumentError, "choose one target to calibrate: --host or --device "
                                                       "\\[SERIAL\\], not both"),
    (dict(host=False, device=None), InvalidArgumentError, "choose what to calibrate: --host \\(this machine\\) or "
                                                          "--device \\[SERIAL\\]"),
    (dict(host=False, device="R58M", benchmark_binary="missing/benchmark_model"), InvalidArgumentError,
     "benchmark_model binary 'missing/benchmark_model' does not exist"),
    (dict(host=False, device="R58M", adb_path="missing/adb"), DeviceError, "adb was not found"),
])
def test_options_are_checked_before_anything_is_timed(options, error, message, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    for name in ("ADB", "ANDROID_HOME", "ANDROID_SDK_ROOT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(error, match=message) as info:
        check_calibrate_options("p.json", ["m.keras"], 1, 1, **options)
    assert "\n" not in str(info.value)
