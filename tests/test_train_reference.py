"""tools/train_reference.py: the recipe behind the shipped weights. A short real run writes its curve and model and
resumes; wall hours add up across resumed processes; bad input is one line and exit 2; the manifest's command is
the training command alone; the curve plot reads the shipped manifests."""

import json

import pytest


@pytest.fixture(scope="module")
def tr():
    from conftest import load_tool

    return load_tool("train_reference")


def test_hours_add_up_across_resumed_processes(tr):
    curve = [{"step": 0, "bicubic_psnr": 29.0},  # no seconds: not counted
             {"step": 1000, "seconds": 600.0}, {"step": 2000, "seconds": 1200.0},
             {"step": 3000, "seconds": 300.0},  # a new process: 300 s since its start
             {"step": 4000, "seconds": 900.0}]
    assert tr._training_hours(curve) == pytest.approx((600 + 600 + 300 + 600) / 3600)


def test_bad_input_is_one_line_and_exit_2(tr, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        tr.main(["--net", "edsr"])
    assert stop.value.code == 2
    assert "--net, --steps and --out are required" in capsys.readouterr().err
    code = tr.main(["--net", "edsr", "--steps", "2", "--out", str(tmp_path / "run"), "--ship", "--batch-size", "2",
                    "--patch", "8", "--eval-every", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("Error: ") and "holds no finished run (no final.keras)" in err[-1]


def test_a_short_run_writes_its_curve_and_model_and_refuses_other_arguments(tr, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--net", "edsr", "--steps", "2", "--out", str(out), "--batch-size", "2", "--patch", "8",
            "--eval-every", "2", "--verbose", "0"]
    assert tr.main(args) == 0
    curve = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    assert [line["step"] for line in curve] == [0, 2] and "bicubic_psnr" in curve[0]
    assert all(line["psnr"] > 0 for line in curve[1:])
    assert (out / "final.keras").exists() and (out / "latest.keras").exists()
    record = json.loads((out / "run.json").read_text())
    assert record["args"]["steps"] == 2 and {"cpu", "tensorflow", "tf_keras", "python"} <= set(record)
    assert tr.main([*args[:3], "3", *args[4:]]) == 2
    assert "holds a run with other arguments" in capsys.readouterr().err


def test_the_recorded_command_leaves_out_what_ship_adds(tr, monkeypatch):
    seen = {}
    monkeypatch.setattr(tr, "run", lambda args: seen.setdefault("args", args) and 0)
    tr.main(["--net", "sid", "--steps", "10", "--out", "o", "--ship", "--history", "a@8", "--note", "a b",
             "--init", "m.keras"])
    assert seen["args"].command_line == ["--net", "sid", "--steps", "10", "--out", "o", "--init", "m.keras"]
    assert seen["args"].history == ["a@8"] and seen["args"].note == "a b"


def test_the_curve_plot_reads_the_shipped_manifests(tr, tmp_path):
    png = tmp_path / "curves.png"
    assert tr.main(["--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
