"""``edgeprune prune`` (iterative): baseline -> quality-gated prune loop -> equal-budget control -> slim model.

1. The baseline: ``--baseline FILE``, or the ``--model`` .keras file itself, or (for a reference name) the trained
   weights shipped in ``keras_models/weights/`` (checked against their manifest), or with ``--baseline train`` one
   trained here with the preset and cached as ``DIR/baseline.keras`` (reused by later runs with the same settings).
2. The loop of :mod:`edgeprune.prune.loop`, gated by PSNR/SSIM on the held-out validation set.
3. The control: the baseline fine-tuned for as many steps as the pruned model's accepted history holds, in the
   loop's own chunks (:class:`~edgeprune.prune.control.ControlChain`), so a gain from extra training is not credited
   to pruning. Kept chunk by chunk in the cache folder (``controls/``, keyed by the baseline's weights, the images
   and the fine-tuning settings), so comparing methods on one baseline trains each budget once; ``--gate control``
   asks the same chain at every iteration.
4. The outputs, written together (all or nothing): ``pruned.keras`` (physically slim), ``plan.json``,
   ``report.json``, ``channels.png`` and ``tradeoff.png``.

Work in progress lives in ``DIR/.work`` (loop checkpoint, interrupted training); ``resume=True`` continues it.

:func:`prune_run` reads as these steps, top to bottom. :func:`prepare` checks every option and file a user can get
wrong and resolves the model, the baseline and the data into a :class:`RunContext` before anything is written; the
graph and coupling of each model are built once (the model's in :func:`prepare`, the loop's copy in the loop) and
passed down.
"""

import json
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field as dataclass_field, replace
from pathlib import Path

import numpy as np

from edgeprune.core.atomic import staged_files, write_json_atomic
from edgeprune.data.pairs import PairSet
from edgeprune.core.errors import InvalidArgumentError, ModelLoadError, UnsupportedModelError
from edgeprune.core.files import read_json
from edgeprune.graph.cost import model_cost
from edgeprune.graph.coupling import Coupling
from edgeprune.core.modelio import ResolvedModel, load_model, load_shipped, resolve_model, save_model
from edgeprune.prune.control import ControlChain, quality_of
from edgeprune.prune.coarse import kernels_to_json, pruned_kernel_fraction
from edgeprune.prune.loop import (LoopResult, LoopSettings, Tolerance, load_state, profile_identity,
                                  prune_loop)
from edgeprune.prune.options import SHIPPED, TRAIN, PruneOptions
from edgeprune.prune.plan import PruningPlan, fingerprint
from edgeprune.prune.widths import width_rule
from edgeprune.train.distill import fine_tuned_against
from edgeprune.train.fit import fit, initialised_copy, load_data, scale_of, task_of, validate
from edgeprune.train.presets import Preset, preset
from edgeprune.core.timing import PhaseTimes

OUTPUT_FILES = ("pruned.keras", "plan.json", "report.json", "channels.png", "tradeoff.png")
KERNEL_MASK_FILE = "kernel_mask.json"  # the coarse strategy's kept kernels, beside the outputs when it prunes any
KERNEL_MASK_FORMAT = "edgeprune.kernel_mask/1"
WORK = ".work"
REPORT_FORMAT = "edgeprune.prune/1"


@dataclass(frozen=True)
class PruneResult:
    """What a run produced: its report (as written to ``report.json``), the slim model and its plan."""

    report: dict
    slim_model: object
    plan: PruningPlan


@dataclass(frozen=True)
class Baseline:
    """The trained model the loop starts from, and where it came from (the report's ``baseline`` fields)."""

    model: object | None  # None: trained here, under ``cache_key``
    info: dict | None = None
    cache_key: dict | None = None
    cached: bool = False  # loaded from DIR/baseline.keras, trained by an earlier run with the same settings


