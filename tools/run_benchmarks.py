"""Table 1 reproduced on this machine, end to end, from one script: how far each method prunes EDSR and
SID while the quality gate holds against the baseline *and* the equal-budget control.

    .venv/bin/python tools/run_benchmarks.py --budget quick|medium|full --out runs/bench [--networks edsr,sid]
        [--rows D,qr-oneshot,qr-tuned] [--seeds N] [--jobs N] [--variants m8,distill,m8+distill] [--plan]

Every figure comes from the commands a user types (``edgeprune train`` / ``edgeprune prune``, recorded beside each
table) plus one idle side-by-side latency measurement in this process. Stages, each kept in a file under DIR, so a
killed run continues where it stopped (a half-trained baseline and a half-run loop continue with ``--resume``):

1. ``DIR/machine.json``: CPU (flags), cores, library versions, date, the budget; with ``--budget full`` also
   ``DIR/photos/`` (``tools/registry_photos.py``: ``apt-get download opencv-doc libjxl-testdata``, about 150 MB
   from Debian's package registry, for EDSR's training photos).
2. Baselines: ``DIR/NET/baseline.keras`` (``edgeprune train``, the budget's steps; ``--jobs`` at once).
3. Rows: ``DIR/NET/ROW-sSEED/report.json`` (``edgeprune prune``): the paper's options A-D, the latency-aware loop,
   coarse masks and pivoted QR in the loop, each with ``--gate control`` and a low target so the gate decides where
   it stops; QR one-shot at fixed MAC targets (no fine-tuning: its control is the baseline itself), and QR at fixed
   targets then fine-tuned (``--recover-steps``, as many steps as the loop's cap allows it: its control has as
   many). Where the budget asks (medium, full), the row with the lowest MAC that held at seed 0 is run at the other
   seeds too, then the next lowest, until one holds at every seed. ``--variants`` runs every row again at seed 0
   beside it, as ``ROW+m8`` (``--channel-multiple 8``: a phone's fp32 tiles instead of this host's) and/or
   ``ROW+distill`` (``--distill``: fine-tuned against the baseline's output too), where the variant applies.
4. ``DIR/NET/latency.json``: the baseline and every row's model (seed 0), fp32 and int8 TFLite, timed side by side
   at the evaluated size (LiteRT, XNNPACK, 1 thread), with the profile's prediction beside.
5. ``DIR/benchmarks.md`` (the BENCHMARKS.md section: the top table, Table 1 per network with each row's host fp32
   latency beside its MAC and its kept widths, what the budget cut) and
   ``DIR/plots/`` (kept channels per layer, PSNR against MAC, measured against predicted latency).

A row "holds" when every seed's pruned model is within the tolerance (0.05 dB PSNR, 0.002 SSIM) of the baseline and
of its control; the top table gives, per network, the lowest MAC that held for method D and for the best row,
counting only rows run at every seed (a lower row held at fewer seeds is named beside it). ``--plan`` prints the
first stage's commands and runs nothing.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

NETWORKS = ("edsr", "sid")
DEFAULT_JOBS = 2 if (os.cpu_count() or 1) >= 2 else 1  # runs at once (--jobs)
# Table 1's "Original" and method D rows (MAC, weights, activations, BW as fractions; PSNR, SSIM), and edgeprune's
# own targets (README)
PAPER = {"edsr": {"mac": 897 / 1428, "weights": 857 / 1367, "bw": 4083 / 5077, "psnr": 34.42, "ssim": 0.942},
         "sid": {"mac": 236 / 560, "weights": 4241 / 7757, "bw": 1173 / 1922, "psnr": 28.55, "ssim": 0.768}}
CLAIM = {"edsr": {"mac": 0.50, "bw": 0.6}, "sid": {"mac": 0.35, "bw": 0.5}}
LOW_TARGET = "0.2"  # the loop rows' target: low enough that the quality gate, not the target, stops them
# row name -> the options that select it (on top of --model, --baseline, --preset quick, the budget's)
LOOP_ROWS = {
    "A": ["--method", "A"],
    "B": ["--method", "B"],
    "C": ["--method", "C"],
    "D": ["--method", "D"],
    "latency-aware": ["--method", "D", "--target-latency", LOW_TARGET],
    "coarse": ["--strategy", "coarse", "--granularity", "both"],
    "qr-loop": ["--method", "D", "--importance", "qr"],
}
# A row run again with other options, beside the row as it is: ROW+VARIANT (e.g. "D+m8", "qr-tuned@0.5+m8+distill").
# m8: widths in multiples of 8 (a phone's fp32 conv tiles) instead of this host's profile (its tiles, 32 wide with
# AVX-512); distill: the pruned model fine-tuned against the unpruned baseline's output too (weight 1)
VARIANTS = {"m8": ["--channel-multiple", "8"], "distill": ["--distill"]}
ONE_SHOT = "qr-oneshot"  # pivoted QR with least-squares reconstruction at each of the budget's qr_targets
TUNED = "qr-tuned"  # the same, then fine-tuned for finetune_steps * max_iterations, at each of tuned_targets
TARGET_ROWS = (ONE_SHOT, TUNED)


@dataclass(frozen=True)
class Budget:
    """What one ``--budget`` runs; ``cuts`` is printed beside every table."""

    baseline_steps: dict
    finetune_steps: int
    max_iterations: int
    rows: tuple
    seeds: int  # seeds of every loop row (the spread), and of the confirm_rows where seed 0 held
    qr_targets: tuple
    cuts: str
    latency_rounds: int = 15
    edsr_photos: bool = False  # EDSR trains on tools/registry_photos.py's real photos instead of the built-in data
    spread_rows: tuple | None = None  # the loop rows run at every seed (None: all); the others at seed 0 only
    quick_reference: bool = True  # also train the quick preset's baseline on the same data, to compare with
    tuned_targets: tuple | dict = ()  # the TUNED row's MAC targets (per network: {net: targets})
    variants: tuple = ()  # combinations of VARIANTS ("m8", "distill", "m8+distill") run at seed 0 beside each row
    confirm_rows: tuple = ()  # target rows (ONE_SHOT, TUNED) run again at seeds 1.. where seed 0 held
    confirm_best: bool = False  # the lowest-MAC row held at seed 0 runs at seeds 1.. too, until one holds at all

    @property
    def recover_steps(self) -> int:
        """The TUNED rows' fine-tuning: what the loop rows may spend at most (every iteration accepted)."""
        return self.finetune_steps * self.max_iterations

    def to_dict(self) -> dict:
        return asdict(self)


