"""android_bench/run_on_device.sh: one result per model, all of them or none, through a stand-in 'edgeprune'."""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "android_bench" / "run_on_device.sh"

# Prints a result for a model, and fails (after printing half a result) for a model whose name contains "bad".
FAKE_EDGEPRUNE = """#!/usr/bin/env bash
echo '{"model": "'"$2"'",'
case "$2" in *bad*) echo "Error: the device went away" >&2; exit 2 ;; esac
echo '"avg_us": 1}'
"""


@pytest.fixture
def fake_path(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "edgeprune").write_text(FAKE_EDGEPRUNE)
    (bin_dir / "edgeprune").chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def _run(models, path):
    return subprocess.run(["bash", str(SCRIPT), *map(str, models)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": path})


def test_every_model_gets_its_result(tmp_path, fake_path):
    models = [tmp_path / "a.tflite", tmp_path / "b.tflite"]
    proc = _run(models, fake_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"wrote {m}.device.json" for m in models]
    assert (tmp_path / "a.tflite.device.json").read_text() == f'{{"model": "{models[0]}",\n"avg_us": 1}}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tflite.device.json", "b.tflite.device.json", "bin"]


def test_a_failure_leaves_no_result_and_no_partial_file(tmp_path, fake_path):
    models = [tmp_path / "a.tflite", tmp_path / "bad.tflite", tmp_path / "c.tflite"]
    proc = _run(models, fake_path)
    assert proc.returncode == 2 and proc.stderr == "Error: the device went away\n" and proc.stdout == ""
    assert [p.name for p in tmp_path.iterdir()] == ["bin"]
