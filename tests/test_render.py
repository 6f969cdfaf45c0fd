from edgeprune.commands.render import si, table


def test_si():
    assert si(1_428_061_363_200) == "1.428T"
    assert si(560_091_234_304) == "560.1G"
    assert si(1728) == "1.728K"
    assert si(12) == "12"
    assert si(0) == "0"


def test_table_aligns_columns():
    out = table(["name", "n"], [["a", 1], ["bbb", 22]])
    assert out.splitlines() == ["name   n", "----  --", "a      1", "bbb   22"]


def _prune_report(base_psnr, pruned_psnr, control_psnr, base_ssim=0.8800, pruned_ssim=0.8842, control_ssim=0.8850):
    totals = {"mac": 100, "weights": 10, "activations": 50, "bw_elements": 60, "bw_bytes": 240}
    return {"model": "edsr", "settings": {"method": "D", "importance": "magnitude", "target_mac": 0.8,
                                          "tolerance": {"psnr": 0.05, "ssim": 0.002}},
            "input_size": [1020, 1020], "seconds": 12.3, "iterations": [{"accepted": True}, {"accepted": False}],
            "target_met": True, "finetune_steps": {"lineage": 100, "spent": 200},
            "baseline": {"psnr": base_psnr, "ssim": base_ssim, "totals": totals},
            "pruned": {"psnr": pruned_psnr, "ssim": pruned_ssim, "mac_ratio": 0.8, "totals": {**totals, "mac": 80},
                       "psnr_drop": base_psnr - pruned_psnr, "ssim_drop": base_ssim - pruned_ssim},
            "control": {"psnr": control_psnr, "ssim": control_ssim, "steps": 100}}


def test_prune_summary_prints_the_signed_change_against_baseline_and_control():
    from edgeprune.commands.render import prune_summary

    risen = prune_summary(_prune_report(30.000, 30.470, 30.530), "out").splitlines()
    line = next(line for line in risen if line.startswith("PSNR"))
    assert line == ("PSNR +0.470 dB vs baseline, -0.060 dB vs control (tolerance 0.05 dB below the baseline); "
                    "SSIM +0.0042 vs baseline, -0.0008 vs control; target MAC 0.8 met")
    fallen = prune_summary(_prune_report(30.009, 30.000, 29.990, 0.9, 0.8990, 0.8980), "out")
    assert "PSNR -0.009 dB vs baseline, +0.010 dB vs control" in fallen
    assert "SSIM -0.0010 vs baseline, +0.0010 vs control" in fallen
    assert "drop" not in fallen


def test_timing_lines_put_sub_phases_beside_their_phase():
    from edgeprune.commands.render import timing_lines

    timings = {"phases": {"prepare": {"seconds": 30.0, "count": 1},
                          "prepare.latency_profile": {"seconds": 24.0, "count": 1},
                          "baseline": {"seconds": 360.0, "count": 1},
                          "loop.finetune": {"seconds": 240.0, "count": 2}, "loop": {"seconds": 300.0, "count": 1}},
               "total_seconds": 720.0}
    assert timing_lines(timings) == ["", "time (minutes, this process): 12.0 in all = prepare 0.5 (latency_profile "
                                         "0.4); baseline 6.0; loop 5.0 (finetune 4.0)"]
    assert timing_lines(None) == []


def test_strategy_lines_say_how_qr_was_recovered_and_what_the_target_missed_by():
    from edgeprune.commands.render import strategy_lines

    fits = {"trunk": {"consumers": {"c1": {"refit": True, "error_before": 0.4, "error_after": 0.1},
                                    "up": {"refit": False, "reason": "not a Conv2D"}}}}
    tuned = strategy_lines({"name": "qr", "reconstruction": fits, "recover_steps": 480,
                            "missed_plan": {"mac": 0.551}})
    assert tuned == ["", "pivoted-QR selection with least-squares reconstruction, once (then fine-tuned for 480 "
                         "steps): 1 re-fitted convs, median relative output error 0.4000 with the kept channels' "
                         "original weights, 0.1000 re-fitted (on the sampled patches)",
                     "the allocation's nearest plan that misses the target costs MAC 0.551: at these widths it has "
                     "none in between"]
    plain = strategy_lines({"name": "qr", "reconstruction": {}, "recover_steps": 0, "missed_plan": None})
    assert plain == ["", "pivoted-QR selection with least-squares reconstruction, once (no fine-tuning)"]