BUDGETS = {
    "quick": Budget(baseline_steps={"edsr": 100, "sid": 120}, finetune_steps=20, max_iterations=3,
                    rows=("D", ONE_SHOT), seeds=1, qr_targets=(0.6,),
                    cuts="quick budget: baselines of 100 (EDSR) and 120 (SID) steps instead of the quick preset's "
                         "400 and 600, 20 fine-tuning steps per iteration instead of 60, at most 3 iterations, only "
                         "method D and QR one-shot at MAC 0.6, one seed: it checks that the script runs end to end "
                         "in under 30 minutes on 2 cores; its figures say nothing about the methods",
                    latency_rounds=7, quick_reference=False),
    "medium": Budget(baseline_steps={"edsr": 1500, "sid": 2000}, finetune_steps=60, max_iterations=8,
                     rows=(*LOOP_ROWS, ONE_SHOT, TUNED), seeds=3, spread_rows=("D",),
                     qr_targets=(0.7, 0.5, 0.35), confirm_rows=(TUNED,), confirm_best=True,
                     # EDSR under 32-wide tiles has no plan between MAC 0.570 and 0.281: 0.6 finds the former
                     tuned_targets={"edsr": (0.6, 0.5, 0.35), "sid": (0.5, 0.35)},
                     edsr_photos=True,
                     cuts="medium budget (what fits about two hours on a 2-core host, two processes at one thread "
                          "each): baselines of 1500 (EDSR) and 2000 (SID) steps (3.75x and 3.3x the quick "
                          "preset's 400 and 600; EDSR on 24 real photos from Debian packages and scikit-image, "
                          "tools/registry_photos.py, SID on the built-in unprocessed data), validated on the 8 "
                          "held-out photos as always; the quick preset's fine-tuning (60 steps per iteration); at "
                          "most 8 iterations, so a row still accepting at its 8th iteration was stopped by the cap, "
                          "not the gate; method D at 3 seeds; methods A-C, the latency-aware loop, the coarse masks "
                          "and QR in the loop at seed 0 only; QR one-shot at MAC 0.7, 0.5 and 0.35; QR at 0.5 and 0.35 (EDSR also "
                          "0.6) then fine-tuned for 480 steps (8 x 60, the loop rows' most), each run again at seeds 1 and 2 "
                          "where seed 0 held; QR one-shot at seed 0 only; the row with the lowest MAC that "
                          "held at seed 0 is run at seeds 1 and 2 as well, then the next lowest, until one holds at "
                          "every seed"),
    "full": Budget(baseline_steps={"edsr": 6000, "sid": 6000}, finetune_steps=60, max_iterations=20,
                   rows=(*LOOP_ROWS, ONE_SHOT, TUNED), seeds=3, qr_targets=(0.8, 0.7, 0.6, 0.5, 0.4, 0.35),
                   tuned_targets=(0.5, 0.35), confirm_rows=TARGET_ROWS, confirm_best=True, edsr_photos=True,
                   cuts="full budget: baselines of 6000 steps (15x and 10x the quick preset's; EDSR on 24 real photos "
                        "from Debian packages and scikit-image, tools/registry_photos.py, SID on the built-in "
                        "unprocessed data), validated on the 8 held-out photos as always, "
                        "the quick preset's fine-tuning (60 steps per iteration), at most 20 iterations, 3 seeds per "
                        "loop row; not the paper's training (its baselines ran for days on GPUs)"),
}


def machine(budget_name: str, budget: Budget) -> dict:
    from edgeprune.deploy.host_profile import cpu_label

    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu_label(),
            "cores": os.cpu_count(), "python": platform.python_version(),
            "versions": {p: version(p) for p in ("tensorflow", "tf-keras", "tensorflow-model-optimization",
                                                 "ai-edge-litert", "edgeprune")},
            "budget": budget_name, "budget_settings": budget.to_dict()}


# -- what runs: (name, seed) -> command --

def row_dir(out: Path, net: str, name: str, seed: int) -> Path:
    return out / net / f"{name}-s{seed}"


def prune_command(exe: Path, net: str, baseline: Path, budget: Budget, name: str, seed: int, out: Path,
                  data: Path | None = None) -> list[str]:
    common = [str(exe), "prune", "--model", net, "--baseline", str(baseline), "--preset", "quick",
              *(["--data", str(data)] if data else [])]
    base, variants = split_variants(name)
    extra = [option for v in variants for option in VARIANTS[v]]
    last = [*extra, *(["--seed", str(seed)] if seed else []), "--out", str(out), "--json"]  # seed 0: as typed
    if base.startswith(TARGET_ROWS):
        target = base.split("@")[1]
        tuned = ["--recover-steps", str(budget.recover_steps)] if base.startswith(TUNED) else []
        return [*common, "--strategy", "qr", "--target-mac", target, *tuned, *last]
    target = [] if "--target-latency" in LOOP_ROWS[base] else ["--target-mac", LOW_TARGET]
    return [*common, *LOOP_ROWS[base], *target, "--gate", "control", "--finetune-steps", str(budget.finetune_steps),
            "--max-iterations", str(budget.max_iterations), *last]


def split_variants(name: str) -> tuple[str, list[str]]:
    """``("qr-tuned@0.5", ["m8", "distill"])`` of ``"qr-tuned@0.5+m8+distill"``."""
    base, *variants = name.split("+")
    return base, variants


