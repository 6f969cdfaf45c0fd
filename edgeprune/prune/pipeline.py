"""``edgeprune prune`` (iterative): baseline -> quality-gated prune loop -> equal-budget control -> slim model.

1. The baseline: ``--baseline FILE``, or the ``--model`` .keras file itself, or (for a reference name) one trained
   here with the preset and cached as ``DIR/baseline.keras`` (reused by later runs with the same settings).
2. The loop of :mod:`edgeprune.prune.loop`, gated by PSNR/SSIM on the held-out validation set.
3. The control: the baseline fine-tuned for as many steps as the pruned model's accepted history holds, so a gain
   from extra training is not credited to pruning.
4. The outputs, written together (all or nothing): ``pruned.keras`` (physically slim), ``plan.json``,
   ``report.json``, ``channels.png`` and ``tradeoff.png``.

Work in progress lives in ``DIR/.work`` (loop checkpoint, interrupted training); ``resume=True`` continues it.
"""

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

from edgeprune.atomic import staged_files, write_json_atomic
from edgeprune.graph.cost import model_cost
from edgeprune.graph.coupling import Coupling
from edgeprune.errors import InvalidArgumentError, ModelLoadError, UnsupportedModelError
from edgeprune.prune.loop import LoopSettings, Tolerance, check_fraction, load_state, prune_loop
from edgeprune.modelio import load_model, resolve_model, save_model
from edgeprune.prune.plan import fingerprint
from edgeprune.train.presets import preset
from edgeprune.prune.level import ThresholdPolicy
from edgeprune.train.fit import TrainConfig, fit, initialised_copy, load_data, scale_of, task_of, validate

OUTPUT_FILES = ("pruned.keras", "plan.json", "report.json", "channels.png", "tradeoff.png")
WORK = ".work"


def _quality(q: dict) -> dict:
    return {"psnr": q["psnr"], "ssim": q["ssim"]}


def _same_architecture(reference, candidate, path) -> None:
    ref_in, cand_in = tuple(reference.inputs[0].shape[1:]), tuple(candidate.inputs[0].shape[1:])
    if ref_in[-1] != cand_in[-1] or fingerprint(Coupling(reference)) != fingerprint(Coupling(candidate)):
        raise ModelLoadError(f"'{path}' is not a trained '{reference.name}' model (its layers or channel groups "
                             "differ): give a baseline saved by 'edgeprune train' for the same --model")


def cost_input_size(resolved, val) -> tuple[int, int]:
    """The cost figures' input size: the reference model's (Table 1's) or the first validation input's."""
    if resolved.default_input_size:
        return tuple(resolved.default_input_size)
    return tuple(int(d) for d in val.inputs[0].shape[:2])


def _settings(task: str, preset_name: str, overrides: dict | None) -> dict:
    settings = preset(preset_name, task)
    unknown = set(overrides or {}) - set(settings)
    if unknown:
        raise InvalidArgumentError(f"unknown setting(s) {sorted(unknown)}: known are {sorted(settings)}")
    return {**settings, **{k: v for k, v in (overrides or {}).items() if v is not None}}


def _train_baseline(resolved, train_pool, settings, key, out_dir, work, resume, echo, verbose):
    path, meta = out_dir / "baseline.keras", out_dir / "baseline.json"
    if path.exists() and meta.exists():
        recorded = json.loads(meta.read_text())
        if recorded.get("key") == key:
            echo(f"using the cached baseline {path} (trained with the same settings)")
            return load_model(path), {"source": str(path), "cached": True, **recorded}
        raise InvalidArgumentError(f"'{path}' was trained with other settings ({recorded.get('key')}): delete it "
                                   "or choose another --out")
    config = TrainConfig(steps=settings["steps"], batch_size=settings["batch_size"], patch=settings["patch"],
                         learning_rate=settings["learning_rate"], clipnorm=settings.get("clipnorm"))
    echo(f"training the baseline: {config.steps} steps of batch {config.batch_size} ({settings['patch']}-pixel "
         "patches)")
    start = time.perf_counter()
    model, history = fit(initialised_copy(resolved.model, config.seed), train_pool, config,
                         workdir=work / "baseline", resume=resume, verbose=verbose)
    info = {"key": key, "config": config.to_dict(), "train_seconds": round(time.perf_counter() - start, 1),
            "final_loss": history["loss"][-1] if history["loss"] else None}
    save_model(model, path)
    write_json_atomic(meta, info)
    return model, {"source": "trained here", "cached": False, **info}


