"""The three pruning methods side by side on one quick baseline: the paper's threshold loop (A-D), coarse random masks
(feature maps, kernels, both) and pivoted QR (one-shot reconstruction, and as the loop's importance), each at equal
MAC targets, with the executed MAC, the measured host latency ratio of the exported model and the equal-budget
control (the table "The three methods side by side" in BENCHMARKS.md).

    .venv/bin/python tools/compare_strategies.py --model edsr --baseline runs/edsr/baseline.keras \\
        --targets 0.8,0.6 --out runs/compare-edsr [--runs D,coarse-both,qr-oneshot] [--jobs 2]

Every run is ``edgeprune prune`` in its own process (the command a user types, recorded beside its row) on the same
baseline and data; a run whose ``report.json`` exists is not repeated, so a killed comparison continues where it
stopped. Runs with the same fine-tuning budget share one equal-budget control (edgeprune's control cache).
``--jobs N`` runs N at once, each with cores/N TensorFlow threads (two 1-thread fits on 2 cores train about 1.3x
faster in all than one 2-thread fit); their in-run latency figures are then taken under each other's load, so at the
end the baseline and every pruned model are timed again side by side in one idle process (``latency_idle``), which
is the table's latency column. Prints the Markdown table and writes ``DIR/summary.json`` (rows with the commands,
the CPU, the versions).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from importlib.metadata import version
from pathlib import Path

# run name -> the options that select it (on top of --model, --baseline, --target-mac, --preset quick)
RUNS = {
    "A": ["--method", "A"],
    "B": ["--method", "B"],
    "C": ["--method", "C"],
    "D": ["--method", "D"],
    "D-gate-control": ["--method", "D", "--gate", "control"],
    "coarse-channel": ["--strategy", "coarse", "--granularity", "channel"],
    "coarse-kernel": ["--strategy", "coarse", "--granularity", "kernel"],
    "coarse-both": ["--strategy", "coarse", "--granularity", "both"],
    "qr-oneshot": ["--strategy", "qr"],
    "qr-loop": ["--importance", "qr"],
}


def cpu_flags() -> str:
    try:
        flags = next(l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags")).split()
    except (OSError, StopIteration):
        return platform.processor()
    return " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "asimd") if f in flags)


def command(args, name: str, target: float, out: Path) -> list[str]:
    extra = ["--max-iterations", str(args.max_iterations)] if args.max_iterations else []
    return [str(Path(sys.executable).parent / "edgeprune"), "prune", "--model", args.model, "--baseline",
            str(args.baseline), "--preset", "quick", "--target-mac", str(target), *extra, *RUNS[name],
            "--out", str(out), "--json"]


def row(name: str, target: float, report: dict, cmd: list[str], seconds: float) -> dict:
    base, pruned, control = report["baseline"], report["pruned"], report["control"]
    strategy = report.get("strategy") or {"name": "threshold"}
    latency = report.get("latency") or {}
    measured, predicted = latency.get("measured") or {}, latency.get("predicted") or {}
    return {"run": name, "target_mac": target, "strategy": strategy["name"],
            "method": report["settings"]["method"], "importance": report["settings"].get("importance"),
            "psnr": pruned["psnr"], "ssim": pruned["ssim"], "d_psnr_baseline": pruned["psnr"] - base["psnr"],
            "d_ssim_baseline": pruned["ssim"] - base["ssim"], "d_psnr_control": pruned["psnr"] - control["psnr"],
            "d_ssim_control": pruned["ssim"] - control["ssim"], "control_steps": control["steps"],
            "mac_counted": strategy.get("sparse_mac_ratio", pruned["mac_ratio"]),
            "mac_executed": pruned["mac_ratio"], "pruned_kernels": strategy.get("pruned_kernels", 0.0),
            "latency_measured": measured.get("ratio"), "latency_predicted": predicted.get("ratio"),
            "latency_input_size": latency.get("input_size"), "target_met": report["target_met"],
            "iterations": len(report["iterations"]),
            "accepted": sum(r["accepted"] for r in report["iterations"]),
            "finetune_steps": report["finetune_steps"]["lineage"], "seconds": round(seconds, 1),
            "command": " ".join(cmd)}


def markdown(rows: list[dict]) -> str:
    head = ("| target | run | PSNR | SSIM | vs baseline (dB / SSIM) | vs control (dB / SSIM) | MAC counted | "
            "MAC executed | host latency (idle, predicted) | iterations (accepted) | minutes |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        idle = r.get("latency_idle")
        latency = f"{idle:.3f}" if idle is not None else "-"
        if r.get("latency_predicted") is not None:
            latency += f" ({r['latency_predicted']:.3f})"
        lines.append(f"| {r['target_mac']} | {r['run']} | {r['psnr']:.3f} | {r['ssim']:.4f} | "
                     f"{r['d_psnr_baseline']:+.3f} / {r['d_ssim_baseline']:+.4f} | "
                     f"{r['d_psnr_control']:+.3f} / {r['d_ssim_control']:+.4f} | {r['mac_counted']:.3f}"
                     f"{'' if r['target_met'] else ' (not met)'} | {r['mac_executed']:.3f} | {latency} | "
                     f"{r['iterations']} ({r['accepted']}) | {r['seconds'] / 60:.1f} |")
    return "\n".join(lines)


def remeasure(rows: list[dict], baseline: Path, out: Path, num_threads: int) -> dict:
    """The baseline's and every run's pruned model's host latency, side by side in this (idle) process: sets each
    row's ``latency_idle`` (pruned / baseline) and returns the measurement's details."""
    from edgeprune.core.runtime import configure_process

    configure_process()
    from edgeprune.deploy.host_profile import measure_host_latency
    from edgeprune.core.modelio import load_model

    measured = [r for r in rows if (out / r["out"] / "pruned.keras").exists()]
    if not measured:
        return {}
    size = tuple(measured[0]["latency_input_size"])
    models = [load_model(baseline)] + [load_model(out / r["out"] / "pruned.keras") for r in measured]
    timed = measure_host_latency(models, size, num_threads=num_threads, rounds=15)
    base_us, *pruned_us = timed.pop("us")
    for r, us in zip(measured, pruned_us):
        r["latency_idle"] = us / base_us
        r["latency_idle_us"] = us
    return {"baseline_us": base_us, "input_size": list(size), **timed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, choices=["edsr", "sid"])
    parser.add_argument("--baseline", required=True, type=Path, help="the quick baseline (.keras) every run prunes")
    parser.add_argument("--targets", default="0.8,0.6", help="MAC targets, comma-separated")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {', '.join(RUNS)}")
    parser.add_argument("--max-iterations", type=int, default=None,
                        help="the loop's iteration cap for every run (default: the preset's)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (each with cores/jobs threads)")
    parser.add_argument("--num-threads", type=int, default=1, help="LiteRT threads of the latency measurements")
    parser.add_argument("--measure-only", action="store_true",
                        help="run nothing: time the baseline and the finished runs' models side by side again (on "
                             "an idle machine, after runs that shared it)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    names = [n for n in args.runs.split(",") if n]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        raise SystemExit(f"unknown run(s) {unknown}: use {', '.join(RUNS)}")
    if not args.baseline.is_file():
        raise SystemExit(f"baseline '{args.baseline}' does not exist: train one with 'edgeprune train' first")
    if args.jobs < 1:
        raise SystemExit("--jobs must be at least 1")
    targets = [float(t) for t in args.targets.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    summary_path = args.out / "summary.json"
    rows = json.loads(summary_path.read_text())["rows"] if summary_path.exists() else []
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    env = {**os.environ, **({"TF_NUM_INTRAOP_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
                            if args.jobs > 1 else {})}

    def save(extra=None):
        summary = {"model": args.model, "baseline": str(args.baseline), "cpu": platform.processor(),
                   "cpu_flags": cpu_flags(), "cores": os.cpu_count(), "jobs": args.jobs,
                   "tensorflow_threads": threads if args.jobs > 1 else "default",
                   "tensorflow": version("tensorflow"), "ai_edge_litert": version("ai-edge-litert"),
                   "rows": sorted(rows, key=lambda r: (-r["target_mac"], list(RUNS).index(r["run"]))),
                   **(extra or {})}
        summary_path.write_text(json.dumps(summary, indent=1))

    def one(name: str, target: float):
        out = args.out / f"{name}-{target}"
        cmd = command(args, name, target, out)
        print(f"== {name} at MAC {target}: {' '.join(cmd)}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(f"   {name} at {target} failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}",
                  file=sys.stderr, flush=True)
            return None
        (out / "log.txt").write_text(proc.stderr)
        r = row(name, target, json.loads(proc.stdout), cmd, time.perf_counter() - start)
        r["out"] = out.name
        print(f"   {name} at {target}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        return r

    todo = [] if args.measure_only else [
        (n, t) for t in targets for n in names
        if not (any(r["run"] == n and r["target_mac"] == t for r in rows)
                and (args.out / f"{n}-{t}" / "report.json").exists())]
    rows = [r for r in rows if (r["run"], r["target_mac"]) not in todo]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for future in as_completed([pool.submit(one, *job) for job in todo]):
            if future.result() is not None:
                rows.append(future.result())
                save()
    chosen = [r for r in rows if r["run"] in names and r["target_mac"] in targets]
    print("timing the baseline and the pruned models side by side (idle)", file=sys.stderr, flush=True)
    idle = remeasure(chosen, args.baseline, args.out, args.num_threads)
    save({"latency_idle": idle})
    print(markdown(sorted(chosen, key=lambda r: (-r["target_mac"], list(RUNS).index(r["run"])))))


if __name__ == "__main__":
    main()