def check_variant(variant: str) -> list[str]:
    """The variants of ``"m8+distill"``, in VARIANTS' order; a SystemExit naming what is known for anything else."""
    parts = variant.split("+")
    if not parts or any(p not in VARIANTS for p in parts) or len(set(parts)) != len(parts):
        raise SystemExit(f"unknown variant {variant!r}: combine {', '.join(VARIANTS)} with '+'")
    return [v for v in VARIANTS if v in parts]


def variant_applies(base: str, variants: list[str]) -> bool:
    """Whether a row takes the variants: m8 replaces the host profile's widths (not the latency-aware row's, which
    prices latency with that profile); distill needs fine-tuning (not QR one-shot's)."""
    if "m8" in variants and base == "latency-aware":
        return False
    return not ("distill" in variants and base.startswith(ONE_SHOT))


def planned_rows(budget: Budget, rows=None, seeds=None, net: str | None = None,
                 variants=None) -> list[tuple[str, int]]:
    """(row name, seed) in order: loop rows for every seed, then QR one-shot and tuned QR at each target (seed 0);
    every row's ``variants`` (default: the budget's) at seed 0 right after it, where they apply."""
    plain = _planned_rows(budget, rows, seeds, net)
    variants = [check_variant(v) for v in (budget.variants if variants is None else variants)]
    out = []
    for name, seed in plain:
        out.append((name, seed))
        if seed == 0:
            out += [("+".join([name, *v]), 0) for v in variants if variant_applies(name, v)]
    return out


def _planned_rows(budget: Budget, rows=None, seeds=None, net: str | None = None) -> list[tuple[str, int]]:
    seeds = budget.seeds if seeds is None else seeds
    chosen = budget.rows if rows is None else rows
    spread = budget.spread_rows if budget.spread_rows is not None else chosen
    out = [(n, s) for n in chosen if n not in TARGET_ROWS for s in range(seeds if n in spread else 1)]
    if ONE_SHOT in chosen:
        out += [(f"{ONE_SHOT}@{t}", 0) for t in budget.qr_targets]
    if TUNED in chosen:
        targets = budget.tuned_targets
        targets = targets.get(net, ()) if isinstance(targets, dict) else targets
        out += [(f"{TUNED}@{t}", 0) for t in targets]
    return out


class Runner:
    """Runs commands as subprocesses, logging each (command, seconds, return code) to DIR/log.txt; a command whose
    marker file exists is skipped."""

    def __init__(self, out: Path, env: dict):
        self.out, self.env, self.log = out, env, out / "log.txt"

    def note(self, text: str) -> None:
        line = f"{datetime.now(timezone.utc).strftime('%H:%M:%S')} {text}"
        print(line, file=sys.stderr, flush=True)
        with self.log.open("a") as f:
            f.write(line + "\n")

    def run(self, cmd: list[str], done: Path, log: Path) -> float | None:
        """Seconds taken, or None when ``done`` already existed; raises SystemExit on failure."""
        if done.exists():
            self.note(f"done before: {' '.join(cmd)}")
            return None
        self.note(f"run: {' '.join(cmd)}")
        log.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with log.open("w") as err:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=self.env)
        seconds = time.perf_counter() - start
        self.note(f"  rc {proc.returncode} after {seconds:.0f} s (log {log})")
        if proc.returncode != 0:
            tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
            raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}: {' '.join(tail)}")
        return seconds


def train_baseline(runner: Runner, exe: Path, net: str, budget: Budget, data: Path | None = None) -> Path:
    return _train(runner, exe, net, ["--steps", str(budget.baseline_steps[net])], data, "baseline")


def train_quick_baseline(runner: Runner, exe: Path, net: str, data: Path | None = None) -> Path:
    """The quick preset's baseline (its own steps, 400 EDSR / 600 SID) on the same data: what the budget's longer
    training is measured against."""
    return _train(runner, exe, net, [], data, "quick-baseline")


def _train(runner: Runner, exe: Path, net: str, steps: list[str], data: Path | None, name: str) -> Path:
    """``edgeprune train`` to DIR/NET/NAME.keras, its command in NAME's command file (as a user types it), resumed
    with ``--resume`` when a killed run left its work folder."""
    path = runner.out / net / f"{name}.keras"
    cmd = [str(exe), "train", "--model", net, "--preset", "quick", *steps, *(["--data", str(data)] if data else []),
           "--out", str(path)]
    record = path.parent / ("train-command.txt" if name == "baseline" else f"{name}-command.txt")
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(" ".join(cmd) + "\n")
    if (path.parent / f".{path.name}.work").exists() and not Path(str(path) + ".json").exists():
        cmd = [*cmd, "--resume"]
    runner.run(cmd, Path(str(path) + ".json"), path.parent / f"{name}.log")
    return path


def references(out: Path, net: str, quick: Path | None, data: Path | None = None) -> dict:
    """The quick baseline's PSNR/SSIM (``quick``: its file, None: not trained) and, for EDSR, bicubic upscaling's on
    the same held-out photos (cached in DIR/NET/references.json)."""
    from edgeprune.core.atomic import write_json_atomic

    path = out / net / "references.json"
    if path.exists():
        return json.loads(path.read_text())
    result = {}
    if quick is not None:
        record = json.loads(Path(str(quick) + ".json").read_text())
        result["quick"] = {**{k: record["validation"][k] for k in ("psnr", "ssim")},
                           "steps": record["config"]["steps"], "train_seconds": record["train_seconds"]}
    if net == "edsr":
        from edgeprune.train.fit import load_data, validate_bicubic
        from edgeprune.train.presets import preset

        _, val = load_data("edsr", data, preset("quick", "edsr"))
        result["bicubic"] = {k: v for k, v in validate_bicubic(val).items() if k in ("psnr", "ssim", "images")}
    write_json_atomic(path, result)
    return result


