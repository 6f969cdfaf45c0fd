"""tools/run_benchmarks.py: which commands a budget runs, how a row's figures and the top table's verdicts follow from
the prune reports (seed spread, the gate against baseline and control), resuming (a finished command is not run
again), and, marked slow, the quick budget end to end."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "run_benchmarks.py"


@pytest.fixture(scope="module")
def rb():
    from conftest import load_tool

    return load_tool("run_benchmarks")


def report(psnr, ssim, control_psnr, control_ssim, mac=0.5, base_psnr=30.0, base_ssim=0.9, steps=120):
    base = {"mac": 1000, "weights": 100, "bias": 1, "other_params": 0, "activations": 400, "bw_elements": 500,
            "bw_bytes": 2000}
    pruned = {k: int(v * mac) if k in ("mac", "weights") else int(v * (0.5 + mac / 2)) for k, v in base.items()}
    return {"baseline": {"psnr": base_psnr, "ssim": base_ssim, "totals": base},
            "pruned": {"psnr": psnr, "ssim": ssim, "totals": pruned},
            "control": {"psnr": control_psnr, "ssim": control_ssim, "steps": steps},
            "iterations": [{"accepted": True}, {"accepted": False}], "input_size": [1020, 1020],
            "layers": [{"layer": "c1", "original": 8, "pruned": 4}, {"layer": "c2", "original": 8, "pruned": 8}],
            "groups": {"g1": {"size": 8, "kept": 4}, "g2": {"size": 8, "kept": 8}}}


def test_a_budget_plans_every_loop_row_per_seed_then_qr_at_each_target(rb):
    full = rb.BUDGETS["full"]
    plan = rb.planned_rows(full)
    assert plan[:3] == [("A", 0), ("A", 1), ("A", 2)]
    assert len(plan) == 3 * len(rb.LOOP_ROWS) + len(full.qr_targets) + len(full.tuned_targets)
    assert plan[-1] == (f"qr-tuned@{full.tuned_targets[-1]}", 0)
    assert rb.planned_rows(rb.BUDGETS["quick"]) == [("D", 0), ("qr-oneshot@0.6", 0)]
    assert rb.planned_rows(full, rows=("coarse",), seeds=2) == [("coarse", 0), ("coarse", 1)]
    # the medium budget spreads only method D over the seeds
    assert rb.planned_rows(rb.BUDGETS["medium"], net="sid") == [
        ("A", 0), ("B", 0), ("C", 0), ("D", 0), ("D", 1), ("D", 2), ("latency-aware", 0), ("coarse", 0),
        ("qr-loop", 0), ("qr-oneshot@0.7", 0), ("qr-oneshot@0.5", 0), ("qr-oneshot@0.35", 0), ("qr-tuned@0.5", 0),
        ("qr-tuned@0.35", 0)]
    # tuned targets per network: EDSR also at 0.6, where its aligned widths have a plan above 0.5
    assert rb.planned_rows(rb.BUDGETS["medium"], rows=("qr-tuned",), net="edsr") == [
        ("qr-tuned@0.6", 0), ("qr-tuned@0.5", 0), ("qr-tuned@0.35", 0)]


def test_the_commands_are_the_users_with_the_gate_a_low_target_and_the_seed(rb, tmp_path):
    quick, exe, base = rb.BUDGETS["quick"], Path("/x/edgeprune"), Path("b.keras")
    cmd = rb.prune_command(exe, "edsr", base, quick, "D", 2, tmp_path / "D-s2")
    assert cmd[:8] == ["/x/edgeprune", "prune", "--model", "edsr", "--baseline", "b.keras", "--preset", "quick"]
    joined = " ".join(cmd)
    assert "--method D --target-mac 0.2 --gate control --finetune-steps 20 --max-iterations 3 --seed 2" in joined
    # seed 0 is the command a user types without --seed (the same run, the same JSON)
    assert "--seed" not in rb.prune_command(exe, "edsr", base, quick, "D", 0, tmp_path)
    lat = " ".join(rb.prune_command(exe, "sid", base, quick, "latency-aware", 0, tmp_path))
    assert "--target-latency 0.2" in lat and "--target-mac" not in lat
    qr = rb.prune_command(exe, "edsr", base, quick, "qr-oneshot@0.6", 0, tmp_path)
    assert qr[8:12] == ["--strategy", "qr", "--target-mac", "0.6"] and "--gate" not in qr and "--seed" not in qr
    assert "--recover-steps" not in qr
    # tuned QR: fine-tuned for as many steps as a loop row may spend at most (8 iterations of 60 at medium)
    medium = rb.BUDGETS["medium"]
    tuned = rb.prune_command(exe, "sid", base, medium, "qr-tuned@0.35", 0, tmp_path)
    assert tuned[8:14] == ["--strategy", "qr", "--target-mac", "0.35", "--recover-steps", "480"]
    assert medium.recover_steps == medium.finetune_steps * medium.max_iterations == 480


def test_variants_run_every_row_again_at_seed_0_beside_it_where_they_apply(rb, tmp_path):
    medium, exe, base = rb.BUDGETS["medium"], Path("edgeprune"), Path("b.keras")
    plan = rb.planned_rows(medium, rows=("D", "latency-aware", "qr-oneshot", "qr-tuned"), net="sid",
                           variants=("m8", "distill", "m8+distill"))
    assert plan == [
        ("D", 0), ("D+m8", 0), ("D+distill", 0), ("D+m8+distill", 0), ("D", 1), ("D", 2),
        ("latency-aware", 0), ("latency-aware+distill", 0),  # its widths are the profile's: no m8
        ("qr-oneshot@0.7", 0), ("qr-oneshot@0.7+m8", 0), ("qr-oneshot@0.5", 0), ("qr-oneshot@0.5+m8", 0),
        ("qr-oneshot@0.35", 0), ("qr-oneshot@0.35+m8", 0),  # not fine-tuned: nothing to distil
        ("qr-tuned@0.5", 0), ("qr-tuned@0.5+m8", 0), ("qr-tuned@0.5+distill", 0), ("qr-tuned@0.5+m8+distill", 0),
        ("qr-tuned@0.35", 0), ("qr-tuned@0.35+m8", 0), ("qr-tuned@0.35+distill", 0),
        ("qr-tuned@0.35+m8+distill", 0)]
    assert rb.planned_rows(medium, net="sid") == rb.planned_rows(medium, net="sid", variants=())  # none by default
    cmd = rb.prune_command(exe, "edsr", base, medium, "D+m8+distill", 0, tmp_path)
    assert cmd[8:] == ["--method", "D", "--target-mac", "0.2", "--gate", "control", "--finetune-steps", "60",
                       "--max-iterations", "8", "--channel-multiple", "8", "--distill", "--out", str(tmp_path),
                       "--json"]
    tuned = rb.prune_command(exe, "edsr", base, medium, "qr-tuned@0.5+distill", 1, tmp_path)
    assert tuned[8:16] == ["--strategy", "qr", "--target-mac", "0.5", "--recover-steps", "480", "--distill",
                           "--seed"]
    assert rb.check_variant("distill+m8") == ["m8", "distill"]
    with pytest.raises(SystemExit, match="unknown variant 'm16': combine m8, distill with"):
        rb.check_variant("m16")
    assert rb.width_histogram({"groups": {"a": {"kept": 8}, "b": {"kept": 16}, "c": {"kept": 8}}}) == {8: 2, 16: 1}
    assert rb.widths_text({16: 1, 8: 2}) == "8x2, 16x1"
    text = rb.variants_text(("m8", "m8+distill"))[0]
    assert text.startswith("Rows named ROW+VARIANT are ROW run again at seed 0 with `--channel-multiple 8`")


def test_plan_prints_the_commands_and_writes_nothing(tmp_path, capsys, rb):
    out = tmp_path / "bench"
    assert rb.main(["--budget", "quick", "--out", str(out), "--variants", "m8", "--plan"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["edsr D s0", "edsr D+m8 s0", "edsr qr-oneshot@0.6 s0",
                                                      "edsr qr-oneshot@0.6+m8 s0", "sid D s0", "sid D+m8 s0",
                                                      "sid qr-oneshot@0.6 s0", "sid qr-oneshot@0.6+m8 s0"]
    assert "--channel-multiple 8 --out " + str(out / "edsr" / "D+m8-s0") in lines[1]
    assert not out.exists()
    with pytest.raises(SystemExit):
        rb.main(["--budget", "quick", "--out", str(out), "--variants", "m4", "--plan"])


def test_a_target_row_that_held_at_seed_0_is_confirmed_at_the_other_seeds_and_one_that_failed_is_not(rb, tmp_path):
    medium = rb.BUDGETS["medium"]
    plan = [("D", 0), ("qr-oneshot@0.7", 0), ("qr-tuned@0.5", 0), ("qr-tuned@0.35", 0)]
    verdicts = {"qr-oneshot@0.7": report(30.0, 0.9, 30.0, 0.9), "qr-tuned@0.5": report(30.0, 0.9, 30.0, 0.9),
                "qr-tuned@0.35": report(29.9, 0.9, 30.0, 0.9)}  # 0.1 dB under the baseline: failed
    for name, r in verdicts.items():
        folder = rb.row_dir(tmp_path, "sid", name, 0)
        folder.mkdir(parents=True)
        (folder / "report.json").write_text(json.dumps(r))
    # only the budget's confirm rows (tuned QR at medium), only where seed 0 held, at seeds 1 and 2
    assert rb.confirmations(tmp_path, "sid", medium, plan) == [("qr-tuned@0.5", 1), ("qr-tuned@0.5", 2)]
    assert rb.confirmations(tmp_path, "sid", medium, plan, seeds=1) == []
    assert rb.confirmations(tmp_path, "sid", rb.BUDGETS["quick"], plan) == []
    cmd = rb.prune_command(Path("edgeprune"), "sid", Path("b.keras"), medium, "qr-tuned@0.5", 2, tmp_path)
    assert cmd[-6:] == ["480", "--seed", "2", "--out", str(tmp_path), "--json"]


def test_the_lowest_mac_row_held_at_seed_0_is_run_at_the_other_seeds_then_the_next_until_one_holds(rb, tmp_path):
    medium = rb.BUDGETS["medium"]

    def write(name, seed, r):
        folder = rb.row_dir(tmp_path, "sid", name, seed)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").write_text(json.dumps(r))

    ok = lambda mac: report(30.0, 0.9, 30.0, 0.9, mac=mac)
    write("D", 0, ok(0.9))
    write("A", 0, ok(0.4))
    write("B", 0, ok(0.45))
    write("qr-tuned@0.35", 0, ok(0.35))
    write("qr-loop", 0, report(29.0, 0.9, 30.0, 0.9, mac=0.2))  # lowest, but it failed at seed 0
    for seed in (1, 2):  # the tuned row has its seeds already (confirm_rows), and seed 2 failed
        write("qr-tuned@0.35", seed, report(30.0, 0.9, 30.0, 0.9) if seed == 1 else report(30.0, 0.896, 30.0, 0.9))
    plan = [("D", 0), ("A", 0), ("B", 0), ("qr-loop", 0), *(("qr-tuned@0.35", s) for s in range(3))]
    assert rb.best_confirmation(tmp_path, "sid", medium, plan) == [("A", 1), ("A", 2)]
    write("A", 1, ok(0.5))
    write("A", 2, report(29.9, 0.9, 30.0, 0.9, mac=0.4))  # A fails at seed 2: B is next
    plan += [("A", 1), ("A", 2)]
    assert rb.best_confirmation(tmp_path, "sid", medium, plan) == [("B", 1), ("B", 2)]
    write("B", 1, ok(0.45))
    write("B", 2, ok(0.5))
    assert rb.best_confirmation(tmp_path, "sid", medium, plan + [("B", 1), ("B", 2)]) == []  # B held at every seed
    # nothing to confirm at one seed, nor where the budget does not ask
    assert rb.best_confirmation(tmp_path, "sid", medium, plan, seeds=1) == []
    assert rb.best_confirmation(tmp_path, "sid", rb.BUDGETS["quick"], plan) == []


def test_a_row_holds_only_if_every_seed_is_within_tolerance_of_baseline_and_control(rb):
    good = report(30.01, 0.9005, 30.00, 0.9000)
    figures = rb.row_figures([good, report(29.97, 0.8990, 29.99, 0.8995)])
    assert figures["held"] and figures["seeds"] == 2
    assert figures["d_psnr_baseline"]["min"] == pytest.approx(-0.03) and figures["psnr"]["max"] == 30.01
    assert figures["mac"]["mean"] == 0.5 and figures["accepted"]["mean"] == 1 and figures["iterations"]["max"] == 2
    # above the baseline but 0.06 dB under the control: extra training hid pruning damage
    assert not rb.row_figures([good, report(30.2, 0.91, 30.26, 0.91)])["held"]
    assert not rb.row_figures([report(30.0, 0.897, 30.0, 0.897)])["held"]  # SSIM 0.003 under the baseline


def test_the_top_table_gives_the_lowest_mac_that_held_for_d_and_the_best_row(rb):
    rows = {"D": rb.row_figures([report(30.0, 0.9, 30.0, 0.9, mac=0.55)]),
            "coarse": rb.row_figures([report(30.0, 0.9, 30.0, 0.9, mac=0.45)]),
            "qr-loop": rb.row_figures([report(29.0, 0.9, 30.0, 0.9, mac=0.3)])}  # lower, but it did not hold
    assert rb.lowest_held(rows, ["D"])[0] == "D" and rb.lowest_held(rows, list(rows))[0] == "coarse"
    table = rb.top_table({"edsr": {"rows": rows}, "sid": {"rows": {"D": rows["qr-loop"]}}})
    edsr, sid = table.splitlines()[2:]
    assert "| edsr | 0.63 / 0.80 | 0.50 / 0.6 | 0.550 (0.774) | coarse: 0.450 (0.724) | no (best 0.450 MAC, " \
           "0.724 BW) |" == edsr
    assert sid.startswith("| sid | 0.42 / 0.61 | 0.35 / 0.5 | none held | none held | no (no row held) |")
    # the claim is met by any row that held within both limits, not only by the lowest-MAC one
    rows["deep"] = rb.row_figures([report(30.0, 0.9, 30.0, 0.9, mac=0.2)])
    assert rb.top_table({"edsr": {"rows": rows}}).splitlines()[2].endswith("| yes |")
    assert "| not run |" in rb.top_table({"edsr": {"rows": {"coarse": rows["coarse"]}}})
    # at 3 seeds, a row held at one seed is named beside the best, not counted as it, nor as meeting the claim
    three = rb.row_figures([report(30.0, 0.9, 30.0, 0.9, mac=0.55)] * 3)
    line = rb.top_table({"edsr": {"rows": {"D": three, "deep": rows["deep"]}}}, seeds=3).splitlines()
    assert "held at all 3 seeds" in line[0]
    assert line[2] == ("| edsr | 0.63 / 0.80 | 0.50 / 0.6 | 0.550 (0.774) | D: 0.550 (0.774); lower but held at 1 "
                       "seed only: deep: 0.200 (0.600) | no (best 0.550 MAC, 0.774 BW) |")


def test_the_section_and_the_plots_are_written_from_the_figures(rb, tmp_path):
    reports = {"D": report(30.0, 0.9, 30.0, 0.9, mac=0.55)}
    rows = {n: rb.row_figures([r]) for n, r in reports.items()}
    baseline = {"psnr": 30.0, "ssim": 0.9, "totals": reports["D"]["baseline"]["totals"], "input_size": [1020, 1020],
                "widths": rb.original_widths(reports["D"]),
                "train_seconds": 60.0, "quick": {"psnr": 29.5, "ssim": 0.89, "steps": 400, "train_seconds": 20.0},
                "bicubic": {"psnr": 28.0, "ssim": 0.85, "images": 8}}
    latency = {"input_size": [64, 64], "fp32": {"baseline_us": 2000.0}, "int8": {"baseline_us": 1000.0},
               "rows": {"D": {"fp32": 0.6, "int8": 0.7, "predicted": 0.58}}}
    eval_cost = {"Original": {"mac": 4e9}, "D": {"mac": 2.2e9}}
    info = {"budget": "quick", "date": "today", "cpu": "x86_64", "cores": 2, "cpu_flags": "avx2 fma",
            "versions": {"tensorflow": "2.x"}}
    commands = {"edsr": {"baseline": "edgeprune train --model edsr", "rows": {"D": "edgeprune prune --method D"}}}
    text = rb.section(info, {"edsr": {"baseline": baseline, "rows": rows, "latency": latency,
                                      "eval_cost": eval_cost}}, rb.BUDGETS["quick"], commands, 90.0)
    assert "What this budget cuts: quick budget: baselines of 100" in text
    assert ("; the quick preset's baseline (400 steps, the same data, 20 s): 29.500 dB / 0.8900 (+0.500 dB, "
            "+0.0100 here); bicubic upscaling: 28.000 dB / 0.8500 (+2.000 dB, +0.0500 here).") in text
    assert "| D | 1 | 0.0G (0.550) | 0K (0.550) |" in text
    # the measured host latency beside the MAC (the baseline's 2 ms x 0.6), the kept widths at the end
    assert "| 2.200G | 1.20 ms | 30.000 | 0.9000 | +0.000 / +0.0000 |" in text
    assert "| yes | 0.600 | 0.700 | 0.580 | 2 (1) | 4x1, 8x1 |" in text and "- D: `edgeprune prune --method D`" in text
    assert "| 4.000G | 2.00 ms | 30.000 |" in text and text.count("ROW+VARIANT") == 0
    written = rb.plots(tmp_path, "edsr", baseline, rows, reports, latency)
    assert [p.name for p in written] == ["edsr-channels.png", "edsr-psnr-mac.png", "edsr-latency.png"]
    assert all(p.stat().st_size > 5000 for p in written)


def test_a_finished_command_is_not_run_again_and_a_failure_stops_the_run(rb, tmp_path):
    runner = rb.Runner(tmp_path, dict(os.environ))
    marker = tmp_path / "done.txt"
    cmd = [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('x')"]
    assert runner.run(cmd, marker, tmp_path / "a.log") is not None and marker.exists()
    assert runner.run(cmd, marker, tmp_path / "a.log") is None
    log = (tmp_path / "log.txt").read_text()
    assert "run: " in log and "rc 0 after" in log and "done before: " in log
    with pytest.raises(SystemExit, match=r"failed \(3\): .* boom"):
        runner.run([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"],
                   tmp_path / "never", tmp_path / "b.log")


def test_a_killed_loop_resumes_a_killed_run_before_its_loop_starts_again_and_a_failure_stops_the_pool(rb, tmp_path,
                                                                                                   monkeypatch):
    calls = []

    class Recorder(rb.Runner):
        def run(self, cmd, done, log):
            calls.append(cmd)
            if "--method" in cmd and cmd[cmd.index("--method") + 1] == "A":
                raise SystemExit("failed (1): boom")
            return 1.0

    runner = Recorder(tmp_path, {})
    quick = rb.BUDGETS["quick"]
    loop = rb.row_dir(tmp_path, "edsr", "D", 0) / ".work" / "loop"
    loop.mkdir(parents=True)
    rb.run_row(runner, Path("edgeprune"), "edsr", Path("b.keras"), quick, "D", 0)
    assert calls[-1][-1] == "--json"  # .work without the loop's state: started again, not resumed
    (loop / "loop.json").write_text("{}")
    rb.run_row(runner, Path("edgeprune"), "edsr", Path("b.keras"), quick, "D", 0)
    assert calls[-1][-1] == "--resume"
    assert "--resume" not in (rb.row_dir(tmp_path, "edsr", "D", 0) / "command.txt").read_text()
    work = tmp_path / "sid" / ".baseline.keras.work"
    work.mkdir(parents=True)
    rb.train_baseline(runner, Path("edgeprune"), "sid", quick)
    assert calls[-1][-1] == "--resume" and "--resume" not in (tmp_path / "sid" / "train-command.txt").read_text()
    # a failing row stops the run: with one job, the rows queued after it never start
    monkeypatch.setattr(rb, "Runner", lambda out, env: Recorder(out, env))
    monkeypatch.setattr(rb, "train_baseline", lambda runner, exe, net, budget, data=None: tmp_path / "b.keras")
    monkeypatch.setitem(rb.BUDGETS, "tiny", rb.Budget(baseline_steps={"edsr": 1}, finetune_steps=1, max_iterations=1,
                                                      rows=("A", "B", "C"), seeds=1, qr_targets=(), cuts="tiny"))
    import edgeprune.deploy.host_profile as hp

    monkeypatch.setattr(hp, "host_profile", lambda threads: None)
    calls.clear()
    with pytest.raises(SystemExit, match="boom"):
        rb.main(["--budget", "tiny", "--networks", "edsr", "--jobs", "1", "--out", str(tmp_path / "run")])
    assert calls[0][-2:] == ["--out", str(tmp_path / "run" / "edsr" / "quick-baseline.keras")]  # the reference
    assert [c[c.index("--method") + 1] for c in calls[1:]] == ["A"]


def test_a_run_folder_of_another_cpu_is_refused_and_a_resumed_one_records_when(rb, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    out.mkdir()
    record = rb.machine("quick", rb.BUDGETS["quick"])
    (out / "machine.json").write_text(json.dumps({**record, "cpu": "another CPU (avx2)"}))
    with pytest.raises(SystemExit) as exc:
        rb.main(["--budget", "quick", "--out", str(out)])
    assert exc.value.code == 2 and "holds a run from another CPU (another CPU (avx2)): use another --out" in \
        capsys.readouterr().err
    stale = {**record, "date": "earlier", "budget_settings": {"rows": ["D"]}}
    (out / "machine.json").write_text(json.dumps(stale))

    class Stop(rb.Runner):
        def run(self, cmd, done, log):
            raise SystemExit("stopped")

    monkeypatch.setattr(rb, "Runner", lambda out, env: Stop(out, env))
    with pytest.raises(SystemExit, match="stopped"):
        rb.main(["--budget", "quick", "--out", str(out)])
    resumed = json.loads((out / "machine.json").read_text())
    assert resumed["date"] == "earlier" and len(resumed["resumed"]) == 1
    assert resumed["budget_settings"] == json.loads(json.dumps(rb.BUDGETS["quick"].to_dict()))


@pytest.mark.slow
def test_the_quick_budget_runs_end_to_end_in_under_30_minutes_and_resumes(tmp_path):
    out, env = tmp_path / "bench", {**os.environ}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(SCRIPT), "--budget", "quick", "--out", str(out)], env=env,
                          capture_output=True, text=True, timeout=3600)
    first = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert first < 30 * 60
    text = (out / "benchmarks.md").read_text()
    for line in ("| network | paper's D", "### EDSR", "### SID", "| Original | 1 |", "| D | 1 |", "| qr-oneshot@0.6 |"):
        assert line in text
    results = json.loads((out / "results.json").read_text())["results"]
    assert set(results) == {"edsr", "sid"} and all(len(list((out / "plots").glob(f"{n}-*.png"))) == 3
                                                     for n in results)
    # a second invocation runs no command again and gives the same cost figures
    again = subprocess.run([sys.executable, str(SCRIPT), "--budget", "quick", "--out", str(out)], env=env,
                           capture_output=True, text=True, timeout=1200)
    assert again.returncode == 0 and "run: " not in again.stderr and "done before: " in again.stderr
    rerun = json.loads((out / "results.json").read_text())["results"]
    for net in results:
        assert rerun[net]["rows"] == results[net]["rows"]


def test_with_two_jobs_the_baselines_train_at_once_and_the_qr_rows_start_first(rb, tmp_path, monkeypatch):
    import threading

    import edgeprune.deploy.host_profile as hp

    both = threading.Barrier(2, timeout=20)  # broken unless the two trainings wait here at the same time
    started = []

    class Recorder(rb.Runner):
        def run(self, cmd, done, log):
            if cmd[1] == "train":
                both.wait()
                return 1.0
            started.append(cmd[cmd.index("--out") + 1].split("/")[-1])
            raise SystemExit("stop here")

    monkeypatch.setattr(rb, "Runner", lambda out, env: Recorder(out, env))
    monkeypatch.setattr(hp, "host_profile", lambda threads: None)
    with pytest.raises(SystemExit, match="stop here"):
        rb.main(["--budget", "quick", "--jobs", "2", "--out", str(tmp_path / "run")])
    assert not both.broken and set(started) <= {"qr-oneshot@0.6-s0"} and started
    assert (tmp_path / "run" / "edsr" / "train-command.txt").exists()
    assert (tmp_path / "run" / "sid" / "train-command.txt").exists()
