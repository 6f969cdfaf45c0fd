"""Training throughput (GMAC/s) of the quick presets' train step against LiteRT inference on the same machine.

Each training configuration runs in its own fresh interpreter (TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` when it is
imported), rounds are interleaved so a busy machine slows every configuration alike, and medians are reported. One
training step's work is counted as 3x the forward MAC of its batch (forward, and a backward pass of about twice the
forward); LiteRT's is the fp32 model's MAC per inference at the evaluation size.

    .venv/bin/python tools/train_throughput.py [--models edsr,sid] [--configs default,onednn,xla]
        [--paths bare,fit,masked] [--rounds 3]

``bare`` times ``train_on_batch`` on one fixed batch (the step alone); ``fit`` edgeprune's ``fit`` on the quick
preset's built-in data (the patch pipeline and Keras' loop); ``masked`` the same with tfmot channel masks, as the
prune loop fine-tunes. "s outside steps" is a fit's time before its first and after its last step (copying,
wrapping, compiling, tracing).

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
    # TensorFlow's thread pools, from its environment variables: one inter-op thread (ops one after another, each
    # on every core) against the default (one inter-op thread per core, each op also using every core)
    "onednn+inter1": ({"TF_ENABLE_ONEDNN_OPTS": "1", "TF_NUM_INTEROP_THREADS": "1"}, False),
    "onednn+intra1": ({"TF_ENABLE_ONEDNN_OPTS": "1", "TF_NUM_INTRAOP_THREADS": "1"}, False),
    # each op on one core, two independent ops at once (a conv's weight and input gradients are independent)
    "onednn+intra1+inter2": ({"TF_ENABLE_ONEDNN_OPTS": "1", "TF_NUM_INTRAOP_THREADS": "1",
                              "TF_NUM_INTEROP_THREADS": "2", "OMP_NUM_THREADS": "1"}, False),
    # data parallel inside one process: two logical CPU devices (MirroredStrategy), each replica half the batch,
    # each op on one core, the two replicas' ops at once
    "onednn+2dev": ({"TF_ENABLE_ONEDNN_OPTS": "1", "EDGEPRUNE_CPU_DEVICES": "2", "TF_NUM_INTRAOP_THREADS": "1",
                     "TF_NUM_INTEROP_THREADS": "2", "OMP_NUM_THREADS": "1"}, False),
    "onednn+2dev+intra2": ({"TF_ENABLE_ONEDNN_OPTS": "1", "EDGEPRUNE_CPU_DEVICES": "2",
                            "TF_NUM_INTEROP_THREADS": "2"}, False),
}

_WORKER = r"""
import json, sys, time
from dataclasses import replace
import numpy as np
from edgeprune.core.runtime import configure_process
configure_process()
from edgeprune.core.runtime import keras
from edgeprune.graph.cost import model_cost
from edgeprune.core.modelio import resolve_model
from edgeprune.train.presets import preset
from edgeprune.train.fit import fit, load_data, task_of

model_name, jit, steps, path = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4]
model = resolve_model(model_name).model
settings = preset("quick", task_of(model))
cfg = settings.train_config()
mac = model_cost(model, (cfg.patch, cfg.patch)).totals.mac * cfg.batch_size
if path == "bare":  # train_on_batch on one fixed random batch: the step alone
    rng = np.random.default_rng(0)
    x = rng.random((cfg.batch_size, cfg.patch, cfg.patch, model.inputs[0].shape[-1]), np.float32)
    y = rng.random((cfg.batch_size, cfg.patch * 2, cfg.patch * 2, 3), np.float32)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="mae", jit_compile=jit)
    for _ in range(3):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t)
    overhead = 0.0
else:  # edgeprune's fit: the patch pipeline, Keras' fit loop, and for "masked" the tfmot channel masks
    pool, _ = load_data(task_of(model), None, settings, 2)
    masks = None
    if path == "masked":
        from edgeprune.graph.coupling import Coupling
        from edgeprune.prune.masking import ChannelMasks
        from edgeprune.prune.plan import PruningPlan
        coupling = Coupling(model)
        masks = ChannelMasks(coupling, PruningPlan.keep_all(coupling, model.name))
    stamps = []

    class Stamp(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    total = steps + 3
    start = time.perf_counter()
    fit(model, pool, replace(cfg, steps=total, steps_per_epoch=total), callbacks=[Stamp()], verbose=0, masks=masks)
    end = time.perf_counter()
    times = list(np.diff(stamps[2:]))
    # before the first step ends (copy, wrap, compile, trace, the first step) and after the last (unwrap, copy)
    overhead = (stamps[0] - start) + (end - stamps[-1])
print(json.dumps({"step_s": float(np.median(times)), "forward_mac": mac, "batch": cfg.batch_size, "patch": cfg.patch,
                  "overhead_s": float(overhead)}))
"""

_INFER = r"""
import json, sys
from edgeprune.core.runtime import configure_process
configure_process()
from edgeprune.deploy.export import export_tflite
from edgeprune.deploy.bench.host import interleaved_latency
from edgeprune.graph.cost import model_cost
from edgeprune.core.modelio import resolve_model

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
    parser.add_argument("--paths", default="bare", help="bare (train_on_batch), fit (edgeprune's fit: the patch "
                        "pipeline and Keras' loop), masked (fit with tfmot channel masks, as the prune loop)")
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
    paths = args.paths.split(",")
    keys = [(m, c, p) for m in models for c in configs for p in paths]
    samples, overheads = {k: [] for k in keys}, {k: [] for k in keys}
    info = {}
    for r in range(args.rounds):
        for key in keys:
            m, c, p = key
            env, jit = CONFIGS[c]
            res = run_python(_WORKER, [m, "1" if jit else "0", str(args.steps), p], env)
            samples[key].append(res["step_s"])
            overheads[key].append(res["overhead_s"])
            info[m] = res
            print(f"round {r + 1} {m} {c} {p}: {res['step_s']:.3f} s/step, {res['overhead_s']:.1f} s outside the "
                  f"steps", file=sys.stderr)
    infer = {}
    with tempfile.TemporaryDirectory() as tmp:
        for m in models:
            infer[m] = run_python(_INFER, [m, str(args.infer_size), str(args.threads), f"{tmp}/{m}.tflite"], {})
    rows = []
    print(f"CPU: {platform.machine()}, {os.cpu_count()} cores, flags {cpu_flags()}; {args.rounds} interleaved rounds, "
          f"median of {args.steps} steps each; LiteRT fp32 at {args.infer_size}x{args.infer_size}, "
          f"{args.threads} threads\n")
    print("| model | batch x patch | config | path | s/step (median) | s outside steps | train GMAC/s | LiteRT GMAC/s "
          "| train / LiteRT |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key in keys:
        m, c, p = key
        litert = infer[m]["mac"] / infer[m]["latency_s"] / 1e9
        step = statistics.median(samples[key])
        gmacs = 3 * info[m]["forward_mac"] / step / 1e9
        rows.append({"model": m, "config": c, "path": p, "step_s": step, "samples": samples[key],
                     "overhead_s": statistics.median(overheads[key]), "train_gmac_s": gmacs, "litert_gmac_s": litert})
        print(f"| {m} | {info[m]['batch']} x {info[m]['patch']} | {c} | {p} | {step:.3f} | "
              f"{statistics.median(overheads[key]):.1f} | {gmacs:.1f} | {litert:.1f} | {gmacs / litert:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu_flags": cpu_flags(), "rows": rows, "inference": infer}, indent=1))


if __name__ == "__main__":
    main()