def run_row(runner: Runner, exe: Path, net: str, baseline: Path, budget: Budget, name: str, seed: int,
            data: Path | None = None) -> None:
    out = row_dir(runner.out, net, name, seed)
    cmd = prune_command(exe, net, baseline, budget, name, seed, out, data)
    out.mkdir(parents=True, exist_ok=True)
    (out / "command.txt").write_text(" ".join(cmd) + "\n")  # as a user types it, without --resume
    if (out / ".work" / "loop" / "loop.json").exists() and not (out / "report.json").exists():
        cmd = [*cmd, "--resume"]  # a killed loop continues; a run killed before its loop starts again
    runner.run(cmd, out / "report.json", out / "log.txt")


# -- measuring: latency side by side, costs at the evaluated size --

def measure_latency(out: Path, net: str, baseline: Path, names: list[str], rounds: int) -> dict:
    """The baseline's and each row's (seed 0) fp32 and int8 latency, side by side in this process (idle), and the
    host profile's prediction of both; cached in DIR/NET/latency.json."""
    from edgeprune.core.atomic import write_json_atomic
    from edgeprune.core.errors import EdgepruneError

    path = out / net / "latency.json"
    if path.exists():
        cached = json.loads(path.read_text())
        if cached.get("names") == names:  # measured for these rows; other rows: measured again, side by side
            return cached
    import numpy as np

    from edgeprune.deploy.host_profile import measure_host_latency
    from edgeprune.core.modelio import load_model

    reports = {n: json.loads((row_dir(out, net, n, 0) / "report.json").read_text()) for n in names}
    size = tuple(next(iter(reports.values()))["latency"]["input_size"]) if reports else (64, 64)
    models = [load_model(baseline)] + [load_model(row_dir(out, net, n, 0) / "pruned.keras") for n in names]
    channels = int(models[0].input.shape[-1])
    # int8 ranges from uniform inputs: the kernels' speed does not depend on the values (no accuracy claimed)
    samples = [np.random.default_rng(i).random((1, *size, channels), dtype=np.float32) for i in range(4)]
    result = {"names": names, "input_size": list(size), "rows": {n: {} for n in names}}
    for quantize in ("none", "int8"):
        key = "fp32" if quantize == "none" else quantize
        try:
            timed = measure_host_latency(models, size, rounds=rounds, quantize=quantize,
                                         calib_samples=samples if quantize == "int8" else None)
        except EdgepruneError as exc:  # one format failing (an int8 conversion) keeps the other's figures
            result[key] = {"error": str(exc)}
            continue
        base_us, *pruned_us = timed.pop("us")
        result[key] = {"baseline_us": base_us, **timed}
        for n, us in zip(names, pruned_us):
            result["rows"][n][key] = us / base_us
    for n, report in reports.items():
        predicted = (report.get("latency") or {}).get("predicted") or {}
        result["rows"][n]["predicted"] = predicted.get("ratio")
    write_json_atomic(path, result)
    return result


def eval_costs(out: Path, net: str, baseline: Path, names: list[str], size) -> dict:
    """MAC/weights/activations/BW of the baseline and each row's model (seed 0) at the evaluated input size."""
    from edgeprune.graph.cost import model_cost
    from edgeprune.core.modelio import load_model

    models = {"Original": baseline, **{n: row_dir(out, net, n, 0) / "pruned.keras" for n in names}}
    return {n: model_cost(load_model(p), tuple(size)).totals.to_dict() for n, p in models.items()}


# -- the figures: rows from reports --

def row_figures(reports: list[dict]) -> dict:
    """One row's figures over its seeds: cost ratios (full resolution, from the reports' totals), quality and the
    differences to the baseline and to the control (mean, min, max), and whether the gate held for every seed."""
    def spread(values):
        return {"mean": statistics.fmean(values), "min": min(values), "max": max(values)}

    def ratios(r):
        base, pruned = r["baseline"]["totals"], r["pruned"]["totals"]
        return {k: pruned[k] / base[k] for k in ("mac", "weights", "activations", "bw_elements")}

    per_seed = []
    for r in reports:
        base, pruned, control = r["baseline"], r["pruned"], r["control"]
        per_seed.append({**ratios(r), "psnr": pruned["psnr"], "ssim": pruned["ssim"],
                         "d_psnr_baseline": pruned["psnr"] - base["psnr"],
                         "d_ssim_baseline": pruned["ssim"] - base["ssim"],
                         "d_psnr_control": pruned["psnr"] - control["psnr"],
                         "d_ssim_control": pruned["ssim"] - control["ssim"], "control_steps": control["steps"],
                         "iterations": len(r["iterations"]),
                         "accepted": sum(bool(i.get("accepted", True)) for i in r["iterations"])})
    out = {k: spread([s[k] for s in per_seed]) for k in per_seed[0]}
    out["seeds"] = len(per_seed)
    out["held"] = all(held(r) for r in reports)
    out["widths"] = width_histogram(reports[0])
    out["totals"] = reports[0]["pruned"]["totals"]
    out["input_size"] = reports[0]["input_size"]
    return out


def width_histogram(report: dict) -> dict[int, int]:
    """Kept width (units kept of a channel group) -> how many groups keep it, of one report (seed 0's)."""
    counts = {}
    for group in (report.get("groups") or {}).values():
        counts[group["kept"]] = counts.get(group["kept"], 0) + 1
    return dict(sorted(counts.items()))


def original_widths(report: dict) -> dict[int, int]:
    """The baseline's width histogram: every group's full size."""
    return width_histogram({"groups": {n: {"kept": g["size"]} for n, g in (report.get("groups") or {}).items()}})


def widths_text(histogram: dict) -> str:
    """``"8x3, 16x5, 64x1"``: each kept width and its count of groups."""
    return ", ".join(f"{w}x{n}" for w, n in sorted((int(w), n) for w, n in histogram.items())) or "-"


def held(report: dict) -> bool:
    """The prune gate's own test (edgeprune's default tolerance) against the baseline and against the control."""
    from edgeprune.prune.loop import Tolerance

    tolerance = Tolerance()
    return tolerance.holds(report["pruned"], report["baseline"]) and tolerance.holds(report["pruned"], report["control"])