@dataclass(frozen=True)
class Hardware:
    """What the kept widths are chosen for, and how the report measures latency (``report.json``'s ``latency``).

    ``profile`` (a LatencyProfile) or ``load_profile`` (a callable returning ``(profile, source)``, called once every
    other option has been checked: calibrating the host takes minutes) give the widths and the predicted latency;
    ``channel_multiple`` aligns widths without one. ``measure(models, input_size, calib_samples=...)`` times Keras
    models on the host, exported in ``dtype`` (int8 calibrated on the samples), and returns ``{"us": [per model],
    ...details}``; None leaves the report without measured figures."""

    profile: object | None = None
    profile_source: str | None = None
    load_profile: Callable[[], tuple[object, str]] | None = None
    channel_multiple: int = 1
    measure: Callable[..., dict] | None = None
    dtype: str = "fp32"  # what the model is deployed as: the profile's dtype, and what ``measure`` exports

    def __post_init__(self):
        if self.has_profile and self.channel_multiple != 1:
            raise InvalidArgumentError("--channel-multiple and --latency-profile both choose the widths: give one")

    @property
    def has_profile(self) -> bool:
        return self.profile is not None or self.load_profile is not None


@dataclass(frozen=True)
class RunContext:
    """One run's checked options and what :func:`prepare` resolved from them; the steps read, never change it."""

    out_dir: Path
    resolved: ResolvedModel
    coupling: Coupling  # of the model: its graph and channel groups
    settings: Preset  # the preset with the caller's overrides
    loop: LoopSettings
    baseline: Baseline
    train_pool: PairSet
    val: PairSet
    input_size: tuple[int, int]  # of the cost figures
    eval_size: tuple[int, int]  # of the validation inputs: the latency figures'
    hardware: Hardware
    profile_source: str | None
    run_key: dict  # DIR/.work/run.json: a resumed run must repeat these options
    resume: bool
    resuming_loop: bool  # a loop checkpoint is there to continue
    echo: Callable[[str], None]
    verbose: int
    times: PhaseTimes = dataclass_field(default_factory=PhaseTimes)  # where the run's minutes go
    strategy: str = "threshold"  # one of edgeprune.prune.proposers.STRATEGIES
    recover_steps: int = 0  # the QR strategy's fine-tuning after its reconstruction

    @property
    def work(self) -> Path:
        return self.out_dir / WORK


def prune_run(options: PruneOptions, hardware: Hardware | None = None, echo=None, verbose: int = 1) -> PruneResult:
    """Runs the whole pipeline ``options`` describe and writes ``OUTPUT_FILES`` into its ``out_dir``.

    ``hardware`` (default: any width, nothing measured) says what the widths are chosen for (a target latency needs
    its profile). ``echo(text)`` receives progress lines; ``verbose`` is Keras' progress bar setting."""
    times = PhaseTimes()
    with times.phase("prepare"):
        ctx = prepare(options, hardware, echo=echo, verbose=verbose, times=times)
    with run_folder(ctx):
        started = time.perf_counter()
        with times.phase("baseline"):
            base = trained_baseline(ctx)
        with times.phase("baseline_validate"):
            base_quality = baseline_quality(ctx, base.model)
        with times.phase("loop"):
            loop = run_loop(ctx, base.model, base_quality)
        with times.phase("slim"):
            slim_model = slim_model_of(loop)
        with times.phase("pruned_validate"):
            pruned_quality = quality_of(validate(slim_model, ctx.val))
        with times.phase("control"):  # the same chain the control gate asks: cached chunk by chunk
            control = control_chain(ctx, base.model)(loop.state.lineage_steps)
        report = build_report(ctx, base, base_quality, loop, slim_model, pruned_quality, control)
        with times.phase("latency"):
            report["latency"] = latency_report(ctx, base.model, slim_model, loop, report["pruned"]["mac_ratio"])
        ctx.echo(pruned_line(report))
        report["seconds"] = round(time.perf_counter() - started, 1)
        report["timings"] = times.as_dict()  # saving the outputs, after this, is not in it
        write_outputs(ctx.out_dir, report, slim_model, loop.plan, loop.kernels)
    return PruneResult(report, slim_model, loop.plan)


def prune_command(model, out_dir, hardware: Hardware | None = None, echo=None, verbose: int = 1,
                  **options) -> dict:
    """:func:`prune_run`'s report (the JSON of ``report.json``) for ``model`` into ``out_dir``; ``options``: the
    other fields of :class:`~edgeprune.prune.options.PruneOptions`."""
    return prune_run(PruneOptions(model, out_dir, **options), hardware, echo=echo, verbose=verbose).report


# -- 1. everything a user can get wrong is checked before anything is written --

