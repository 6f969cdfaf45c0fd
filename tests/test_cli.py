"""The command line: `analyze` reproduces the paper's Table 1 figures, its table, and one-line errors with exit code
2."""

import json
import subprocess
import sys
import resource
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgeprune.core.runtime import keras
from edgeprune.cli import cli
from edgeprune.core.modelio import save_model
from keras_models import build_edsr

EDGEPRUNE = str(Path(sys.executable).with_name("edgeprune"))


def run(*args):
    return CliRunner().invoke(cli, list(args), prog_name="edgeprune")


def test_analyze_edsr_json_matches_table1():
    result = run("analyze", "edsr", "--input-size", "1020x1020", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    t = report["totals"]
    assert report["model"] == "edsr" and report["input_size"] == [1020, 1020] and report["dtype"] == "fp32"
    assert abs(t["mac"] / 1.428e12 - 1) < 0.005
    assert abs(t["weights"] / 1_367_424 - 1) < 0.005
    assert abs(t["activations"] / 5.076e9 - 1) < 0.015
    assert t["bw_elements"] == t["weights"] + t["activations"] and t["bw_bytes"] == 4 * t["bw_elements"]
    assert report["totals_all_layers"]["activations"] > t["activations"]
    layer = report["layers"][1]
    assert {"name", "type", "mac", "weights", "activations_in", "activations_out"} <= set(layer)
    assert (layer["name"], layer["type"], layer["weights"]) == ("head", "Conv2D", 1728)


def test_analyze_sid_json_matches_table1():
    result = run("analyze", "sid", "--input-size", "1424x2128", "--json", "--dtype", "fp16")
    t = json.loads(result.stdout)["totals"]
    assert abs(t["mac"] / 560.09e9 - 1) < 0.005
    assert abs(t["weights"] / 7_757_312 - 1) < 0.005
    assert abs(t["activations"] / 1.915e9 - 1) < 0.015
    assert t["bw_bytes"] == 2 * t["bw_elements"]


def test_analyze_table_for_people(tmp_path):
    result = run("analyze", "edsr")
    assert result.exit_code == 0
    assert "edsr at input 1020x1020, fp32 (4 bytes per element), batch 1" in result.output
    assert "conv layers (paper's Table 1)  1,428,061,363,200 (1.428T)  1,367,424" in result.output
    assert "block15_conv2" in result.output and "block15_add" not in result.output
    assert "block15_add" in run("analyze", "edsr", "--all-layers").output
    path = save_model(build_edsr(num_blocks=1, num_features=2), tmp_path / "tiny.keras")
    result = run("analyze", str(path), "--input-size", "8x8")
    assert result.exit_code == 0 and "at input 8x8" in result.output


def test_analyze_never_runs_the_model(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was run")

    for name in ("__call__", "predict", "call"):
        monkeypatch.setattr(keras.Model, name, refuse)
    assert run("analyze", "sid", "--json").exit_code == 0


@pytest.mark.parametrize("args, message", [
    (["analyze", "edsr", "--input-size", "12x"], "input size must be HxW with positive integers"),
    (["analyze", "edsr", "--input-size", "0x5"], "input size must be positive, got 0x5"),
    (["analyze", "edsr", "--input-size", "abc"], "input size must be HxW with positive integers"),
    (["analyze", "missing.keras"], "model file 'missing.keras' does not exist"),
    (["analyze", "edsrr"], "unknown model 'edsrr'"),
    (["analyze", "sid", "--input-size", "100x100"], "multiple of 16"),
    (["analyze", "edsr", "--dtype", "bf16"], "Invalid value for '--dtype'"),
    (["analyse", "edsr"], "No such command 'analyse'"),
])
def test_errors_are_one_line_with_exit_code_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert result.stdout == ""


def test_non_model_files(tmp_path):
    text = tmp_path / "readme.txt"
    text.write_text("not a model")
    fake = tmp_path / "fake.keras"
    fake.write_bytes(b"\x00\x01garbage")
    for path, message in ((text, "is not a model file"), (fake, "not a valid .keras archive")):
        result = run("analyze", str(path), "--input-size", "8x8")
        assert result.exit_code == 2 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_console_script_errors_and_timing(tmp_path):
    """The installed `edgeprune` script: real exit codes and stderr, no traceback, no TF start-up noise."""
    bad = tmp_path / "bad.keras"
    bad.write_text("nonsense")
    proc = subprocess.run([EDGEPRUNE, "analyze", str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"Error: '{bad}' is not a valid .keras archive (not a zip file): "
                                                "is it truncated?"]
    before = _children_cpu_seconds()
    proc = subprocess.run([EDGEPRUNE, "analyze", "edsr", "--input-size", "1020x1020", "--json"],
                          capture_output=True, text=True, timeout=120)
    used = _children_cpu_seconds() - before
    assert proc.returncode == 0 and proc.stderr == ""
    assert json.loads(proc.stdout)["totals"]["weights"] == 1_367_424
    # CPU seconds, not wall time: a loaded machine (CI shares its cores) stretches the wall clock, not the work.
    # ~7 s (TensorFlow's import, its threads included) on the AVX-512 host while two other processes ran.
    assert used < 20, f"analyze used {used:.1f} CPU seconds"


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_help_explains():
    result = run("analyze", "--help")
    assert result.exit_code == 0
    assert "the packed raw" in result.output and "--json" in result.output
    assert run("--help").exit_code == 0


def test_prune_one_shot_writes_the_three_files_and_reports(tmp_path):
    out = tmp_path / "run"
    result = run("prune", "--model", "edsr", "--one-shot", "--channel-ratio", "0.3", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "mac          1,428,061,363,200  707,888,160,000            49.6%" in result.output
    assert "plan prediction matches the slim model: True" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["plan.json", "pruned.keras", "report.json"]
    report = json.loads((out / "report.json").read_text())
    assert {"original", "pruned", "equivalence"} <= set(report)
    assert report["equivalence"]["max_rel_diff"] <= 1e-5
    assert set(report["pruned"]["totals"]) >= {"mac", "weights", "activations", "bw_elements", "bw_bytes"}
    as_json = json.loads(run("prune", "--model", "edsr", "--one-shot", "--channel-ratio", "0.3", "--out",
                             str(tmp_path / "j"), "--json").stdout)
    assert as_json["pruned"]["totals"] == report["pruned"]["totals"]


def test_slim_replays_a_plan_on_a_fresh_model(tmp_path):
    run("prune", "--model", "sid", "--one-shot", "--channel-ratio", "0.5", "--out", str(tmp_path),
        "--input-size", "32x32")
    result = run("slim", "sid", "--plan", str(tmp_path / "plan.json"), "--out", str(tmp_path / "again.keras"),
                 "--input-size", "32x32", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    report = json.loads((tmp_path / "report.json").read_text())
    assert summary["pruned"]["totals"] == report["pruned"]["totals"]
    assert (tmp_path / "again.keras").is_file()


def _plan_with(tmp_path, keep):
    run("prune", "--model", "edsr", "--one-shot", "--channel-ratio", "0.5", "--out", str(tmp_path / "p"),
        "--input-size", "8x8")
    plan = json.loads((tmp_path / "p" / "plan.json").read_text())
    plan["groups"]["head"]["keep"] = keep
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(plan))
    return path


@pytest.mark.parametrize("args_of, message", [
    (lambda d: ["slim", "sid", "--plan", str(_plan_with(d, [0])), "--out", str(d / "o.keras")],
     "this plan was made for model 'edsr'"),
    (lambda d: ["slim", "edsr", "--plan", str(_plan_with(d, [0, 64])), "--out", str(d / "o.keras")],
     "group 'head' has out-of-range indices [64]"),
    (lambda d: ["slim", "edsr", "--plan", str(_plan_with(d, [3, 3])), "--out", str(d / "o.keras")],
     "group 'head' lists indices [3] more than once"),
    (lambda d: ["slim", "edsr", "--plan", str(d / "none.json"), "--out", str(d / "o.keras")],
     "does not exist"),
    (lambda d: ["prune", "--model", "edsr", "--one-shot", "--channel-ratio", "1.2", "--out", str(d / "o")],
     "channel ratio must be strictly between 0 and 1, got 1.2"),
    (lambda d: ["prune", "--model", "edsr", "--one-shot", "--channel-ratio", "0", "--out", str(d / "o")],
     "channel ratio must be strictly between 0 and 1, got 0.0"),
    (lambda d: ["prune", "--model", "edsr", "--one-shot", "--out", str(d / "o")], "needs --channel-ratio"),
    (lambda d: ["prune", "--model", "edsr", "--distill", "nan", "--out", str(d / "o")],
     "the --distill weight must be a finite number >= 0"),
    # click reads a negative optional value as an option (also as --distill=-1): refused all the same
    (lambda d: ["prune", "--model", "edsr", "--distill", "-1", "--out", str(d / "o")], "No such option '-1'"),
    (lambda d: ["prune", "--model", "edsr", "--distill", "inf", "--out", str(d / "o")],
     "the --distill weight must be a finite number >= 0"),
    (lambda d: ["prune", "--model", "edsr", "--strategy", "qr", "--target-mac", "0.5", "--distill", "--out",
                str(d / "o")], "--strategy qr fine-tunes only with --recover-steps N"),
    (lambda d: ["prune", "--model", str(d / "custom.keras"), "--one-shot", "--channel-ratio", "0.3", "--out",
                str(d / "o")], "cannot load"),
])
def test_prune_and_slim_errors_leave_no_output(tmp_path, args_of, message):
    inputs = keras.Input((4, 4, 3))

    class Unregistered(keras.layers.Layer):
        def call(self, x):
            return x

    keras.Model(inputs, Unregistered(name="mystery")(inputs)).save(tmp_path / "custom.keras")
    result = run(*args_of(tmp_path))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "o.keras").exists() and not (tmp_path / "o").exists()


def test_export_and_bench_host_from_the_command_line(tmp_path):
    model = save_model(build_edsr(num_blocks=1, num_features=4), tmp_path / "tiny.keras")
    out = tmp_path / "tiny.tflite"
    result = run("export", "--tflite", str(model), "--out", str(out), "--input-size", "16x16")
    assert result.exit_code == 0, result.output
    assert "census: 6 conv ops; conv weights" in result.output and "= cost model" in result.output
    assert (tmp_path / "tiny.tflite.json").is_file()
    result = run("bench", str(out), "--host", "--num-runs", "3", "--json")
    assert result.exit_code == 0, result.output
    bench = json.loads(result.stdout)
    assert bench["runs"] == 3 and bench["target"] == "host" and bench["median_us"] > 0
    assert "median_us" in run("bench", str(out), "--host", "--num-runs", "2").output


@pytest.mark.parametrize("args_of, message", [
    (lambda d: ["export", "--tflite", str(d / "missing.keras"), "--out", str(d / "o.tflite")], "does not exist"),
    (lambda d: ["export", "--tflite", str(d / "notes.keras"), "--out", str(d / "o.tflite")],
     "not a valid .keras archive"),
    (lambda d: ["export", "--tflite", str(d / "dyn.keras"), "--out", str(d / "o.tflite")],
     "dynamic: give --input-size"),
    (lambda d: ["export", "--tflite", str(d / "dyn.keras"), "--out", str(d / "o.tflite"), "--input-size", "8x8",
                "--quantize", "int8"], "int8 quantisation needs calibration data"),
    (lambda d: ["bench", str(d / "missing.tflite"), "--host"], "does not exist"),
    (lambda d: ["bench", str(d / "truncated.tflite"), "--host"], "is truncated or corrupt"),
    (lambda d: ["bench", str(d / "notes.keras"), "--host"], "is not a TFLite flatbuffer"),
    (lambda d: ["bench", str(d / "truncated.tflite")], "choose where to run: --host"),
])
def test_export_and_bench_errors(tmp_path, args_of, message):
    (tmp_path / "notes.keras").write_text("not a model")
    save_model(build_edsr(num_blocks=1, num_features=2), tmp_path / "dyn.keras")
    from edgeprune.deploy.export import convert, fixed_shape_model

    content = convert(fixed_shape_model(build_edsr(num_blocks=1, num_features=2), (8, 8)))
    (tmp_path / "truncated.tflite").write_bytes(content[: len(content) // 3])
    result = run(*args_of(tmp_path))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "o.tflite").exists() and not (tmp_path / "o.tflite.json").exists()


def test_calibrate_then_predict_with_analyze_and_bench(tmp_path):
    model = save_model(build_edsr(num_blocks=1, num_features=8), tmp_path / "tiny.keras")
    profile = tmp_path / "prof.json"
    result = run("calibrate", "--host", "--out", str(profile), "--model", str(model), "--only-given-models",
                 "--input-size", "16x16", "--runs", "2")
    assert result.exit_code == 0, result.output
    assert "CONV_2D" in result.output and "fit over" in result.output and profile.is_file()
    result = run("analyze", str(model), "--input-size", "16x16", "--latency-profile", str(profile), "--json")
    latency = json.loads(result.stdout)["latency"]
    assert latency["total_us"] > 0 and {l["name"] for l in latency["layers"]} >= {"head", "tail"}
    assert "predicted total latency" in run("analyze", str(model), "--input-size", "16x16", "--latency-profile",
                                            str(profile)).output
    run("export", str(model), "--out", str(tmp_path / "t.tflite"), "--input-size", "16x16")
    result = run("bench", str(tmp_path / "t.tflite"), "--host", "--num-runs", "3", "--latency-profile", str(profile),
                 "--json")
    assert result.exit_code == 0, result.output
    lm = json.loads(result.stdout)["latency_model"]
    assert lm["predicted_us"] > 0 and lm["interleaved_median_us"] > 0
    assert "prediction error" in run("bench", str(tmp_path / "t.tflite"), "--host", "--num-runs", "2",
                                     "--latency-profile", str(profile)).output


def test_calibrate_errors():
    result = run("calibrate", "--out", "p.json")
    assert result.exit_code == 2 and "choose what to calibrate: --host" in result.stderr
    assert "or --device [SERIAL]" in result.stderr and "--device [SERIAL]" in run("calibrate", "--help").output
    result = run("analyze", "edsr", "--latency-profile", "missing.json")
    assert result.exit_code == 2 and "latency profile 'missing.json' does not exist" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--out", "p.json"], "Error: choose what to calibrate: --host"),
    (["--host", "--out", "p.json", "--runs", "0"], "Error: --runs"),
    (["--host", "--out", "p.json", "--num-threads", "0"], "Error: --num-threads"),
    (["--host", "--out", "p.txt"], "Error: output 'p.txt' must end in .json"),
    (["--host", "--out", "p.json", "--only-given-models"], "Error: nothing to calibrate: give --model"),
])
def test_calibrate_refuses_bad_options_before_timing_anything(args, message):
    result = run("calibrate", *args)
    assert result.exit_code == 2 and result.stderr.startswith(message)
    assert len(result.stderr.splitlines()) == 1, result.stderr  # no progress bar before the error


def test_parse_log_from_the_command_line(tmp_path):
    from test_bench_parse import OLD

    log = tmp_path / "run.txt"
    log.write_text(OLD)
    result = run("bench", "--parse-log", str(log), "--json")
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout)
    assert parsed["runs"] == 50 and parsed["avg_us"] == 98730.9 and parsed["target"] == "log"
    failed = tmp_path / "failed.txt"
    failed.write_text("STARTING!\nERROR: Failed to allocate tensors!\nERROR: Benchmarking failed.\n")
    result = run("bench", "--parse-log", str(failed))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "Error: benchmark_model failed: ERROR: Failed to allocate tensors! | ERROR: Benchmarking failed."]