def lowest_held(rows: dict, names) -> tuple[str, dict] | None:
    """The row of ``names`` with the lowest mean MAC among those that held, or None."""
    candidates = [(n, rows[n]) for n in names if n in rows and rows[n]["held"]]
    return min(candidates, key=lambda nr: nr[1]["mac"]["mean"]) if candidates else None


# -- Markdown --

def _spread(f: dict, fmt: str, signed: bool = False) -> str:
    text = format(f["mean"], ("+" if signed else "") + fmt)
    if f["min"] != f["max"]:
        text += f" [{format(f['min'], ('+' if signed else '') + fmt)}, {format(f['max'], ('+' if signed else '') + fmt)}]"
    return text


def network_table(net: str, baseline: dict, rows: dict, latency: dict, eval_cost: dict) -> str:
    base_totals = baseline["totals"]
    size = "x".join(map(str, baseline["input_size"]))
    eval_size = "x".join(map(str, latency.get("input_size", [])))
    head = (f"| row | seeds | MAC at {size} | weights | activations | BW (elements) | BW (MB, fp32) | MAC at "
            f"{eval_size} | host fp32 at {eval_size} | PSNR | SSIM | vs baseline (dB / SSIM) | vs control (dB / "
            "SSIM) | held | latency fp32 | int8 | predicted | iterations (accepted) | kept widths (width x groups) |")
    lines = [head, "|" + "---|" * 19]
    b = base_totals
    base_lat = latency.get("fp32", {}).get("baseline_us")
    base_int8 = latency.get("int8", {}).get("baseline_us")
    lines.append(f"| Original | 1 | {b['mac'] / 1e9:,.1f}G | {b['weights'] / 1e3:,.0f}K | "
                 f"{b['activations'] / 1e6:,.0f}M | {b['bw_elements'] / 1e6:,.0f}M | {b['bw_bytes'] / 1e6:,.0f} | "
                 f"{eval_cost['Original']['mac'] / 1e9:.3f}G | {base_lat / 1e3:.2f} ms | {baseline['psnr']:.3f} | "
                 f"{baseline['ssim']:.4f} | - | - | - | {base_lat / 1e3:.1f} ms | {base_int8 / 1e3:.1f} ms | - | - | "
                 f"{widths_text(baseline.get('widths') or {})} |"
                 if base_lat and base_int8 else "| Original | (not measured) |")
    def fmt(v):
        return f"{v:.3f}" if v is not None else "-"

    for name, r in rows.items():
        t, lat, ec = r["totals"], latency.get("rows", {}).get(name, {}), eval_cost.get(name)
        cells = [name, str(r["seeds"]), f"{t['mac'] / 1e9:,.1f}G ({_spread(r['mac'], '.3f')})",
                 f"{t['weights'] / 1e3:,.0f}K ({r['weights']['mean']:.3f})",
                 f"{t['activations'] / 1e6:,.0f}M ({r['activations']['mean']:.3f})",
                 f"{t['bw_elements'] / 1e6:,.0f}M ({r['bw_elements']['mean']:.3f})", f"{t['bw_bytes'] / 1e6:,.0f}",
                 f"{ec['mac'] / 1e9:.3f}G" if ec else "-",
                 f"{base_lat * lat['fp32'] / 1e3:.2f} ms" if base_lat and lat.get("fp32") is not None else "-",
                 _spread(r["psnr"], ".3f"), _spread(r["ssim"], ".4f"),
                 f"{_spread(r['d_psnr_baseline'], '.3f', True)} / {_spread(r['d_ssim_baseline'], '.4f', True)}",
                 f"{_spread(r['d_psnr_control'], '.3f', True)} / {_spread(r['d_ssim_control'], '.4f', True)}",
                 "yes" if r["held"] else "no", fmt(lat.get("fp32")), fmt(lat.get("int8")), fmt(lat.get("predicted")),
                 f"{_spread(r['iterations'], '.0f')} ({_spread(r['accepted'], '.0f')})",
                 widths_text(r.get("widths") or {})]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def top_table(results: dict, seeds: int = 1) -> str:
    """Per network: method D's and the best row's lowest MAC that held, counting only rows run at ``seeds`` seeds
    (a row held at fewer seeds is named beside, not counted: a claim needs the spread)."""
    lines = ["| network | paper's D: MAC / BW | edgeprune's target: MAC / BW | D here: lowest MAC that held (BW) | "
             f"best row here, held at all {seeds} seed{'s' if seeds > 1 else ''} (MAC, BW) | target met? |",
             "|---|---|---|---|---|---|"]
    for net, res in results.items():
        rows = {n: r for n, r in res["rows"].items() if r["seeds"] >= seeds}
        d = lowest_held(rows, [n for n in rows if n == "D"])
        best = lowest_held(rows, list(rows))
        fewer = lowest_held(res["rows"], [n for n, r in res["rows"].items() if r["seeds"] < seeds])
        claim = CLAIM[net]
        fmt = lambda nr: (f"{nr[0]}: {nr[1]['mac']['mean']:.3f} ({nr[1]['bw_elements']['mean']:.3f})"
                          if nr else "none held")
        met = any(r["held"] and r["mac"]["mean"] <= claim["mac"] and r["bw_elements"]["mean"] <= claim["bw"]
                  for r in rows.values())
        if fewer and (not best or fewer[1]["mac"]["mean"] < best[1]["mac"]["mean"]):
            s = fewer[1]["seeds"]
            why_not = f"; lower but held at {s} seed{'s' if s > 1 else ''} only: {fmt(fewer)}"
        else:
            why_not = ""
        why = "" if met else (" (no row held)" if not best else
                              f" (best {best[1]['mac']['mean']:.3f} MAC, {best[1]['bw_elements']['mean']:.3f} BW)")
        lines.append(f"| {net} | {PAPER[net]['mac']:.2f} / {PAPER[net]['bw']:.2f} | {claim['mac']:.2f} / "
                     f"{claim['bw']:.1f} | {fmt(d).split(': ', 1)[-1] if d else ('none held' if 'D' in rows else 'not run')} | {fmt(best)}{why_not} | "
                     f"{'yes' if met else 'no'}{why} |")
    return "\n".join(lines)