def prepare(options: PruneOptions, hardware: Hardware | None = None, echo=None, verbose: int = 1,
            times: PhaseTimes | None = None) -> RunContext:
    """Checks the files and the options' fit with the model, resolves the model, the baseline, the data and (last,
    as calibrating the host takes minutes) the latency profile: writes nothing but the host's profile cache."""
    o, out_dir = options, options.out_dir
    hardware = hardware or Hardware()
    if o.target_latency is not None and not hardware.has_profile:
        raise InvalidArgumentError("--target-latency needs a latency profile to predict latency with: give "
                                   "--latency-profile (or leave the default, the host's) instead of "
                                   "--channel-multiple")
    multiple_rule = width_rule(hardware.channel_multiple)  # a valid multiple
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidArgumentError(f"--out '{out_dir}' is a file: give a folder")
    work = out_dir / WORK
    if not o.resume and (work / "loop" / "loop.json").exists():
        raise InvalidArgumentError(f"'{out_dir}' holds an unfinished run: add --resume to continue it, or delete "
                                   f"'{work}' to start over")
    resolved = resolve_model(o.model)
    task = task_of(resolved.model)
    settings = preset(o.preset_name, task).with_overrides(dict(o.overrides))
    loop = LoopSettings.from_preset(settings, o.loop_target_mac, Tolerance(o.tolerance_psnr, o.tolerance_ssim),
                                    o.method, o.importance, strategy=o.loop_strategy, gate=o.gate, **o.search,
                                    distill=o.distill)
    coupling = Coupling(resolved.model)
    if not coupling.groups:
        why = "; ".join(coupling.frozen_reasons) or "all its channels reach a model input or output"
        raise UnsupportedModelError(f"'{resolved.name}' has no prunable channel group ({why})")
    if not hardware.has_profile:
        multiple_rule.check_fits(coupling)
    base = _given_baseline(o.model, resolved, coupling, o.baseline)
    if base is None:
        base = _reference_baseline(resolved, out_dir, o.preset_name, o.data, settings)
    data = o.data
    if data is None and (base.info or {}).get("source") == "shipped":  # fine-tune on what the weights learnt from
        from keras_models.shipped import PHOTOS_DIR

        data = PHOTOS_DIR
    times = times or PhaseTimes()
    with times.phase("prepare.data"):
        train_pool, val = load_data(task, data, settings, scale_of(resolved.model, coupling.graph))
    profile, source = hardware.profile, hardware.profile_source
    if hardware.load_profile is not None:
        with times.phase("prepare.latency_profile"):  # calibrates the host the first time: minutes
            profile, source = hardware.load_profile()
    rule = width_rule(hardware.channel_multiple, profile, source)
    rule.check_fits(coupling)
    loop = replace(loop, widths=rule, profile=profile, target_latency=o.target_latency)
    run_key = {"model": resolved.name, "baseline": str(o.baseline) if o.baseline else None, "data": str(o.data),
               "preset": o.preset_name, "settings": settings.to_dict(), "loop": loop.to_dict(),
               "strategy": o.strategy}
    resuming_loop = _check_resume(out_dir, run_key) if o.resume else False
    return RunContext(out_dir, resolved, coupling, settings, loop, base, train_pool, val,
                      cost_input_size(resolved, val), eval_input_size(val), hardware, source, run_key, o.resume,
                      resuming_loop, echo or (lambda text: None), verbose, times, o.strategy, o.recover)


def _given_baseline(model, resolved, coupling: Coupling, baseline) -> Baseline | None:
    """The baseline of ``--baseline FILE``, the ``--model`` .keras itself, or a reference name's shipped weights
    (``--baseline shipped``, the default where the package ships some); None when one is to be trained here
    (``--baseline train``, the default for a reference name without shipped weights)."""
    from keras_models.shipped import has_shipped

    reference = isinstance(model, str) and model in _reference_names()
    if baseline in (SHIPPED, TRAIN) and not reference:
        raise InvalidArgumentError(f"--baseline {baseline} goes with a reference --model "
                                   f"({', '.join(_reference_names())}); a model file is pruned as it is: drop "
                                   "--baseline")
    if baseline not in (None, SHIPPED, TRAIN):
        trained = load_model(baseline)
        _same_architecture(resolved.model, coupling, trained, baseline)
        return Baseline(trained, {"source": str(baseline)})
    if not reference:
        return Baseline(resolved.model, {"source": str(model)})
    if baseline == TRAIN or (baseline is None and not has_shipped(model)):
        return None
    trained, shipped = load_shipped(model)  # checks the file against its manifest first
    _same_architecture(resolved.model, coupling, trained, shipped.path)
    return Baseline(trained, shipped_info(shipped))