@pytest.mark.parametrize("args, message", [
    (["bench", "--parse-log", "missing.txt"], "log file 'missing.txt' does not exist"),
    (["bench", "m.tflite", "--host", "--device"], "choose where to run: --host, --device [SERIAL] or --parse-log"),
    (["bench", "--device"], "give at least one MODEL.tflite"),
])
def test_bench_mode_errors(args, message):
    result = run(*args)
    assert result.exit_code == 2 and message in result.stderr


def _device_only(named):
    verb, them = ("mean", "them") if "," in named else ("means", "it")
    return f"{named} only {verb} something on an Android device: drop {them}, or run with --device [SERIAL]"


def test_a_host_timeout_limits_only_a_memory_traffic_measurement(tmp_path):
    result = run("bench", str(tmp_path / "m.tflite"), "--host", "--timeout", "60")
    assert result.exit_code == 2 and result.stderr.splitlines() == [
        "Error: --timeout limits a device run or a host --memory-traffic measurement: drop it, or add "
        "--memory-traffic"]


@pytest.mark.parametrize("options, named", [
    (["--use-gpu", "--op-profiling", "--memory-traffic"], "--use-gpu, --op-profiling"),
    (["--use-nnapi"], "--use-nnapi"), (["--no-xnnpack"], "--no-xnnpack"), (["--big-cores"], "--big-cores"),
    (["--adb", "/usr/bin/adb"], "--adb"),
    (["--benchmark-binary", "bm"], "--benchmark-binary"),
])
def test_device_only_options_are_refused_on_the_host(tmp_path, options, named):
    """Nothing runs: the model need not even exist. (--memory-traffic has a meaning on the host too.)"""
    result = run("bench", str(tmp_path / "m.tflite"), "--host", *options)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"Error: {_device_only(named)}"]