def reference_text(b: dict) -> str:
    """'; the quick preset's baseline (400 steps, same data): 29.9 dB / 0.88 (+0.5 dB here); bicubic ...'."""
    parts = []
    if "quick" in b:
        q = b["quick"]
        parts.append(f"the quick preset's baseline ({q['steps']} steps, the same data, {q['train_seconds']:.0f} s): "
                     f"{q['psnr']:.3f} dB / {q['ssim']:.4f} ({b['psnr'] - q['psnr']:+.3f} dB, "
                     f"{b['ssim'] - q['ssim']:+.4f} here)")
    if "bicubic" in b:
        c = b["bicubic"]
        parts.append(f"bicubic upscaling: {c['psnr']:.3f} dB / {c['ssim']:.4f} ({b['psnr'] - c['psnr']:+.3f} dB, "
                     f"{b['ssim'] - c['ssim']:+.4f} here)")
    return "; " + "; ".join(parts) if parts else ""


def variants_text(variants) -> list[str]:
    """The paragraph naming the rows run again with other options (none: nothing)."""
    if not variants:
        return []
    said = {"m8": "`--channel-multiple 8` (widths in multiples of 8, a phone's fp32 conv tiles, instead of this "
                  "host's profile)",
            "distill": "`--distill` (fine-tuned against the unpruned baseline's output too, weight 1; the control "
                       "still learns from the ground truth alone)"}
    return [f"Rows named ROW+VARIANT are ROW run again at seed 0 with {'; '.join(said[v] for v in VARIANTS)} where "
            f"the variant applies (run here: {', '.join(variants)}); each follows the row it varies.", ""]


def section(info: dict, results: dict, budget: Budget, commands: dict, seconds: float, seeds=None,
            variants=None) -> str:
    variants = budget.variants if variants is None else variants
    resumed = (f", finished {info['resumed'][-1]} after {len(info['resumed'])} resumption"
               f"{'s' if len(info['resumed']) > 1 else ''}" if info.get("resumed") else "")
    out = [f"## Table 1 on this machine: `tools/run_benchmarks.py --budget {info['budget']}` ({info['date']}"
           f"{resumed})", "",
           f"Machine: {info['cpu']}, {info['cores']} cores; "
           + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + f". Whole run: {seconds / 60:.1f} minutes "
           "(stages already done before this invocation are not counted).", "",
           f"What this budget cuts: {budget.cuts}.", "",
           "A row holds when every seed is within 0.05 dB PSNR and 0.002 SSIM of the baseline and of its "
           "equal-budget control (`--gate control` decides every loop iteration the same way). Costs are at "
           "Table 1's full resolution (EDSR 1020x1020 LR, SID 1424x2128 packed): the absolute figures are seed 0's "
           "model's, the fractions of the Original in brackets are means over the seeds (for MAC with [min, max] "
           "when the seeds differ); MAC is also given at the evaluated size (seed 0). PSNR, SSIM and the "
           "differences are mean [min, max] over seeds. Latency: fp32 and int8 "
           "TFLite of the baseline and each row's seed-0 model, timed side by side in one idle process (LiteRT, "
           "XNNPACK, 1 thread), as a fraction of the baseline's (host fp32, beside the MAC: the same measurement in "
           "milliseconds); predicted = the host profile's. Kept widths: seed 0's channel groups counted per kept "
           "width (units).", "", *variants_text(variants),
           top_table(results, budget.seeds if seeds is None else seeds), ""]
    for net, res in results.items():
        b = res["baseline"]
        out += [f"### {net.upper()}", "",
                f"Baseline: `{commands[net]['baseline']}`: PSNR {b['psnr']:.3f} dB, SSIM {b['ssim']:.4f} "
                f"on the 8 held-out photos ({b['train_seconds']:.0f} s of training on "
                f"{b.get('data', {}).get('train', {}).get('kind', 'the built-in data')})" + reference_text(b) + ".",
                "",
                network_table(net, b, res["rows"], res["latency"], res["eval_cost"]), "",
                "Commands (seed 0; the other seeds add `--seed N`):", ""]
        out += [f"- {name}: `{cmd}`" for name, cmd in commands[net]["rows"].items()]
        out += ["", f"Plots: `plots/{net}-channels.png`, `plots/{net}-psnr-mac.png`, `plots/{net}-latency.png`.", ""]
    return "\n".join(out)


# -- plots --