def prune_command(model, out_dir, baseline=None, data=None, method: str | None = None,
                  target_mac: float | None = 0.8,
                  tolerance_psnr: float = 0.05, tolerance_ssim: float = 0.002, preset_name: str = "quick",
                  resume: bool = False, overrides: dict | None = None, echo=None, verbose: int = 1,
                  importance: str | None = None) -> dict:
    """Runs the whole pipeline and writes ``OUTPUT_FILES`` into ``out_dir``; returns the report.

    ``method`` (A-D) and ``importance`` (magnitude or taylor) default to the preset's for the task.

    ``overrides`` replaces preset settings (e.g. ``{"finetune_steps": 20}``). ``echo(text)`` receives progress lines.
    """
    echo = echo or (lambda text: None)
    out_dir = Path(out_dir)
    # -- everything a user can get wrong is checked before anything is written --
    target = check_fraction("target MAC", target_mac)
    tolerance = Tolerance(tolerance_psnr, tolerance_ssim)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidArgumentError(f"--out '{out_dir}' is a file: give a folder")
    work = out_dir / WORK
    if not resume and (work / "loop" / "loop.json").exists():
        raise InvalidArgumentError(f"'{out_dir}' holds an unfinished run: add --resume to continue it, or delete "
                                   f"'{work}' to start over")
    resolved = resolve_model(model)
    task = task_of(resolved.model)
    settings = _settings(task, preset_name, overrides)
    finetune = TrainConfig(steps=settings["finetune_steps"], batch_size=settings["batch_size"],
                           patch=settings["patch"], learning_rate=settings["finetune_lr"],
                           clipnorm=settings.get("clipnorm"))
    method = settings["method"] if method is None else method
    importance = settings["importance"] if importance is None else importance
    loop_settings = LoopSettings(method=method, target_mac=target, tolerance=tolerance, finetune=finetune,
                                 importance=importance,
                                 policy=ThresholdPolicy(initial_step=settings["initial_step"],
                                                        min_step=settings["min_step"], grow=settings["grow"],
                                                        max_iterations=settings["max_iterations"]))
    coupling = Coupling(resolved.model)
    if not coupling.groups:
        why = "; ".join(coupling.frozen_reasons) or "all its channels reach a model input or output"
        raise UnsupportedModelError(f"'{resolved.name}' has no prunable channel group ({why})")
    trained_base = None
    if baseline is not None:
        trained_base = load_model(baseline)
        _same_architecture(resolved.model, trained_base, baseline)
        base_info = {"source": str(baseline)}
    elif not isinstance(model, str) or model not in _reference_names():
        trained_base, base_info = resolved.model, {"source": str(model)}
    scale = scale_of(resolved.model)
    train_pool, val = load_data(task, data, settings, scale)
    size = cost_input_size(resolved, val)
    run_key = {"model": resolved.name, "baseline": str(baseline) if baseline else None, "data": str(data),
               "preset": preset_name, "settings": settings, "loop": loop_settings.to_dict()}
    if resume and (work / "run.json").exists():
        recorded = json.loads((work / "run.json").read_text())
        if recorded != json.loads(json.dumps(run_key)):
            raise InvalidArgumentError(f"the unfinished run in '{out_dir}' was started with other options: repeat "
                                       f"them exactly with --resume, or delete '{work}' to start over")
    # -- from here on, files are written --
    created = not out_dir.exists()
    work.mkdir(parents=True, exist_ok=True)
    write_json_atomic(work / "run.json", run_key)
    started = time.perf_counter()
    try:
        if trained_base is None:
            trained_with = ("train_images", "train_size", "patch", "batch_size", "steps", "learning_rate", "ratios",
                            "sensor", "clipnorm")
            key = {"model": resolved.name, "preset": preset_name, "data": str(data), "init_seed": TrainConfig.seed,
                   "train": {k: settings[k] for k in trained_with if k in settings}}
            trained_base, base_info = _train_baseline(resolved, train_pool, settings, key, out_dir, work, resume,
                                                      echo, verbose)
        base_quality = _quality(validate(trained_base, val))
        echo(f"baseline: PSNR {base_quality['psnr']:.3f} dB, SSIM {base_quality['ssim']:.4f} on "
             f"{len(val)} held-out images")
        if resume and load_state(work / "loop"):
            echo(f"resuming the prune loop from {work / 'loop'}")
        result = prune_loop(trained_base, train_pool, val, loop_settings, base_quality, size, work / "loop",
                            resume=resume, progress=lambda r: echo(iteration_line(r, base_quality)),
                            verbose=verbose)
        report = _finish(resolved, trained_base, result, train_pool, val, settings, loop_settings, base_quality,
                         base_info, size, work, echo, verbose)
        report["seconds"] = round(time.perf_counter() - started, 1)
        _write_outputs(out_dir, report, result.plan, work)
    except BaseException:
        resumable = (out_dir / "baseline.keras").exists() or (work / "loop").exists() or (work / "baseline").exists()
        if created and not resumable:  # keep whatever --resume can continue from
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)
    return report


def _reference_names():
    from keras_models import REFERENCE_MODELS

    return REFERENCE_MODELS