@pytest.mark.parametrize("options, named", [
    (["--adb", "/usr/bin/adb"], "--adb"), (["--benchmark-binary", "bm", "--adb", "adb"], "--benchmark-binary, --adb")])
def test_calibrate_refuses_device_only_options_on_the_host(tmp_path, options, named):
    result = run("calibrate", "--host", "--out", str(tmp_path / "p.json"), *options)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"Error: {_device_only(named)}"]
    assert list(tmp_path.iterdir()) == []


def test_a_host_latency_profile_is_refused_on_a_device(tmp_path):
    result = run("bench", str(tmp_path / "m.tflite"), "--device", "--latency-profile", "p.json")
    assert result.exit_code == 2 and result.stderr.splitlines() == [
        "Error: --latency-profile predicts host latency: use it with --host (a device's profile goes to "
        "'edgeprune report --latency-profile')"]


def test_bench_device_without_a_device_uses_the_real_adb(tmp_path):
    import shutil

    if not shutil.which("adb"):
        pytest.skip("adb is not installed here (.ci/run installs it)")
    from edgeprune.deploy.export import convert, fixed_shape_model

    model = tmp_path / "m m.tflite"
    model.write_bytes(convert(fixed_shape_model(build_edsr(num_blocks=1, num_features=2), (8, 8))))
    result = run("bench", str(model), "--device")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "Error: no Android device or emulator is attached: connect one with USB debugging on (check with 'adb devices')"]


