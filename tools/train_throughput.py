"""Training throughput (GMAC/s) of the quick presets' train step against LiteRT inference on the same machine.

Each training configuration runs in its own fresh interpreter (TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` when it is
imported), rounds are interleaved so a busy machine slows every configuration alike, and medians are reported. One
training step's work is counted as 3x the forward MAC of its batch (forward, and a backward pass of about twice the
forward); LiteRT's is the fp32 model's MAC per inference at the evaluation size.

    .venv/bin/python tools/train_throughput.py [--models edsr,sid] [--configs default,onednn,xla] [--rounds 3]

Prints a Markdown table (for BENCHMARKS.md) and writes the raw figures as JSON (``--json PATH``).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIGS = {  # name -> (environment, jit_compile)
    "default": ({}, False),
    "onednn": ({"TF_ENABLE_ONEDNN_OPTS": "1"}, False),
    "no-onednn": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, False),
    "xla": ({}, True),
    "onednn+xla": ({"TF_ENABLE_ONEDNN_OPTS": "1"}, True),
}

_WORKER = r"""
import json, sys, time
import numpy as np
from edgeprune.runtime import configure_process
configure_process()
from edgeprune.runtime import keras
from edgeprune.graph.cost import model_cost
from edgeprune.modelio import resolve_model
from edgeprune.train.presets import preset
from edgeprune.train.fit import task_of

model_name, jit, steps = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
model = resolve_model(model_name).model
settings = preset("quick", task_of(model))
cfg = settings.train_config()
out_scale = 2
rng = np.random.default_rng(0)
x = rng.random((cfg.batch_size, cfg.patch, cfg.patch, model.inputs[0].shape[-1]), np.float32)
y = rng.random((cfg.batch_size, cfg.patch * out_scale, cfg.patch * out_scale, 3), np.float32)
model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="mae", jit_compile=jit)
for _ in range(3):
    model.train_on_batch(x, y)
times = []
for _ in range(steps):
    t = time.perf_counter()
    model.train_on_batch(x, y)
    times.append(time.perf_counter() - t)
mac = model_cost(model, (cfg.patch, cfg.patch)).totals.mac * cfg.batch_size
print(json.dumps({"step_s": float(np.median(times)), "forward_mac": mac, "batch": cfg.batch_size, "patch": cfg.patch}))
"""

_INFER = r"""
import json, sys
from edgeprune.runtime import configure_process
configure_process()
from edgeprune.deploy.export import export_tflite
from edgeprune.deploy.bench.host import interleaved_latency
from edgeprune.graph.cost import model_cost
from edgeprune.modelio import resolve_model

model_name, size, threads, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
model = resolve_model(model_name).model
export_tflite(model, out, (size, size))
lat = interleaved_latency([out], num_threads=threads, rounds=10)[out]["median_us"] / 1e6
print(json.dumps({"latency_s": lat, "mac": model_cost(model, (size, size)).totals.mac}))
"""


def run_python(code: str, args: list[str], env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=1800)
    if proc.returncode:
        raise SystemExit(f"worker failed ({args}): {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cpu_flags() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return platform.processor()
    wanted = ("avx512f", "avx512_vnni", "avx2", "fma", "amx_tile")
    return " ".join(f for f in flags.split(":")[1].split() if f in wanted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="edsr,sid")
    parser.add_argument("--configs", default="default,onednn,xla")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6, help="timed train steps per run (after 3 warm-up steps)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="LiteRT threads")
    parser.add_argument("--infer-size", type=int, default=128, help="LiteRT input size (square)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    models, configs = args.models.split(","), args.configs.split(",")
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown config(s) {unknown}: use {', '.join(CONFIGS)}")
    samples = {(m, c): [] for m in models for c in configs}
    info = {}
    for r in range(args.rounds):
        for m in models:
            for c in configs:
                env, jit = CONFIGS[c]
                res = run_python(_WORKER, [m, "1" if jit else "0", str(args.steps)], env)
                samples[(m, c)].append(res["step_s"])
                info[m] = res
                print(f"round {r + 1} {m} {c}: {res['step_s']:.3f} s/step", file=sys.stderr)
    infer = {}
    with tempfile.TemporaryDirectory() as tmp:
        for m in models:
            infer[m] = run_python(_INFER, [m, str(args.infer_size), str(args.threads), f"{tmp}/{m}.tflite"], {})
    rows = []
    print(f"CPU: {platform.machine()}, {os.cpu_count()} cores, flags {cpu_flags()}; {args.rounds} interleaved rounds, "
          f"median of {args.steps} steps each; LiteRT fp32 at {args.infer_size}x{args.infer_size}, "
          f"{args.threads} threads\n")
    print("| model | batch x patch | config | s/step (median) | train GMAC/s | LiteRT GMAC/s | train / LiteRT |")
    print("|---|---|---|---|---|---|---|")
    for m in models:
        litert = infer[m]["mac"] / infer[m]["latency_s"] / 1e9
        for c in configs:
            step = statistics.median(samples[(m, c)])
            gmacs = 3 * info[m]["forward_mac"] / step / 1e9
            rows.append({"model": m, "config": c, "step_s": step, "samples": samples[(m, c)],
                         "train_gmac_s": gmacs, "litert_gmac_s": litert})
            print(f"| {m} | {info[m]['batch']} x {info[m]['patch']} | {c} | {step:.3f} | {gmacs:.1f} | {litert:.1f} | "
                  f"{gmacs / litert:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu_flags": cpu_flags(), "rows": rows, "inference": infer}, indent=1))


if __name__ == "__main__":
    main()
