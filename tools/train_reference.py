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
              "eval_every": args.eval_every}
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

    start = time.perf_counter()
    trained, history = fit(initialised_copy(model, config.seed), train_pool, config, workdir=out, resume=True,
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", choices=("edsr", "sid"), required=True)
    parser.add_argument("--data", default=None, help="EDSR: tools/registry_photos.py's folder")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--patch", type=int, default=None, help="input-side patch (default: the quick preset's)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="initial learning rate (default: the quick preset's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--out", required=True)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)
    from edgeprune.core.errors import EdgepruneError

    try:
        return run(args)
    except EdgepruneError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
