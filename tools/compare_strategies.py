"""The three pruning methods side by side on one quick baseline: the paper's threshold loop (A-D), coarse random masks
(feature maps, kernels, both) and pivoted QR (one-shot reconstruction, and as the loop's importance), each at equal
MAC targets, with the executed MAC, the measured host latency ratio of the exported model and the equal-budget
control (issue 15's table in BENCHMARKS.md).

    .venv/bin/python tools/compare_strategies.py --model edsr --baseline runs/edsr/baseline.keras \\
        --targets 0.8,0.6 --out runs/compare-edsr [--runs D,coarse-both,qr-oneshot]

Every run is ``edgeprune prune`` in its own process (the command a user types, recorded beside its row) on the same
baseline and data; a run whose ``report.json`` exists is not repeated, so a killed comparison continues where it
stopped. Prints the Markdown table and writes ``DIR/summary.json`` (rows with the commands, the CPU, the versions).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

# run name -> the options that select it (on top of --model, --baseline, --target-mac, --preset quick)
RUNS = {
    "A": ["--method", "A"],
    "B": ["--method", "B"],
    "C": ["--method", "C"],
    "D": ["--method", "D"],
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
    measured = (report.get("latency") or {}).get("measured") or {}
    return {"run": name, "target_mac": target, "strategy": strategy["name"],
            "method": report["settings"]["method"], "importance": report["settings"].get("importance"),
            "psnr": pruned["psnr"], "ssim": pruned["ssim"], "d_psnr_baseline": pruned["psnr"] - base["psnr"],
            "d_ssim_baseline": pruned["ssim"] - base["ssim"], "d_psnr_control": pruned["psnr"] - control["psnr"],
            "d_ssim_control": pruned["ssim"] - control["ssim"], "control_steps": control["steps"],
            "mac_counted": strategy.get("sparse_mac_ratio", pruned["mac_ratio"]),
            "mac_executed": pruned["mac_ratio"], "pruned_kernels": strategy.get("pruned_kernels", 0.0),
            "latency_measured": measured.get("ratio"), "target_met": report["target_met"],
            "iterations": len(report["iterations"]),
            "accepted": sum(r["accepted"] for r in report["iterations"]),
            "finetune_steps": report["finetune_steps"]["lineage"], "seconds": round(seconds, 1),
            "command": " ".join(cmd)}


def markdown(rows: list[dict]) -> str:
    head = ("| target | run | PSNR | SSIM | vs baseline (dB / SSIM) | vs control (dB / SSIM) | MAC counted | "
            "MAC executed | host latency | iterations (accepted) | minutes |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        latency = f"{r['latency_measured']:.3f}" if r["latency_measured"] is not None else "-"
        lines.append(f"| {r['target_mac']} | {r['run']} | {r['psnr']:.3f} | {r['ssim']:.4f} | "
                     f"{r['d_psnr_baseline']:+.3f} / {r['d_ssim_baseline']:+.4f} | "
                     f"{r['d_psnr_control']:+.3f} / {r['d_ssim_control']:+.4f} | {r['mac_counted']:.3f}"
                     f"{'' if r['target_met'] else ' (not met)'} | {r['mac_executed']:.3f} | {latency} | "
                     f"{r['iterations']} ({r['accepted']}) | {r['seconds'] / 60:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, choices=["edsr", "sid"])
    parser.add_argument("--baseline", required=True, type=Path, help="the quick baseline (.keras) every run prunes")
    parser.add_argument("--targets", default="0.8,0.6", help="MAC targets, comma-separated")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {', '.join(RUNS)}")
    parser.add_argument("--max-iterations", type=int, default=None,
                        help="the loop's iteration cap for every run (default: the preset's)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    names = [n for n in args.runs.split(",") if n]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        raise SystemExit(f"unknown run(s) {unknown}: use {', '.join(RUNS)}")
    if not args.baseline.is_file():
        raise SystemExit(f"baseline '{args.baseline}' does not exist: train one with 'edgeprune train' first")
    targets = [float(t) for t in args.targets.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    summary_path = args.out / "summary.json"
    done = json.loads(summary_path.read_text())["rows"] if summary_path.exists() else []
    rows = []
    for target in targets:
        for name in names:
            out = args.out / f"{name}-{target}"
            previous = next((r for r in done if r["run"] == name and r["target_mac"] == target), None)
            cmd = command(args, name, target, out)
            if previous and (out / "report.json").exists():
                rows.append(previous)
                continue
            print(f"== {name} at MAC {target}: {' '.join(cmd)}", file=sys.stderr, flush=True)
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
            if proc.returncode != 0:
                print(f"   failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                continue
            rows.append(row(name, target, json.loads(proc.stdout), cmd, time.perf_counter() - start))
            summary = {"model": args.model, "baseline": str(args.baseline), "cpu": platform.processor(),
                       "cpu_flags": cpu_flags(), "cores": os.cpu_count(), "tensorflow": version("tensorflow"),
                       "ai_edge_litert": version("ai-edge-litert"), "rows": rows}
            summary_path.write_text(json.dumps(summary, indent=1))
    print(markdown(rows))


if __name__ == "__main__":
    main()
