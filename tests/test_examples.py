"""The examples run as a user runs them, at tiny widths: pruning inside model.fit under MirroredStrategy (two
logical CPU devices), a custom training loop, and two MultiWorkerMirroredStrategy workers on 127.0.0.1."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--blocks", "2", "--features", "8", "--patch", "12", "--batch", "4", "--pretrain", "20",
        "--steps-per-check", "5", "--max-iterations", "3", "--target-mac", "0.8"]


def _run(script: str, *args, timeout=300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], capture_output=True,
                            text=True, timeout=timeout, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _check_outputs(out: Path, summary: dict) -> None:
    import edgeprune
    from edgeprune.prune.plan import PruningPlan

    slim = edgeprune.load_model(out / "slim.keras")
    plan = PruningPlan.load(out / "plan.json")
    assert sum(map(len, plan.keep.values())) < sum(plan.sizes.values())
    assert summary["mac_ratio"] < 1
    assert slim.count_params() > 0


def test_prune_in_fit_under_mirrored_strategy_on_two_logical_devices(tmp_path):
    _run("prune_edsr_in_fit.py", "--out", str(tmp_path), "--cpu-devices", "2", *TINY)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["replicas"] == 2 and summary["tflite_verified"] and summary["iterations"] >= 1
    assert (tmp_path / "slim.tflite").stat().st_size > 0
    _check_outputs(tmp_path, summary)


def test_a_custom_training_loop_prunes_with_the_same_gate(tmp_path):
    _run("custom_loop.py", "--out", str(tmp_path), *TINY)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 5 * len(summary["decisions"]) and summary["decisions"][0]
    _check_outputs(tmp_path, summary)


def test_two_multi_worker_processes_end_identical_and_the_chief_alone_writes(tmp_path):
    out, digests = tmp_path / "out", tmp_path / "digest"
    _run("multi_worker.py", "--launch", "2", "--out", str(out), "--digest-dir", str(digests), *TINY, timeout=600)
    workers = [json.loads((digests / f"worker-{i}.json").read_text()) for i in (0, 1)]
    assert [w["chief"] for w in workers] == [True, False]
    assert all(w["replicas"] == 2 for w in workers)
    for key in ("weights_sha256", "keep", "mac", "decisions"):
        assert workers[0][key] == workers[1][key], key
    assert workers[0]["mac"] < 1
    # one set of outputs, the chief's: the model, the plan and the gate's checkpoint
    assert sorted(p.name for p in out.iterdir()) == ["backup", "plan.json", "slim.keras"]
    assert (out / "backup" / "loop.json").exists()
    _check_outputs(out, {"mac_ratio": workers[0]["mac"]})
