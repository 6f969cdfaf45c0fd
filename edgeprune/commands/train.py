"""``edgeprune train``: train a reference model from reproducible initial weights, or continue a saved one, on a
data folder or the built-in data, and save it with a report."""

import shutil
import time
from pathlib import Path

from edgeprune.core.atomic import write_json_atomic
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.core.modelio import resolve_model, save_model
from edgeprune.train.fit import fit, initialised_copy, load_data, scale_of, task_of, validate
from edgeprune.train.presets import preset


def train_command(model, out, data=None, preset_name: str = "quick", steps=None, batch_size=None, patch=None,
                  resume: bool = False, verbose: int = 1, seed: int | None = None) -> dict:
    """Trains ``model`` (reference name or .keras) and saves it to ``out`` (.keras) with a report ``out.json``
    (validation PSNR/SSIM, data, configuration); returns the report. ``steps``, ``batch_size`` and ``patch``
    replace the preset's (None keeps it; an explicit 0 is an error, not "use the default"); ``seed`` (default 0)
    draws the initial weights and the training patches."""
    from keras_models import REFERENCE_MODELS

    out = Path(out)
    if out.suffix.lower() != ".keras":
        raise InvalidArgumentError(f"output '{out}' must end in .keras")
    resolved = resolve_model(model)
    task = task_of(resolved.model)
    settings = preset(preset_name, task).with_overrides({"steps": steps, "batch_size": batch_size, "patch": patch,
                                                         "seed": seed})
    config = settings.train_config()
    config.validate()
    train_pool, val = load_data(task, data, settings, scale_of(resolved.model))
    workdir = out.parent / f".{out.name}.work"
    start = time.perf_counter()
    # a reference name starts from reproducible initial weights; a given .keras model goes on from its own
    start_from = initialised_copy(resolved.model, config.seed) if str(model) in REFERENCE_MODELS else resolved.model
    trained, history = fit(start_from, train_pool, config, workdir=workdir, resume=resume, verbose=verbose)
    seconds = time.perf_counter() - start
    quality = validate(trained, val)
    save_model(trained, out)
    report = {"model": resolved.name, "task": task, "preset": preset_name, "config": config.to_dict(),
              "train_seconds": round(seconds, 1), "history": history, "validation": quality,
              "data": {"train": train_pool.description, "validation": val.description}}
    write_json_atomic(Path(str(out) + ".json"), report)
    shutil.rmtree(workdir, ignore_errors=True)
    return report


def train(model, out, data=None, preset_name: str = "quick", steps=None, batch_size=None, patch=None,
          resume: bool = False, seed: int | None = None) -> str:
    """What ``edgeprune train`` prints: :func:`train_command`, then its summary."""
    from edgeprune.commands.render import train_summary

    return train_summary(train_command(model, out, data, preset_name, steps, batch_size, patch, resume,
                                       seed=seed), out)