def shipped_info(shipped) -> dict:
    """The report's ``baseline`` fields for shipped weights: which file, its digest, how it was trained and how
    good it was recorded to be."""
    m = shipped.manifest
    return {"source": "shipped", "weights": f"keras_models/weights/{shipped.path.name}", "sha256": shipped.sha256,
            "description": shipped.summary(), "recipe": m["recipe"], "training": m["training"],
            "recorded_quality": m["quality"]}


def _same_architecture(reference, coupling: Coupling, candidate, path) -> None:
    ref_in, cand_in = tuple(reference.inputs[0].shape[1:]), tuple(candidate.inputs[0].shape[1:])
    if ref_in[-1] != cand_in[-1] or fingerprint(coupling) != fingerprint(Coupling(candidate)):
        raise ModelLoadError(f"'{path}' is not a trained '{reference.name}' model (its layers or channel groups "
                             "differ): give a baseline saved by 'edgeprune train' for the same --model")


def _reference_names():
    from keras_models import REFERENCE_MODELS

    return REFERENCE_MODELS


def _check_resume(out_dir: Path, run_key: dict) -> bool:
    """Raises unless the unfinished run in ``out_dir`` (if any) was started with the same options; True when a
    loop checkpoint is there to continue (read, so a corrupt one is refused now)."""
    work = out_dir / WORK
    if (work / "run.json").exists():
        recorded = read_json(work / "run.json", "run record")
        if recorded != _as_json(run_key):
            raise InvalidArgumentError(f"the unfinished run in '{out_dir}' was started with other options: repeat "
                                       f"them exactly with --resume, or delete '{work}' to start over")
    return load_state(work / "loop") is not None


def _as_json(data):
    return json.loads(json.dumps(data))


# How a reference baseline's initial weights are drawn from init_seed; part of the cache key, so a baseline drawn
# another way (earlier versions reseeded the global generators) is not taken for this one.
INIT_SCHEME = "per-layer initializer seeds"


def _reference_baseline(resolved, out_dir: Path, preset_name: str, data, settings: Preset) -> Baseline:
    """A reference name's baseline: the cached ``DIR/baseline.keras`` when it was trained with these settings,
    else one to train here."""
    key = {"model": resolved.name, "preset": preset_name, "data": str(data), "init_seed": settings.train_config().seed,
           "init": INIT_SCHEME, "train": settings.baseline_dict()}
    path, meta = out_dir / "baseline.keras", out_dir / "baseline.json"
    if not (path.exists() and meta.exists()):
        return Baseline(None, cache_key=key)
    recorded = read_json(meta, "cached baseline record", required=("key",))
    if recorded["key"] != _as_json(key):
        raise InvalidArgumentError(f"'{path}' was trained with other settings ({recorded['key']}): delete it "
                                   "or choose another --out")
    return Baseline(load_model(path), {"source": str(path), "cached": True, **recorded}, key, cached=True)


def cost_input_size(resolved, val) -> tuple[int, int]:
    """The cost figures' input size: the reference model's (Table 1's) or the first validation input's."""
    if resolved.default_input_size:
        return tuple(resolved.default_input_size)
    return tuple(int(d) for d in val.inputs[0].shape[:2])


def eval_input_size(val) -> tuple[int, int]:
    """The size of the first validation input (HxW): where quality is measured, and so latency."""
    return tuple(int(d) for d in val.inputs[0].shape[:2])


# -- 2. from here on, files are written --

@contextmanager
def run_folder(ctx: RunContext):
    """``DIR/.work`` with the run's record for the steps inside; removed when they finish. On failure, a folder
    this run created is removed again, unless it holds something ``--resume`` can continue from."""
    out_dir, work = ctx.out_dir, ctx.work
    created = not out_dir.exists()
    work.mkdir(parents=True, exist_ok=True)
    write_json_atomic(work / "run.json", ctx.run_key)
    try:
        yield
    except BaseException:
        resumable = (out_dir / "baseline.keras").exists() or (work / "loop").exists() or (work / "baseline").exists()
        if created and not resumable:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)


