"""How well does the calibrated latency model predict whole models? EDSR and SID (random weights): the original and
two one-shot pruned variants each, exported to fp32 TFLite, predicted with a profile and measured on the host
(medians of interleaved runs in one process).

Usage: python tools/latency_model_check.py --profile PROFILE.json [--input-size 128x128] [--ratios 0.25,0.5]
                                          [--rounds 7] [--threads 1] [--channel-multiple 1] [--out DIR]

The models are exported in the profile's dtype (fp32, or int8: full integer, calibrated on uniform noise, which
does not change a model's time).
"""

import argparse
import tempfile
from pathlib import Path

from edgeprune.deploy.bench.host import interleaved_latency
from edgeprune.core.modelio import resolve_model
from edgeprune.deploy.export import convert, export_tflite, fixed_shape_model, random_samples
from edgeprune.graph.latency_profile import LatencyProfile
from edgeprune.deploy.latency import predict_tflite
from edgeprune.prune.oneshot import one_shot_prune
from edgeprune.core.sizes import parse_input_size
from edgeprune.deploy.tflite_reader import TfliteGraph
from edgeprune.core.runtime import configure_process


def main() -> None:
    configure_process()  # quiet TensorFlow logs, Keras 2 for tf.keras: as the CLI does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--input-size", default="128x128")
    parser.add_argument("--ratios", default="0.25,0.5")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--channel-multiple", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    size = parse_input_size(args.input_size)
    profile = LatencyProfile.load(args.profile)
    out = Path(args.out or tempfile.mkdtemp(prefix="latency_check_"))
    out.mkdir(parents=True, exist_ok=True)
    variants = {}
    def export(model, path):
        if profile.dtype == "fp32":
            export_tflite(model, path, size)
        else:  # timing does not depend on the values: calibrate the int8 export on noise
            fixed = fixed_shape_model(resolve_model(model).model, size)
            path.write_bytes(convert(fixed, "int8", random_samples(fixed)))

    for model in ("edsr", "sid"):
        path = out / f"{model}_original.tflite"
        export(model, path)
        variants[f"{model} original"] = path
        for ratio in [float(r) for r in args.ratios.split(",")]:
            one_shot_prune(model, ratio, out / f"{model}_r{ratio}", input_size=size,
                           channel_multiple=args.channel_multiple)
            path = out / f"{model}_r{ratio}.tflite"
            export(out / f"{model}_r{ratio}" / "pruned.keras", path)
            variants[f"{model} R={ratio}"] = path
    measured = interleaved_latency(list(variants.values()), args.threads, rounds=args.rounds)
    print(f"{profile.dtype}, input {args.input_size}, {args.threads} thread(s), profile {args.profile} (output-channel tiles "
          f"{profile.small_channel_tile}/{profile.channel_tile}); measured = median of {args.rounds} interleaved rounds\n")
    print("| model | conv MAC | predicted (ms) | measured (ms) | error |")
    print("|---|---|---|---|---|")
    for name, path in variants.items():
        graph = TfliteGraph.read(path)
        mac = sum(op.mac for op in graph.conv_ops())
        pred = predict_tflite(profile, graph)["total_us"]
        meas = measured[str(path)]["median_us"]
        print(f"| {name} | {mac / 1e9:.2f} G | {pred / 1e3:.1f} | {meas / 1e3:.1f} | {100 * (pred / meas - 1):+.1f}% |")


if __name__ == "__main__":
    main()