def test_train_on_the_built_in_data(tmp_path):
    out = tmp_path / "edsr.keras"
    result = run("train", "--model", "edsr", "--out", str(out), "--steps", "2", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "edsr trained 2 steps" in result.output and "validation on 8 held-out images: PSNR" in result.output
    report = json.loads((tmp_path / "edsr.keras.json").read_text())
    assert report["data"]["train"]["kind"] == "dead leaves (generated)"
    assert report["data"]["validation"]["kind"] == "real photos from scikit-image (held out)"


@pytest.mark.parametrize("args, message", [
    (["--out", "x.h5"], "must end in .keras"),
    (["--out", "x.keras", "--steps", "0"], "steps must be an integer >= 1, got 0"),
    (["--out", "x.keras", "--data", "missing_dir"], "data folder 'missing_dir' does not exist"),
    (["--out", "x.keras", "--seed", "-2"], "--seed must be an integer >= 0, got -2"),
])
def test_train_errors(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)  # relative outputs land here, never in the checkout
    result = run("train", "--model", "edsr", *args)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, method, importance", [
    ([], "D", "magnitude"),  # the preset's
    (["--method", "B", "--importance", "taylor"], "B", "taylor"),
    (["--method", "B", "--importance", "qr"], "B", "qr"),
])
def test_prune_iterative_from_the_command_line(tmp_path, args, method, importance):
    model = save_model(build_edsr(scale=2, num_blocks=1, num_features=8), tmp_path / "tiny.keras")
    out = tmp_path / "run"
    result = run("prune", "--model", str(model), "--finetune-steps", "2", "--max-iterations", "2",
                 "--tolerance", "9", "--ssim-tolerance", "1", "--target-mac", "0.9", "--out", str(out), *args)
    assert result.exit_code == 0, result.output
    assert "iteration  1: level 0.100" in result.stderr
    assert "control (baseline, same steps)" in result.stdout and "target MAC 0.9 met" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["pruned"]["mac_ratio"] <= 0.9 and report["settings"]["method"] == method
    assert report["settings"]["importance"] == importance
    assert f"method {method}, {importance} importance" in result.stdout
    assert report["preset"]["finetune_steps"] == 2
    change = report["pruned"]["psnr"] - report["baseline"]["psnr"]
    assert f"PSNR {change:+.3f} dB vs baseline, " in result.stdout and "PSNR drop" not in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--target-mac", "1.5"], "target MAC must be strictly between 0 and 1 (a fraction of the baseline), got 1.5"),
    (["--channel-ratio", "0.3"], "--channel-ratio and --input-size go with --one-shot"),
    (["--target-latency", "1.5"], "target latency must be strictly between 0 and 1 (a fraction of the baseline)"),
    (["--target-latency", "0"], "target latency must be strictly between 0 and 1"),
    (["--channel-multiple", "0"], "channel multiple must be an integer >= 1, got 0"),
    (["--channel-multiple", "512"], "a channel multiple of 512 leaves no group anything to prune (its widest "
                                    "prunable layer has 256 output channels): choose a smaller --channel-multiple"),
    (["--channel-multiple", "8", "--latency-profile", "host"], "--channel-multiple and --latency-profile both"),
    (["--channel-multiple", "8", "--target-latency", "0.7"], "--target-latency needs a latency profile"),
    (["--latency-profile", "missing.json"], "latency profile 'missing.json' does not exist"),
    (["--latency-profile", "other_runner.json"], "comes from runner 'tvm', not one edgeprune calibrates"),
    (["--latency-profile", "other_schema.json"], "is not an edgeprune latency profile (schema "
                                                 "'edgeprune.latency-profile/0'"),
    (["--latency-profile", "host_1thread.json", "--num-threads", "4"], "was calibrated with 1 thread(s), not "
                                                                       "--num-threads 4"),
    (["--num-threads", "0"], "--num-threads must be an integer >= 1, got 0"),
    (["--finetune-steps", "0"], "steps must be an integer >= 1, got 0"),
    (["--method", "E"], "Invalid value for '--method'"),
    (["--importance", "gradient"], "Invalid value for '--importance'"),
    (["--one-shot", "--channel-ratio", "0.3", "--method", "B"], "--method and --importance set the iterative loop"),
    (["--data", "missing_dir"], "data folder 'missing_dir' does not exist"),
    (["--strategy", "random"], "Invalid value for '--strategy'"),
    (["--granularity", "kernel"], "--granularity and --candidates set the coarse search: add --strategy coarse"),
    (["--strategy", "coarse", "--candidates", "0"], "--candidates must be an integer >= 1, got 0"),
    (["--strategy", "coarse", "--importance", "taylor"], "--importance ranks channels for the threshold strategy"),
    (["--strategy", "coarse", "--target-latency", "0.7"], "use --target-mac with --strategy coarse"),
    (["--strategy", "qr", "--one-shot", "--channel-ratio", "0.3"], "--one-shot prunes by L1 filter norm"),
    (["--gate", "best"], "Invalid value for '--gate'"),
    (["--gate", "control", "--strategy", "qr"], "--gate control judges the loop's iterations; --strategy qr prunes "
                                                "once without a gate"),
    (["--gate", "control", "--one-shot", "--channel-ratio", "0.3"], "--gate judges the iterative loop's steps"),
    (["--seed", "-1"], "--seed must be an integer >= 0, got -1"),
    (["--seed", "1", "--one-shot", "--channel-ratio", "0.3"], "--one-shot ranks by L1 filter norm and draws nothing"),
    (["--recover-steps", "5"], "--recover-steps fine-tunes the QR strategy's reconstruction: add --strategy qr"),
    (["--recover-steps", "5", "--one-shot", "--channel-ratio", "0.3"], "--one-shot does not train; drop one"),
])
def test_prune_iterative_errors(tmp_path, monkeypatch, args, message):
    from conftest import TEST_HOST_PROFILE

    profiles = {"other_runner.json": {**TEST_HOST_PROFILE, "runner": "tvm"},
                "other_schema.json": {**TEST_HOST_PROFILE, "schema": "edgeprune.latency-profile/0"},
                "host_1thread.json": TEST_HOST_PROFILE}
    monkeypatch.chdir(tmp_path)  # relative outputs land here, never in the checkout
    for name, profile in profiles.items():
        (tmp_path / name).write_text(json.dumps({"schema": "edgeprune.latency-profile/1", **profile}))
    result = run("prune", "--model", "edsr", "--out", "run", *args)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(profiles)  # nothing written