def plots(out: Path, net: str, baseline: dict, rows: dict, reports: dict, latency: dict) -> list[Path]:
    from edgeprune.prune.plots import figure

    import matplotlib

    folder = out / "plots"
    folder.mkdir(exist_ok=True)
    written = []
    # one colour and marker per row, the same in the three plots (a dozen rows outrun one 10-colour cycle)
    colours, markers = matplotlib.colormaps["tab20"], "osD^vP*Xh<>p"
    style = {n: {"color": colours(i % 20), "marker": markers[i % len(markers)]}
             for i, n in enumerate(dict.fromkeys([*rows, *reports, *latency.get("rows", {})]))}

    def finish(fig, ax, what):
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # beside, not on, the data
        fig.tight_layout()
        fig.savefig(folder / f"{net}-{what}.png", dpi=120)
        written.append(folder / f"{net}-{what}.png")
    fig, ax = figure((max(9.0, 0.22 * len(next(iter(reports.values()))["layers"]) + 4), 4.4))
    for name, report in reports.items():
        layers = report["layers"]
        ax.plot(range(len(layers)), [e["pruned"] / e["original"] for e in layers], "-", ms=3, label=name,
                **style[name])
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels([e["layer"] for e in layers], rotation=90, fontsize=6)
    ax.set_ylabel("kept output channels (fraction)")
    ax.set_title(f"{net}: kept channels per layer, seed 0", fontsize=9)
    finish(fig, ax, "channels")

    fig, ax = figure((9.0, 4.4))
    ax.plot([1.0], [baseline["psnr"]], "*", color="black", ms=11, label="baseline")
    ax.axhline(baseline["psnr"] - 0.05, color="grey", ls="--", lw=1, label="tolerance (-0.05 dB)")
    for name, r in rows.items():
        m, p = r["mac"], r["psnr"]
        ax.errorbar([m["mean"]], [p["mean"]], xerr=[[m["mean"] - m["min"]], [m["max"] - m["mean"]]],
                    yerr=[[p["mean"] - p["min"]], [p["max"] - p["mean"]]], ms=6, capsize=3, ecolor=style[name]["color"],
                    ls="none", mfc=style[name]["color"] if r["held"] else "none", **style[name],
                    label=f"{name}{'' if r['held'] else ' (did not hold: open marker)'}")
    ax.set_xlabel("MAC (fraction of the baseline)")
    ax.set_ylabel("PSNR (dB), held-out photos")
    ax.set_title(f"{net}: PSNR against MAC, every row (mean and range over seeds)", fontsize=9)
    finish(fig, ax, "psnr-mac")

    fig, ax = figure((7.0, 4.6))
    points = [(v["predicted"], v["fp32"], n) for n, v in latency.get("rows", {}).items()
              if v.get("predicted") is not None]
    for predicted, measured, name in points:
        ax.plot([predicted], [measured], ls="none", ms=6, label=name, **style[name])
    ax.plot([0, 1.05], [0, 1.05], "--", color="grey", lw=1, label="measured = predicted")
    ax.set_xlim(0, 1.05)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("predicted latency (fraction of the baseline)")
    ax.set_ylabel("measured fp32 latency (fraction)")
    ax.set_title(f"{net}: measured against predicted host latency", fontsize=9)
    finish(fig, ax, "latency")
    return written


def confirmations(out: Path, net: str, budget: Budget, plan: list[tuple[str, int]], seeds=None) -> list:
    """(row name, seed) for seeds 1.. of the budget's ``confirm_rows`` rows in ``plan`` whose seed-0 run held: the
    spread a row that decides a claim needs (a row that failed at seed 0 cannot hold at every seed)."""
    seeds = budget.seeds if seeds is None else seeds
    out_rows = []
    for name, seed in plan:
        if seed == 0 and name.startswith(tuple(budget.confirm_rows)) and \
                held(json.loads((row_dir(out, net, name, 0) / "report.json").read_text())):
            out_rows += [(name, s) for s in range(1, seeds)]
    return out_rows


def best_confirmation(out: Path, net: str, budget: Budget, plan: list[tuple[str, int]], seeds=None) -> list:
    """(row name, seed) for seeds 1.. of the row with the lowest seed-0 MAC among those that held at seed 0 and have
    not yet run at every seed, unless a row with a lower or equal seed-0 MAC already holds at every seed: the next
    row that could decide the top table (empty when the budget does not confirm its best row, or nothing is left)."""
    seeds = budget.seeds if seeds is None else seeds
    if not budget.confirm_best or seeds < 2:
        return []
    runs = {}
    for name, seed in plan:
        runs.setdefault(name, []).append(seed)
    reports = {n: [json.loads((row_dir(out, net, n, s) / "report.json").read_text()) for s in ss]
               for n, ss in runs.items() if 0 in ss}
    def mac(r):
        return r["pruned"]["totals"]["mac"] / r["baseline"]["totals"]["mac"]

    for name in sorted((n for n, r in reports.items() if held(r[0])), key=lambda n: mac(reports[n][0])):
        if len(reports[name]) < seeds:
            return [(name, s) for s in range(1, seeds) if s not in runs[name]]
        if all(held(r) for r in reports[name]):
            return []
    return []


