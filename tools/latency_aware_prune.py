"""The prune loop without and with a latency profile, on one baseline, at one tolerance: is the latency-aware model
measurably faster? Regenerates BENCHMARKS.md's table "Latency-aware pruning".

For each model, the loop runs twice from the same trained baseline (``--baseline``, e.g. the ``baseline.keras`` a
README main command cached): ``--latency-profile none`` (any width, MAC levels) and the latency-aware default
(``host``, or ``--latency-profile FILE``). Then the baseline and both pruned models are exported to fp32 TFLite at
the validation input size and timed side by side in one process (LiteRT/XNNPACK, medians of interleaved rounds), so
the ratios compare like with like. An earlier run folder can stand in for either run (``--aware-run``,
``--unaware-run``: its ``pruned.keras`` and ``report.json``), when it started from the same baseline.

    python tools/latency_aware_prune.py --model edsr --baseline runs/edsr/baseline.keras --out runs/la_edsr \\
        [--aware-run runs/edsr] [--rounds 21] [--num-threads 1]

Writes ``OUT/latency_aware.json`` and ``OUT/latency_aware.md`` (the table) and prints the table.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _run(model, baseline, out_dir: Path, latency_profile, num_threads):
    from edgeprune.commands.prune import prune
    from edgeprune.prune.options import PruneOptions

    if not (out_dir / "report.json").exists():
        prune(PruneOptions(model, out_dir, baseline=baseline, latency_profile=latency_profile,
                           num_threads=num_threads), echo=lambda text: print(text, file=sys.stderr, flush=True))
    return json.loads((out_dir / "report.json").read_text())


def _widths(report) -> str:
    """Distinct pruned widths of the conv layers that were pruned, with counts."""
    from collections import Counter

    counts = Counter(e["pruned"] for e in report["layers"] if e["pruned"] != e["original"])
    return ", ".join(f"{w} x{n}" for w, n in sorted(counts.items(), reverse=True)) or "none pruned"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="edsr or sid (or a .keras file)")
    parser.add_argument("--baseline", required=True, help="the trained baseline both runs start from")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--latency-profile", default="host", help="the aware run's profile (default: host)")
    parser.add_argument("--aware-run", type=Path, default=None, help="reuse this run folder as the aware run")
    parser.add_argument("--unaware-run", type=Path, default=None, help="reuse this run folder as the unaware run")
    parser.add_argument("--num-threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args(argv)

    from edgeprune.core.runtime import configure_process

    configure_process()
    from edgeprune.deploy.host_profile import cpu_label, measure_host_latency
    from edgeprune.core.modelio import load_model

    args.out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for name, reuse, profile in (("unaware", args.unaware_run, "none"), ("aware", args.aware_run,
                                                                         args.latency_profile)):
        folder = reuse or args.out / name
        report = _run(args.model, args.baseline, folder, profile, args.num_threads) if reuse is None else \
            json.loads((folder / "report.json").read_text())
        runs[name] = {"folder": str(folder), "report": report}
    size = runs["aware"]["report"]["latency"]["input_size"]
    models = [load_model(args.baseline)] + [load_model(Path(runs[n]["folder"]) / "pruned.keras")
                                            for n in ("unaware", "aware")]
    measured = measure_host_latency(models, size, args.num_threads, rounds=args.rounds)
    from edgeprune.deploy.host_profile import host_profile, pruning_profile
    from edgeprune.graph.cost import model_cost
    from edgeprune.graph.latency_profile import predict_report

    profile = (host_profile(args.num_threads)[0] if args.latency_profile == "host" else
               pruning_profile(args.latency_profile, args.num_threads)[0])
    predicted_us = [predict_report(profile, model_cost(m, tuple(size)))["total_us"] for m in models]
    base_us = measured["us"][0]
    rows = []
    for (name, run), us, pred in zip(runs.items(), measured["us"][1:], predicted_us[1:]):
        report = run["report"]
        latency = report.get("latency") or {"widths_for": "any width (a run from before latency-aware pruning)"}
        rows.append({"run": name, "widths_for": latency["widths_for"], "mac_ratio": report["pruned"]["mac_ratio"],
                     "predicted_latency_ratio": pred / predicted_us[0],
                     "measured_latency_ratio": us / base_us, "measured_ms": us / 1e3,
                     "psnr": report["pruned"]["psnr"], "ssim": report["pruned"]["ssim"],
                     "psnr_change": report["pruned"]["psnr"] - report["baseline"]["psnr"],
                     "ssim_change": report["pruned"]["ssim"] - report["baseline"]["ssim"],
                     "control_psnr": report["control"]["psnr"], "iterations": len(report["iterations"]),
                     "widths": _widths(report)})
    result = {"model": args.model, "baseline": args.baseline, "input_size": size, "cpu": cpu_label(),
              "baseline_ms": base_us / 1e3, "baseline_psnr": runs["aware"]["report"]["baseline"]["psnr"],
              "baseline_ssim": runs["aware"]["report"]["baseline"]["ssim"], "measurement": measured, "rows": rows}
    (args.out / "latency_aware.json").write_text(json.dumps(result, indent=2))
    lines = [f"{args.model}, baseline {result['baseline_psnr']:.3f} dB / {result['baseline_ssim']:.4f}, "
             f"{result['baseline_ms']:.1f} ms at {size[0]}x{size[1]} ({measured['runner']}, "
             f"{measured['num_threads']} thread(s), medians of {measured['rounds']} interleaved rounds; "
             f"{result['cpu']})", "",
             "| run | widths for | MAC ratio | predicted latency ratio (aware run's profile) | measured latency ratio | PSNR (change) | "
             "SSIM (change) | control PSNR | iterations | pruned widths |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        predicted = f"{r['predicted_latency_ratio']:.3f}"
        lines.append(f"| {r['run']} | {r['widths_for']} | {r['mac_ratio']:.3f} | {predicted} | "
                     f"{r['measured_latency_ratio']:.3f} | {r['psnr']:.3f} ({r['psnr_change']:+.3f}) | "
                     f"{r['ssim']:.4f} ({r['ssim_change']:+.4f}) | {r['control_psnr']:.3f} | {r['iterations']} | "
                     f"{r['widths']} |")
    text = "\n".join(lines)
    (args.out / "latency_aware.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