def iteration_line(record: dict, base: dict) -> str:
    verdict = "accepted" if record["accepted"] else "rolled back"
    return (f"iteration {record['iteration']:2d}: level {record['level']:.3f} (step {record['step']:.3f}), threshold "
            f"{record['threshold']:.4f}, "
            f"MAC {record['mac']:.3f}  PSNR {record['psnr']:.3f} ({record['psnr'] - base['psnr']:+.3f})  "
            f"SSIM {record['ssim']:.4f} ({record['ssim'] - base['ssim']:+.4f})  {verdict}"
            f"{' (' + record['note'] + ')' if record.get('note') else ''}  [{record['seconds']:.0f} s]")


def _control(trained_base, train_pool, val, finetune: TrainConfig, steps: int, work: Path, echo, verbose) -> dict:
    path = work / "control.json"
    if path.exists():
        cached = json.loads(path.read_text())
        if cached.get("steps") == steps:
            return cached
    if steps == 0:
        control = {"steps": 0, **_quality(validate(trained_base, val))}
    else:
        echo(f"control: fine-tuning the unpruned baseline for the same {steps} steps")
        tuned, _ = fit(trained_base, train_pool, replace(finetune, steps=steps, seed=finetune.seed + 10_000),
                       verbose=verbose)
        control = {"steps": steps, **_quality(validate(tuned, val))}
    write_json_atomic(path, control)
    return control


def _finish(resolved, trained_base, result, train_pool, val, settings, loop_settings, base_quality, base_info,
            size, work, echo, verbose) -> dict:
    from edgeprune.prune.surgery import slim

    slim_model = slim(result.model, result.plan)
    pruned_quality = _quality(validate(slim_model, val))
    state = result.state
    control = _control(trained_base, train_pool, val, loop_settings.finetune, state.lineage_steps, work, echo,
                       verbose)
    base_cost = model_cost(trained_base, size, name=resolved.name)
    pruned_cost = model_cost(slim_model, size, name=resolved.name)
    mac_ratio = pruned_cost.totals.mac / base_cost.totals.mac
    coupling = Coupling(trained_base)
    report = {
        "format": "edgeprune.prune/1",
        "model": resolved.name,
        "input_size": list(size),
        "settings": loop_settings.to_dict(),
        "preset": settings,
        "baseline": {"totals": base_cost.totals.to_dict(), **base_quality, **base_info},
        "pruned": {"totals": pruned_cost.totals.to_dict(), **pruned_quality, "mac_ratio": mac_ratio,
                   "weights_ratio": pruned_cost.totals.weights / base_cost.totals.weights,
                   "psnr_drop": base_quality["psnr"] - pruned_quality["psnr"],
                   "ssim_drop": base_quality["ssim"] - pruned_quality["ssim"],
                   "masked_psnr": state.quality["psnr"], "masked_ssim": state.quality["ssim"]},
        "control": {**control, "psnr_gap_to_pruned": control["psnr"] - pruned_quality["psnr"],
                    "ssim_gap_to_pruned": control["ssim"] - pruned_quality["ssim"]},
        "iterations": state.iterations,
        "finetune_steps": {"lineage": state.lineage_steps, "spent": state.spent_steps},
        "target_met": state.threshold.target_met,
        "groups": {n: {"size": g.size, "kept": len(result.plan.kept_units(n)), "producers": list(g.producers)}
                   for n, g in coupling.groups.items()},
        "layers": _layer_channels(trained_base, slim_model),
        "data": {"train": train_pool.description, "validation": val.description},
    }
    report["_slim_model"] = slim_model
    echo(f"pruned: MAC {mac_ratio:.3f} of the baseline, PSNR {pruned_quality['psnr']:.3f} dB "
         f"({-report['pruned']['psnr_drop']:+.3f}), control {control['psnr']:.3f} dB after {control['steps']} steps")
    return report


def _layer_channels(original, pruned) -> list[dict]:
    from edgeprune.graph.layer_table import MIXING

    out = []
    for layer in original.layers:
        if isinstance(layer, MIXING):
            out.append({"layer": layer.name, "original": int(layer.output.shape[-1]),
                        "pruned": int(pruned.get_layer(layer.name).output.shape[-1])})
    return out


def _write_outputs(out_dir: Path, report: dict, plan, work: Path) -> None:
    """All five files through a staging folder: all or nothing."""
    from edgeprune.prune.plots import channels_plot, tradeoff_plot

    slim_model = report.pop("_slim_model")
    with staged_files(out_dir, OUTPUT_FILES) as stage:
        save_model(slim_model, stage / "pruned.keras")
        plan.save(stage / "plan.json")
        write_json_atomic(stage / "report.json", report)
        channels_plot(report, stage / "channels.png")
        tradeoff_plot(report, stage / "tradeoff.png")
