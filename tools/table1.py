"""Reproduce the "Original" rows of the paper's Table 1 with edgeprune's cost model and time `edgeprune analyze`.

Usage: python tools/table1.py [--runs N]   (prints a Markdown table for BENCHMARKS.md)
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

PAPER = {  # Table 1, "Original" rows: MAC x1e9, weights x1e3, activations x1e6, BW "MByte"
    "edsr": {"input": "1020x1020", "mac": 1428e9, "weights": 1367e3, "activations": 5076e6, "bw": 5077e6},
    "sid": {"input": "1424x2128", "mac": 560e9, "weights": 7757e3, "activations": 1915e6, "bw": 1922e6},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of the CLI per model (median reported)")
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("edgeprune"))
    print("| network | input | quantity | edgeprune | paper | ours/paper |")
    print("|---|---|---|---|---|---|")
    timings = {}
    for name, paper in PAPER.items():
        cmd = [exe, "analyze", name, "--input-size", paper["input"], "--json"]
        walls = []
        for _ in range(args.runs):
            start = time.perf_counter()
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            walls.append(time.perf_counter() - start)
        timings[name] = statistics.median(walls)
        totals = json.loads(out)["totals"]
        ours = {"mac": totals["mac"], "weights": totals["weights"], "activations": totals["activations"],
                "bw": totals["bw_elements"]}
        for key in ("mac", "weights", "activations", "bw"):
            print(f"| {name} | {paper['input']} | {key} | {ours[key]:,} | {paper[key]:,.0f} | "
                  f"{ours[key] / paper[key]:.4f} |")
    print()
    for name, wall in timings.items():
        print(f"- `edgeprune analyze {name} --input-size {PAPER[name]['input']} --json`: median wall "
              f"{wall:.2f} s over {args.runs} runs (includes Python and TensorFlow start-up)")


if __name__ == "__main__":
    main()
