"""Train a reference EDSR x2 or SID for hours, resumably, with a validation curve: the recipe behind the shipped
weights in ``keras_models/weights/``.

    .venv/bin/python tools/train_reference.py --net edsr --data PHOTOS --steps 40000 --patch 32 --out DIR
    .venv/bin/python tools/train_reference.py --net sid --steps 20000 --out DIR

``PHOTOS`` is ``tools/registry_photos.py``'s folder (EDSR); SID trains on the built-in unprocessed data (Brooks et
al.'s synthetic low-light raw). Validation is always the eight held-out scikit-image photos, as every edgeprune
figure is. The learning rate is the library's step schedule (``train.fit.learning_rate_schedule``: halved at 50%
and 75% of ``--steps``), Adam, L1 loss.

Written in ``DIR`` (a killed run continues where its last 50-step epoch ended when run again with the same
arguments; other arguments are refused):

    DIR/run.json           the arguments, the CPU, the library versions
    DIR/curve.jsonl        one line per ``--eval-every`` steps: step, PSNR, SSIM on the held-out photos, seconds
    DIR/latest.keras       the model at the last evaluation
    DIR/final.keras        the model after ``--steps`` (and final.keras.json: its validation and history)
    DIR/backup/            Keras' BackupAndRestore checkpoint (removed at the end)
    DIR/quick_recipe.json  with --ship: the quick preset's baseline (``edgeprune prune --baseline train``'s) trained
                           and validated here on the same held-out photos, for the manifest's comparison

``--ship`` (after the run is complete; the same arguments) writes ``keras_models/weights/NAME.keras`` and its manifest
``NAME.json`` (``keras_models.shipped``): the architecture and widths, the training photos with their SHA-256, the
recipe, the hours and CPU (from DIR/run.json and the curve), the library versions, the curve, and the PSNR/SSIM on
the held-out photos next to bicubic upscaling (EDSR) and the quick recipe's.

Bad input is one line on stderr and exit status 2.
"""

import argparse
import json
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path


def _cpu() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return f"{model} ({'avx512f' if ' avx512f' in flags else 'avx2' if ' avx2' in flags else 'no avx2'})"