def trained_baseline(ctx: RunContext) -> Baseline:
    """The baseline resolved by :func:`prepare`, trained here (and cached in ``DIR``) when it is still to train."""
    base = ctx.baseline
    if base.cached:
        ctx.echo(f"using the cached baseline {ctx.out_dir / 'baseline.keras'} (trained with the same settings)")
    if base.model is not None:
        return base
    config = ctx.settings.train_config()
    ctx.echo(f"training the baseline: {config.steps} steps of batch {config.batch_size} ({ctx.settings.patch}-pixel "
             "patches)")
    start = time.perf_counter()
    model, history = fit(initialised_copy(ctx.resolved.model, config.seed), ctx.train_pool, config,
                         workdir=ctx.work / "baseline", resume=ctx.resume, verbose=ctx.verbose)
    info = {"key": base.cache_key, "config": config.to_dict(), "train_seconds": round(time.perf_counter() - start, 1),
            "final_loss": history["loss"][-1] if history["loss"] else None}
    save_model(model, ctx.out_dir / "baseline.keras")
    write_json_atomic(ctx.out_dir / "baseline.json", info)
    return replace(base, model=model, info={"source": "trained here", "cached": False, **info})


def baseline_quality(ctx: RunContext, model) -> dict:
    quality = quality_of(validate(model, ctx.val))
    ctx.echo(f"baseline: PSNR {quality['psnr']:.3f} dB, SSIM {quality['ssim']:.4f} on {len(ctx.val)} held-out images")
    return quality


def run_loop(ctx: RunContext, baseline, base_quality: dict) -> LoopResult:
    """The strategy's pruning: the quality-gated loop (threshold or coarse proposals), or the one-shot QR
    reconstruction (no gate; fine-tuned for ``ctx.recover_steps`` if any)."""
    if ctx.strategy == "qr":
        from edgeprune.prune.reconstruct import qr_one_shot

        how = f"then {ctx.recover_steps} fine-tuning steps" if ctx.recover_steps else "no fine-tuning"
        ctx.echo(f"pivoted-QR channel selection with least-squares reconstruction, once ({how})")
        result = qr_one_shot(baseline, ctx.train_pool, ctx.val, ctx.loop, base_quality, ctx.input_size,
                             latency_size=ctx.eval_size, times=ctx.times, seed=ctx.loop.finetune.seed,
                             recover_steps=ctx.recover_steps, verbose=ctx.verbose)
        ctx.echo(iteration_line(result.state.iterations[0], base_quality))
        return result
    if ctx.resuming_loop:
        ctx.echo(f"resuming the prune loop from {ctx.work / 'loop'}")
    control = control_chain(ctx, baseline) if ctx.loop.gate == "control" else None
    return prune_loop(baseline, ctx.train_pool, ctx.val, ctx.loop, base_quality, ctx.input_size, ctx.work / "loop",
                      resume=ctx.resume, progress=lambda r: ctx.echo(iteration_line(r, base_quality)),
                      verbose=ctx.verbose, latency_size=ctx.eval_size, times=ctx.times, control=control)


def slim_model_of(loop: LoopResult):
    """The accepted masked model with its pruned channels physically removed."""
    from edgeprune.prune.surgery import slim

    return slim(loop.model, loop.plan, loop.coupling)


def control_chain(ctx: RunContext, baseline) -> ControlChain:
    """The run's equal-budget control (:class:`~edgeprune.prune.control.ControlChain`): the unpruned baseline
    fine-tuned in the loop's chunks (``--gate control`` asks it at every iteration, the report at the accepted
    budget), or, for the QR strategy, in one chunk of ``--recover-steps``; cached chunk by chunk, so a resumed run or
    another run on the same baseline continues it instead of training it again."""
    finetune = ctx.loop.finetune
    if ctx.strategy == "qr" and ctx.recover_steps:
        finetune = replace(finetune, steps=ctx.recover_steps)
    return ControlChain(baseline, ctx.train_pool, ctx.val, finetune, echo=ctx.echo, verbose=ctx.verbose,
                        what="control" if ctx.loop.gate == "baseline" else "gate: the control at this iteration's budget")