def test_export_without_the_tflite_flag_writes_the_same_tflite(tmp_path):
    """The help says TFLite is the default and only format and the flag may be left out: both forms give the same
    flatbuffer and the same verification report."""
    assert "TFLite, the default and only one (the flag may be left out)" in " ".join(
        run("export", "--help").output.split())
    model = save_model(build_edsr(num_blocks=1, num_features=2), tmp_path / "tiny.keras")
    reports = []
    for flag, name in ((["--tflite"], "with.tflite"), ([], "without.tflite")):
        result = run("export", *flag, str(model), "--out", str(tmp_path / name), "--input-size", "8x8", "--json")
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).read_bytes()[4:8] == b"TFL3"
        reports.append({k: v for k, v in json.loads(result.stdout).items() if k not in ("tflite", "conversion_s")})
    assert reports[0] == reports[1] and reports[0]["passed"]
    assert (tmp_path / "with.tflite").read_bytes() == (tmp_path / "without.tflite").read_bytes()


def test_foreign_profiles_and_results_exit_2_in_one_line(tmp_path):
    from edgeprune.deploy.export import convert, fixed_shape_model

    model = tmp_path / "m.tflite"
    model.write_bytes(convert(fixed_shape_model(build_edsr(num_blocks=1, num_features=2), (8, 8))))
    (tmp_path / "list.json").write_text("[1, 2]")
    for args, message in ((["bench", str(model), "--host", "--latency-profile", str(tmp_path / "list.json")],
                           "holds a JSON list, not a JSON object: it is not a latency profile"),
                          (["report", str(tmp_path / "list.json"), "--out", str(tmp_path / "r")],
                           "is not an edgeprune benchmark result"),
                          (["analyze", "edsr", "--latency-profile", str(tmp_path / "list.json")],
                           "it is not a latency profile")):
        result = run(*args)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.stderr