# -- the whole run --

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", choices=sorted(BUDGETS), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--rows", default=None, help=f"comma-separated, of {', '.join([*LOOP_ROWS, *TARGET_ROWS])} "
                                                     "(default: the budget's)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per loop row (default: the budget's)")
    parser.add_argument("--variants", default=None,
                        help=f"comma-separated combinations of {', '.join(VARIANTS)} joined by '+' (e.g. "
                             "m8,distill,m8+distill): every row run again at seed 0 with those options, beside it "
                             "(default: the budget's)")
    parser.add_argument("--plan", action="store_true",
                        help="print the first stage's prune commands (every network, row and seed) and exit: "
                             "nothing is trained, run or written")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                        help="training and prune runs at once, each with cores/jobs TensorFlow threads (latency is "
                             f"measured afterwards, alone; default {DEFAULT_JOBS}: on 2 cores two runs at one thread "
                             "each finish sooner than one at two)")
    args = parser.parse_args(argv)
    budget = BUDGETS[args.budget]
    networks = [n for n in args.networks.split(",") if n]
    rows = tuple(args.rows.split(",")) if args.rows else None
    variants = tuple(v for v in args.variants.split(",") if v) if args.variants is not None else budget.variants
    try:
        variants = tuple("+".join(check_variant(v)) for v in variants)
    except SystemExit as exc:
        parser.error(str(exc))
    bad = [n for n in networks if n not in NETWORKS] + [r for r in rows or () if r not in (*LOOP_ROWS, *TARGET_ROWS)]
    if bad:
        parser.error(f"unknown network(s) or row(s) {bad}")
    if args.seeds is not None and args.seeds < 1 or args.jobs < 1:
        parser.error("--seeds and --jobs must be at least 1")
    out = args.out
    exe = Path(sys.executable).parent / "edgeprune"
    if out.exists() and not out.is_dir():
        parser.error(f"--out '{out}' is a file: give a folder")
    if not exe.exists():
        parser.error(f"no edgeprune command beside {sys.executable}: run this with the Python that has edgeprune "
                     "installed (.venv/bin/python)")
    if args.plan:
        for net in networks:
            data = out / "photos" if budget.edsr_photos and net == "edsr" else None
            for name, seed in planned_rows(budget, rows, args.seeds, net, variants):
                cmd = prune_command(exe, net, out / net / "baseline.keras", budget, name, seed,
                                    row_dir(out, net, name, seed), data)
                print(f"{net} {name} s{seed}: {' '.join(cmd)}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    info_path = out / "machine.json"
    current = machine(args.budget, budget)
    try:
        info = json.loads(info_path.read_text()) if info_path.exists() else current
    except json.JSONDecodeError:
        parser.error(f"'{info_path}' is not a machine record: delete it (or the folder) and run again")
    if info["budget"] != args.budget:
        parser.error(f"'{out}' holds a --budget {info['budget']} run: use another --out")
    if info["cpu"] != current["cpu"]:  # figures of two CPUs are not one table
        parser.error(f"'{out}' holds a run from another CPU ({info['cpu']}): use another --out")
    if info is not current:  # resumed: when, and the budget as it is now (rows may have been added)
        info["resumed"] = [*info.get("resumed", []), current["date"]]
        info["budget_settings"] = current["budget_settings"]
    from edgeprune.core.atomic import write_json_atomic

    write_json_atomic(info_path, info)
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    env = {**os.environ, **({"TF_NUM_INTRAOP_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
                            if args.jobs > 1 else {})}
    runner = Runner(out, env)
    first = {net: planned_rows(budget, rows, args.seeds, net, variants) for net in networks}
    commands, data = {}, {}
    if budget.edsr_photos and "edsr" in networks:
        data["edsr"] = out / "photos"
        runner.run([sys.executable, str(Path(__file__).with_name("registry_photos.py")), "--out", str(data["edsr"])],
                   data["edsr"] / "manifest.json", out / "photos.log")
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # the baselines (and quick references) at once
        trained = {net: pool.submit(train_baseline, runner, exe, net, budget, data.get(net)) for net in networks}
        references_ = {net: pool.submit(train_quick_baseline, runner, exe, net, data.get(net))
                       for net in networks if budget.quick_reference}
        baselines = {net: f.result() for net, f in trained.items()}
        quick = {net: references_[net].result() if net in references_ else None for net in networks}
    runner.note("the host's latency profile (calibrated once, alone, if not cached)")
    from edgeprune.core.runtime import configure_process

    configure_process()
    from edgeprune.deploy.host_profile import host_profile

    host_profile(1)  # prune runs at once would each calibrate, under each other's load
    # the QR rows first: their reconstruction is the longest fixed cost, and a run left alone at the end has only
    # cores/jobs threads
    jobs = sorted([(net, name, seed) for net in networks for name, seed in first[net]],
                  key=lambda j: not j[1].startswith(TARGET_ROWS))
    failed = threading.Event()  # a failed command stops the run: commands not yet started never start

    def job(net, name, seed):
        if failed.is_set():
            return
        try:
            run_row(runner, exe, net, baselines[net], budget, name, seed, data.get(net))
        except BaseException:
            failed.set()
            raise

    def run_all(jobs):
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for future in as_completed([pool.submit(job, *j) for j in jobs]):
                future.result()

    run_all(jobs)
    plans = {net: first[net] + confirmations(out, net, budget, first[net], args.seeds) for net in networks}
    run_all([(net, name, seed) for net in networks for name, seed in plans[net][len(first[net]):]])
    while True:  # each pass runs the next candidate's other seeds, per network, until one holds at every seed
        more = {net: best_confirmation(out, net, budget, plans[net], args.seeds) for net in networks}
        if not any(more.values()):
            break
        run_all([(net, name, seed) for net in networks for name, seed in more[net]])
        plans = {net: plans[net] + more[net] for net in networks}
    results = {}
    for net in networks:
        names = list(dict.fromkeys(name for name, _ in plans[net]))
        seeds = {n: [s for m, s in plans[net] if m == n] for n in names}
        reports = {n: [json.loads((row_dir(out, net, n, s) / "report.json").read_text()) for s in seeds[n]]
                   for n in names}
        base_info = json.loads(Path(str(baselines[net]) + ".json").read_text())
        first = reports[names[0]][0]
        baseline = {"psnr": first["baseline"]["psnr"], "ssim": first["baseline"]["ssim"],
                    "totals": first["baseline"]["totals"], "input_size": first["input_size"],
                    "train_seconds": base_info["train_seconds"], "data": base_info.get("data", {}),
                    "steps": base_info["config"]["steps"], "widths": original_widths(first),
                    **references(out, net, quick[net], data.get(net))}
        runner.note(f"{net}: timing the baseline and {len(names)} models side by side (fp32, int8)")
        latency = measure_latency(out, net, baselines[net], names, budget.latency_rounds)
        figures = {n: row_figures(r) for n, r in reports.items()}
        results[net] = {"baseline": baseline, "rows": figures, "latency": latency,
                        "eval_cost": eval_costs(out, net, baselines[net], names, latency["input_size"])}
        plots(out, net, baseline, figures, {n: r[0] for n, r in reports.items()}, latency)
        def shown(path):  # the command as a user types it, paths relative to DIR
            return path.read_text().strip().replace(str(exe), "edgeprune").replace(str(out) + "/", "")

        commands[net] = {"baseline": shown(baselines[net].parent / "train-command.txt"),
                         "rows": {n: shown(row_dir(out, net, n, 0) / "command.txt") for n in names}}
    write_json_atomic(out / "results.json", {"machine": info, "results": results, "commands": commands})
    text = section(info, results, budget, commands, time.perf_counter() - started, args.seeds, variants)
    (out / "benchmarks.md").write_text(text + "\n")
    runner.note(f"wrote {out / 'benchmarks.md'} after {time.perf_counter() - started:.0f} s")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