def build_report(ctx: RunContext, base: Baseline, base_quality: dict, loop: LoopResult, slim_model,
                 pruned_quality: dict, control: dict) -> dict:
    """The JSON of ``report.json`` (all but ``seconds``)."""
    name, size, state = ctx.resolved.name, ctx.input_size, loop.state
    base_cost = model_cost(loop.coupling.graph, size, name=name)  # the loop's copy has the baseline's structure
    pruned_cost = model_cost(slim_model, size, name=name)
    mac_ratio = pruned_cost.totals.mac / base_cost.totals.mac
    return {
        "format": REPORT_FORMAT,
        "model": name,
        "input_size": list(size),
        "settings": ctx.loop.to_dict(),
        "preset": ctx.settings.to_dict(),
        "baseline": {"totals": base_cost.totals.to_dict(), **base_quality, **base.info},
        "pruned": {"totals": pruned_cost.totals.to_dict(), **pruned_quality, "mac_ratio": mac_ratio,
                   "weights_ratio": pruned_cost.totals.weights / base_cost.totals.weights,
                   "psnr_drop": base_quality["psnr"] - pruned_quality["psnr"],
                   "ssim_drop": base_quality["ssim"] - pruned_quality["ssim"],
                   "masked_psnr": state.quality["psnr"], "masked_ssim": state.quality["ssim"]},
        "control": {**control, "psnr_gap_to_pruned": control["psnr"] - pruned_quality["psnr"],
                    "ssim_gap_to_pruned": control["ssim"] - pruned_quality["ssim"]},
        "strategy": strategy_report(ctx, loop, mac_ratio),
        "fine_tuned_against": fine_tuned_against(ctx.loop.distill,
                                                 trained=ctx.strategy != "qr" or ctx.recover_steps > 0),
        "iterations": state.iterations,
        "finetune_steps": {"lineage": state.lineage_steps, "spent": state.spent_steps},
        "target_met": state.level.target_met,
        "groups": {n: {"size": g.size, "kept": len(loop.plan.kept_units(n)), "producers": list(g.producers)}
                   for n, g in loop.coupling.groups.items()},
        "layers": _layer_channels(base.model, slim_model),
        "data": {"train": ctx.train_pool.description, "validation": ctx.val.description},
    }


def strategy_report(ctx: RunContext, loop: LoopResult, mac_ratio: float) -> dict:
    """``report.json``'s ``strategy``: which one chose the channels and, for coarse kernel masks, the MAC counted
    with pruned kernels skipped beside the MAC the exported dense model executes (``mac_ratio``)."""
    out = {"name": ctx.strategy}
    if ctx.strategy == "coarse":
        out.update({"granularity": ctx.loop.granularity, "candidates": ctx.loop.candidates,
                    "sparse_mac_ratio": loop.state.mac, "executed_mac_ratio": mac_ratio,
                    "pruned_kernels": pruned_kernel_fraction(loop.kernels),
                    "note": "kernel masks make MAC skippable only for sparse kernels: a dense TFLite conv executes "
                            "the zero kernels, so the executed MAC is what the exported model runs; whole channels "
                            "left without kernels were removed"})
    if ctx.strategy == "qr" and loop.state.iterations:
        record = loop.state.iterations[0]
        out["reconstruction"] = record.get("reconstruction")
        out["recover_steps"] = ctx.recover_steps
        out["missed_plan"] = record.get("missed_plan")
    return out


def latency_report(ctx: RunContext, baseline, slim_model, loop: LoopResult, mac_ratio: float) -> dict:
    """``report.json``'s ``latency``: what the widths were chosen for, the profile's predicted latency of the
    baseline and the pruned model, and their latency measured on this host, at the validation input size."""
    from edgeprune.graph.latency_profile import predict_report

    size, profile = ctx.eval_size, ctx.loop.profile
    out = {"widths_for": ctx.loop.widths.source, "widths": ctx.loop.widths.to_dict(), "dtype": ctx.hardware.dtype,
           "profile": {**profile_identity(profile), "source": ctx.profile_source} if profile is not None else None,
           "input_size": list(size), "mac_ratio": mac_ratio, "target_latency": ctx.loop.target_latency,
           "predicted": None, "measured": None}
    if profile is not None:
        base_us = predict_report(profile, model_cost(loop.coupling.graph, size))["total_us"]
        pruned_us = predict_report(profile, model_cost(slim_model, size))["total_us"]
        out["predicted"] = {"baseline_us": base_us, "pruned_us": pruned_us, "ratio": pruned_us / base_us}
    if ctx.hardware.measure is not None:
        ctx.echo(f"measuring the baseline's and the pruned model's latency on this host ({ctx.hardware.dtype} TFLite at "
                 f"{'x'.join(map(str, size))})")
        measured = dict(ctx.hardware.measure([baseline, slim_model], size, calib_samples=_samples_of(ctx.val, size)))
        base_us, pruned_us = measured.pop("us")
        out["measured"] = {"baseline_us": base_us, "pruned_us": pruned_us, "ratio": pruned_us / base_us, **measured}
    return out