def run(args) -> int:
    from edgeprune.core import runtime

    runtime.configure_process()
    from edgeprune.core.atomic import write_json_atomic
    from edgeprune.core.errors import EdgepruneError
    from edgeprune.core.modelio import save_model
    from edgeprune.core.runtime import keras
    from edgeprune.train.fit import fit, initialised_copy, load_data, scale_of, validate, validate_bicubic
    from edgeprune.train.presets import preset
    from keras_models import build_reference

    out = Path(args.out)
    record = {"net": args.net, "data": str(Path(args.data).resolve()) if args.data else None, "steps": args.steps,
              "patch": args.patch, "batch_size": args.batch_size, "learning_rate": args.lr, "seed": args.seed,
              "eval_every": args.eval_every, **({"init": str(Path(args.init).resolve())} if args.init else {})}
    run_file = out / "run.json"
    if run_file.exists():
        before = json.loads(run_file.read_text())
        if before.get("args") != record:
            raise EdgepruneError(f"'{out}' holds a run with other arguments ({before.get('args')}): give another "
                                 "--out or the same arguments")
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_file, {"args": record, "cpu": _cpu(), "python": platform.python_version(),
                                 "tensorflow": version("tensorflow"), "tf_keras": version("tf-keras"),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S")})

    model = build_reference(args.net)
    task = "sid" if args.net == "sid" else "edsr"
    settings = preset("quick", task).with_overrides({"steps": args.steps, "patch": args.patch,
                                                      "batch_size": args.batch_size, "learning_rate": args.lr,
                                                      "seed": args.seed})
    config = settings.train_config()
    train_pool, val = load_data(task, args.data, settings, scale_of(model))
    curve_file = out / "curve.jsonl"
    done = {json.loads(line)["step"] for line in curve_file.read_text().splitlines()} if curve_file.exists() else set()
    if not done and task == "edsr":
        bicubic = validate_bicubic(val)
        with curve_file.open("a") as f:
            f.write(json.dumps({"step": 0, "bicubic_psnr": bicubic["psnr"], "bicubic_ssim": bicubic["ssim"]}) + "\n")
        done.add(0)

    class Curve(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            step = int(self.model.optimizer.iterations.numpy())
            if step % args.eval_every or step in done:
                return
            quality = validate(self.model, val)
            save_model(self.model, out / "latest.keras")
            line = {"step": step, "psnr": quality["psnr"], "ssim": quality["ssim"],
                    "loss": float(logs.get("loss", float("nan"))) if logs else None,
                    "seconds": round(time.perf_counter() - self.started, 1),
                    "time": time.strftime("%Y-%m-%d %H:%M:%S")}
            with curve_file.open("a") as f:
                f.write(json.dumps(line) + "\n")
            done.add(step)
            print(f"step {step}: PSNR {quality['psnr']:.3f} dB, SSIM {quality['ssim']:.4f}", file=sys.stderr,
                  flush=True)

    if args.ship:
        return ship(args, out, task, settings, val)
    start = time.perf_counter()
    start_model = initialised_copy(model, config.seed)
    if args.init:  # continue from a saved model's weights, with a fresh optimizer and this run's schedule
        from edgeprune.core.modelio import load_model

        start_model.set_weights(load_model(args.init).get_weights())
    trained, history = fit(start_model, train_pool, config, workdir=out, resume=True,
                           callbacks=[Curve()], verbose=args.verbose)
    quality = validate(trained, val)
    save_model(trained, out / "final.keras")
    write_json_atomic(out / "final.keras.json", {"config": config.to_dict(), "validation": quality,
                                                 "history": history, "seconds_last_run": round(
                                                     time.perf_counter() - start, 1),
                                                 "data": {"train": train_pool.description,
                                                          "validation": val.description}})
    print(f"final: PSNR {quality['psnr']:.3f} dB, SSIM {quality['ssim']:.4f}", file=sys.stderr)
    return 0


def _training_hours(curve: list[dict]) -> float:
    """Wall hours behind the curve: each evaluation's ``seconds`` counts from its process's start, so a drop marks a
    resumed run (the steps redone after a kill are counted, as they were run)."""
    total, last = 0.0, 0.0
    for line in curve:
        seconds = line.get("seconds")
        if seconds is None:
            continue
        total += seconds - last if seconds >= last else seconds
        last = seconds
    return total / 3600


def _quick_recipe(out: Path, task: str, val) -> dict:
    """The quick preset's baseline, trained here on its default data as ``edgeprune prune --baseline train`` does,
    validated on ``val``; cached in ``DIR/quick_recipe.json``."""
    from edgeprune.core.atomic import write_json_atomic
    from edgeprune.train.fit import fit, initialised_copy, load_data, scale_of, validate
    from edgeprune.train.presets import preset
    from keras_models import build_reference

    cache = out / "quick_recipe.json"
    if cache.exists():
        return json.loads(cache.read_text())
    settings = preset("quick", task)
    model = build_reference("sid" if task == "sid" else "edsr")
    config = settings.train_config()
    pool, _ = load_data(task, None, settings, scale_of(model))
    print(f"training the quick recipe's baseline ({config.steps} steps) for the comparison", file=sys.stderr)
    start = time.perf_counter()
    trained, _ = fit(initialised_copy(model, config.seed), pool, config, verbose=0)
    quality = validate(trained, val)
    record = {"steps": config.steps, "data": pool.description, "psnr": quality["psnr"], "ssim": quality["ssim"],
              "seconds": round(time.perf_counter() - start, 1)}
    write_json_atomic(cache, record)
    return record


PACK_SIDE = 384  # the photo pack's centre crops: at most this side, a multiple of 32 (SID's packed input needs 16)


def write_photo_pack(data: Path, dest: Path) -> None:
    """``dest/train/*.jpg``: a centre crop (JPEG quality 95) of every training photo in ``data`` (registry_photos'
    folder), and ``dest/manifest.json`` naming each crop's source photo and its SHA-256: the default fine-tuning data
    when the shipped weights are pruned (``keras_models.shipped.PHOTOS_DIR``)."""
    import shutil
    import tempfile

    from PIL import Image

    from keras_models.shipped import file_sha256

    photos = json.loads((data / "manifest.json").read_text())
    stage = Path(tempfile.mkdtemp(prefix=".photos-", dir=dest.parent))
    stage.chmod(0o755)  # mkdtemp's 0700 would hide the photos from other users of an installed package
    (stage / "train").mkdir()
    crops = []
    for entry in photos["train"]:
        with Image.open(data / entry["file"]) as image:
            image = image.convert("RGB")
            w, h = image.size
            side = min(PACK_SIDE, w // 32 * 32, h // 32 * 32)
            box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
            name = f"train/{Path(entry['file']).stem}.jpg"
            image.crop(box).save(stage / name, quality=95, subsampling=0)
        crops.append({"file": name, "source": entry["file"], "package": entry["package"],
                      "version": entry["version"], "source_sha256": entry["sha256"], "box": list(box),
                      "sha256": file_sha256(stage / name)})
    (stage / "manifest.json").write_text(json.dumps({"created_by": "tools/train_reference.py --ship",
                                                     "crops": crops}, indent=1) + "\n")
    old = dest.with_name(dest.name + ".old")
    if dest.exists():
        dest.rename(old)
    stage.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def ship(args, out: Path, task: str, settings, val) -> int:
    """Writes the finished run's model and its manifest into ``keras_models/weights/`` (``keras_models.shipped``)."""
    from edgeprune.core.atomic import staged_files
    from edgeprune.core.errors import EdgepruneError
    from edgeprune.core.modelio import load_model, save_model
    from edgeprune.train.fit import validate, validate_bicubic
    from keras_models import REFERENCE_MODELS
    from keras_models.shipped import MANIFEST_FORMAT, PHOTOS_DIR, SHIPPED, WEIGHTS_DIR, file_sha256

    final = out / "final.keras"
    if not final.exists():
        raise EdgepruneError(f"'{out}' holds no finished run (no final.keras): run it to the end first, then --ship")
    curve = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    run_record = json.loads((out / "run.json").read_text())
    stages, offset, hours = [], 0, 0.0
    for spec in args.history:  # earlier runs this one continued from (--init): DIR@STEP
        folder, _, step = spec.rpartition("@")
        if not folder or not step.isdigit():
            raise EdgepruneError(f"--history takes DIR@STEP (the earlier run and the step its model was taken at), "
                                 f"got {spec!r}")
        earlier = [json.loads(line) for line in (Path(folder) / "curve.jsonl").read_text().splitlines()]
        earlier = [line for line in earlier if line.get("step", 0) <= int(step)]
        record = json.loads((Path(folder) / "run.json").read_text())
        stages.append({"args": record["args"], "until_step": int(step), "hours": round(_training_hours(earlier), 2),
                       "curve": [{"step": line["step"] + offset, "psnr": line["psnr"], "ssim": line["ssim"]}
                                 for line in earlier if "psnr" in line]})
        offset, hours = offset + int(step), hours + _training_hours(earlier)
    model = load_model(final)
    quality = validate(model, val)
    data_manifest = Path(args.data) / "manifest.json" if args.data else None
    if data_manifest is None or not data_manifest.exists():
        raise EdgepruneError("--ship needs --data's manifest.json (tools/registry_photos.py writes it) to record the "
                             "training photos")
    photos = json.loads(data_manifest.read_text())
    spec = REFERENCE_MODELS[args.net]
    widths = {layer.name: int(layer.filters) for layer in model.layers if hasattr(layer, "filters")}
    quick = _quick_recipe(out, task, val)
    compare = {"quick_recipe": quick}
    if task == "edsr":
        bicubic = validate_bicubic(val)
        compare["bicubic"] = {"psnr": bicubic["psnr"], "ssim": bicubic["ssim"]}
    config = settings.train_config()
    name = SHIPPED[args.net]
    manifest = {
        "format": MANIFEST_FORMAT, "model": args.net, "file": f"{name}.keras", "sha256": None,
        "architecture": {"reference": args.net, "description": spec.description, "builder_kwargs": spec.kwargs,
                         "parameters": int(model.count_params()), "conv_widths": widths,
                         "input_channels": int(model.inputs[0].shape[-1])},
        "data": {"source": "tools/registry_photos.py" + (" (sRGB photos unprocessed to synthetic low-light raw, "
                                                         "Brooks et al. 2019)" if task == "sid" else ""),
                 "files": [{"file": f["file"], "package": f["package"], "version": f["version"],
                            "sha256": f["sha256"]} for f in photos["train"]],
                 "validation": "the eight held-out scikit-image photos (edgeprune.data.photos.BUILTIN_PHOTOS), "
                               f"{val.description}"},
        "recipe": {"steps": config.steps, "patch": settings.patch, "batch_size": config.batch_size,
                   "learning_rate": config.learning_rate, "schedule": "Adam, L1 loss, the rate halved at 50% and 75% "
                                                                      "of the steps",
                   "clipnorm": config.clipnorm, "seed": config.seed,
                   "command": f"python tools/train_reference.py {' '.join(args.command_line)}",
                   **({"note": args.note} if args.note else {}),
                   **({"earlier_stages": stages, "total_steps": offset + config.steps} if stages else {})},
        "training": {"hours": round(hours + _training_hours(curve), 2), "cpu": run_record["cpu"],
                     "python": run_record["python"], "tensorflow": run_record["tensorflow"],
                     "tf_keras": run_record["tf_keras"], "finished": time.strftime("%Y-%m-%d", time.localtime(
                         final.stat().st_mtime))},
        "quality": {"psnr": quality["psnr"], "ssim": quality["ssim"], **compare},
        "curve": [point for stage in stages for point in stage["curve"]] +
                 [{"step": line["step"] + offset, **{k: line[k] for k in ("psnr", "ssim")}}
                  for line in curve if "psnr" in line],
    }
    WEIGHTS_DIR.mkdir(exist_ok=True)
    with staged_files(WEIGHTS_DIR, [f"{name}.keras", f"{name}.json"]) as stage:
        save_model(model, stage / f"{name}.keras")  # loaded without its optimizer: the weights alone
        manifest["sha256"] = file_sha256(stage / f"{name}.keras")
        (stage / f"{name}.json").write_text(json.dumps(manifest, indent=1) + "\n")
    write_photo_pack(Path(args.data), PHOTOS_DIR)
    print(f"wrote {WEIGHTS_DIR / name}.keras and .json: PSNR {quality['psnr']:.3f} dB, SSIM {quality['ssim']:.4f} "
          f"(quick recipe {quick['psnr']:.3f} dB)", file=sys.stderr)
    return 0


def plot_curves(png: Path) -> int:
    """PSNR on the held-out photos against training steps, one panel per shipped model, from the manifests; the
    quick recipe's baseline (and bicubic, for EDSR) as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_models.shipped import shipped_names, verified_weights

    names = shipped_names()
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 3.8))
    for ax, name in zip(axes, names):
        m = verified_weights(name).manifest
        steps = [p["step"] for p in m["curve"]]
        ax.plot(steps, [p["psnr"] for p in m["curve"]], marker="o", ms=3, label="shipped model, during training")
        quality = m["quality"]
        ax.axhline(quality["quick_recipe"]["psnr"], color="tab:orange", ls="--",
                   label=f"quick recipe ({quality['quick_recipe']['steps']} steps)")
        if "bicubic" in quality:
            ax.axhline(quality["bicubic"]["psnr"], color="grey", ls=":", label="bicubic upscaling")
        boundary = 0
        for stage in m["recipe"].get("earlier_stages", []):  # where a stage ended and the next began
            boundary += stage["until_step"]
            ax.axvline(boundary, color="k", lw=0.6, alpha=0.5)
        lows = [quality["quick_recipe"]["psnr"], quality.get("bicubic", {}).get("psnr", quality["psnr"])]
        ax.set_ylim(min(lows) - 1.0, quality["psnr"] + 0.7)
        ax.set_title(f"{m['architecture']['description'].split(';')[0]}")
        ax.set_xlabel("training step")
        ax.set_ylabel("PSNR on the 8 held-out photos (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    print(f"wrote {png}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", choices=("edsr", "sid"))
    parser.add_argument("--data", default=None, help="EDSR: tools/registry_photos.py's folder")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--patch", type=int, default=None, help="input-side patch (default: the quick preset's)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="initial learning rate (default: the quick preset's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--history", action="append", default=[], metavar="DIR@STEP",
                        help="with --ship: an earlier run whose model at STEP this run started from (--init); its "
                             "curve, arguments and hours go into the manifest (repeat for several)")
    parser.add_argument("--note", default=None, help="with --ship: a sentence for the manifest's recipe (for "
                                                     "example a schedule changed while the run was under way)")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="instead of training: plot the shipped models' curves (PSNR on the held-out photos "
                             "against steps) from their manifests")
    parser.add_argument("--init", default=None, metavar="MODEL.keras",
                        help="start from this model's weights (a fresh optimizer; the run's steps and schedule)")
    parser.add_argument("--out")
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--ship", action="store_true",
                        help="the run is complete: write its model and manifest into keras_models/weights/")
    args = parser.parse_args(argv)
    if not args.plot and None in (args.net, args.steps, args.out):
        parser.error("--net, --steps and --out are required (unless --plot)")
    given, args.command_line = list(argv if argv is not None else sys.argv[1:]), []
    while given:  # the training command alone, without what --ship adds
        arg = given.pop(0)
        if arg in ("--history", "--note"):
            given.pop(0) if given else None
        elif arg != "--ship" and not arg.startswith(("--history=", "--note=")):
            args.command_line.append(arg)
    from edgeprune.core.errors import EdgepruneError

    try:
        if args.plot:
            return plot_curves(Path(args.plot))
        return run(args)
    except EdgepruneError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