@pytest.mark.parametrize("where, content, resume, message", [
    (".work/run.json", '{"model": "edsr", "base', True, "Error: run record '"),
    (".work/loop/loop.json", '{"format": "edgeprune.loop/1", "thresh', True, "Error: prune loop checkpoint '"),
    ("baseline.json", "[]", False, "Error: cached baseline record '"),
])
def test_prune_with_a_corrupt_cache_file_is_one_error_line(tmp_path, monkeypatch, where, content, resume, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run" / where).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "run" / where).write_text(content)
    (tmp_path / "run" / "baseline.keras").write_bytes(b"")
    result = run("prune", "--model", "edsr", "--baseline", "train", "--out", "run", *(["--resume"] if resume else []))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, label", [
    (["--strategy", "coarse", "--granularity", "kernel", "--candidates", "2"], "coarse strategy (kernel, 2 candidates"),
    (["--strategy", "qr"], "one-shot QR strategy, method D allocation"),
])
def test_prune_with_the_seed_strategies_from_the_command_line(tmp_path, args, label):
    model = save_model(build_edsr(scale=2, num_blocks=1, num_features=8), tmp_path / "tiny.keras")
    out = tmp_path / "run"
    result = run("prune", "--model", str(model), "--finetune-steps", "2", "--max-iterations", "2",
                 "--tolerance", "9", "--ssim-tolerance", "1", "--target-mac", "0.8", "--latency-profile", "none",
                 "--out", str(out), *args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert label in result.stdout and report["strategy"]["name"] == args[1]
    if args[1] == "coarse":  # kernel masks only: the MAC counted with zeros skipped, the dense one executed
        s = report["strategy"]
        assert s["sparse_mac_ratio"] <= 0.8 + 1e-9 and s["pruned_kernels"] > 0
        assert f"MAC {s['sparse_mac_ratio']:.3f} counted with pruned kernels skipped, " \
               f"{s['executed_mac_ratio']:.3f} executed by the exported dense model" in " ".join(result.stdout.split())
        assert (out / "kernel_mask.json").exists()
    else:
        assert "re-fitted convs, median relative output error" in result.stdout


@pytest.mark.parametrize("given, weight", [([], None), (["--distill"], 1.0), (["--distill", "0.25"], 0.25),
                                           (["--distill", "0"], 0.0)])
def test_distill_takes_an_optional_weight(tmp_path, monkeypatch, given, weight):
    import edgeprune.commands.prune as command

    seen = []
    monkeypatch.setattr(command, "prune", lambda options, echo=None: seen.append(options) or "ok")
    result = run("prune", "--model", "edsr", *given, "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert seen[0].distill == weight