def _samples_of(val: PairSet, size, limit: int = 8) -> list:
    """Up to ``limit`` validation inputs cropped to ``size`` (HxW), batched: an int8 export's calibration."""
    h, w = size
    return [np.asarray(x, np.float32)[None, :h, :w] for x in val.inputs
            if x.shape[0] >= h and x.shape[1] >= w][:limit]


def write_outputs(out_dir: Path, report: dict, slim_model, plan: PruningPlan, kernels=None) -> None:
    """All five files (and the kernel mask, when kernels were pruned) through a staging folder: all or nothing."""
    from edgeprune.prune.plots import channels_plot, tradeoff_plot

    masked = {n: m for n, m in (kernels or {}).items() if not m.all()}
    names = OUTPUT_FILES + ((KERNEL_MASK_FILE,) if masked else ())
    stale = () if masked else (KERNEL_MASK_FILE,)  # not a mask of an earlier run in this folder
    with staged_files(out_dir, names, remove=stale) as stage:
        save_model(slim_model, stage / "pruned.keras")
        plan.save(stage / "plan.json")
        write_json_atomic(stage / "report.json", report)
        channels_plot(report, stage / "channels.png")
        tradeoff_plot(report, stage / "tradeoff.png")
        if masked:  # in the unpruned model's channel indices, as plan.json's units are
            write_json_atomic(stage / KERNEL_MASK_FILE, {
                "format": KERNEL_MASK_FORMAT, "model": plan.model, "fingerprint": plan.fingerprint,
                "layers": {n: {"shape": list(m.shape), "pruned": p}
                           for (n, m), p in zip(masked.items(), kernels_to_json(masked).values())}})


# -- progress lines --

def iteration_line(record: dict, base: dict) -> str:
    verdict = "accepted" if record["accepted"] else "rolled back"
    if record.get("threshold") is not None:
        chose = f"threshold {record['threshold']:.4f}"
    elif "search" in record:
        chose = f"mask {record['search']['chosen'] + 1} of {len(record['search']['candidate_losses'])}"
    else:
        chose = "one-shot"
    executed = f" (executed {record['executed_mac']:.3f})" if "executed_mac" in record else ""
    return (f"iteration {record['iteration']:2d}: level {record['level']:.3f} (step {record['step']:.3f}), {chose}, "
            f"MAC {record['mac']:.3f}{executed}{_latency_part(record)}  PSNR {record['psnr']:.3f} ({record['psnr'] - base['psnr']:+.3f})  "
            f"SSIM {record['ssim']:.4f} ({record['ssim'] - base['ssim']:+.4f}){_control_part(record)}  {verdict}"
            f"{' (' + record['note'] + ')' if record.get('note') else ''}  [{record['seconds']:.0f} s]")


def _control_part(record: dict) -> str:
    """The control gate's comparison: the candidate against the unpruned baseline at the same steps."""
    control = record.get("control")
    if not control:
        return ""
    return (f"  vs control@{control['steps']} {record['psnr'] - control['psnr']:+.3f} dB "
            f"{record['ssim'] - control['ssim']:+.4f}")


def pruned_line(report: dict) -> str:
    pruned, control = report["pruned"], report["control"]
    return (f"pruned: MAC {pruned['mac_ratio']:.3f} of the baseline, PSNR {pruned['psnr']:.3f} dB "
            f"({-pruned['psnr_drop']:+.3f}), control {control['psnr']:.3f} dB after {control['steps']} steps; "
            f"fine-tuned against {report['fine_tuned_against']['text']}")


def _latency_part(record: dict) -> str:
    return f", latency {record['latency']:.3f} (predicted)" if record.get("latency") is not None else ""


def _layer_channels(original, pruned) -> list[dict]:
    from edgeprune.graph.layer_table import MIXING

    out = []
    for layer in original.layers:
        if isinstance(layer, MIXING):
            out.append({"layer": layer.name, "original": int(layer.output.shape[-1]),
                        "pruned": int(pruned.get_layer(layer.name).output.shape[-1])})
    return out
