"""Does removing channels buy the latency the MAC count promises? A reference model (random weights) pruned
one-shot, exported to fp32 TFLite at a fixed input size and timed on the host with LiteRT/XNNPACK, all models
interleaved in one process; optionally with the calibrated latency model's prediction beside each.

Usage: python tools/latency_vs_mac.py [--model edsr] [--variants 0.2:1,0.22:1,0.5:32] [--input-size 256x256]
                                      [--threads 1] [--rounds 7] [--profile PROFILE.json] [--out DIR]
A variant R:M prunes a fraction R of every group, rounding kept widths to a multiple of M; a variant conv1:K:W
(EDSR) keeps the trunk whole and prunes the first convs of the first K residual blocks to W channels (lowest L1
norm removed): a hardware-aligned plan near a chosen MAC ratio.
Prints a Markdown table for BENCHMARKS.md (medians).
"""

import argparse
import tempfile
from pathlib import Path

from edgeprune.deploy.bench.host import interleaved_latency
from edgeprune.graph.coupling import Coupling
from edgeprune.prune.importance import l1_scores
from edgeprune.core.modelio import resolve_model
from edgeprune.prune.plan import PruningPlan
from edgeprune.prune.surgery import slim_file
from edgeprune.deploy.export import export_tflite
from edgeprune.graph.latency_profile import LatencyProfile
from edgeprune.deploy.latency import predict_tflite
from edgeprune.prune.oneshot import one_shot_prune
from edgeprune.core.sizes import parse_input_size
from edgeprune.deploy.tflite_reader import TfliteGraph
from edgeprune.core.runtime import configure_process


def main() -> None:
    configure_process()  # quiet TensorFlow logs, Keras 2 for tf.keras: as the CLI does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="edsr")
    parser.add_argument("--variants", default="0.2:1,0.22:1,0.25:16,0.5:32,conv1:14:32")
    parser.add_argument("--input-size", default="256x256")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--out", default=None, help="keep the models here (default: a temporary folder)")
    args = parser.parse_args()
    size = parse_input_size(args.input_size)
    profile = LatencyProfile.load(args.profile) if args.profile else None
    out = Path(args.out or tempfile.mkdtemp(prefix="latency_vs_mac_"))
    original = out / "original.tflite"
    export_tflite(args.model, original, size)
    models, widths = {"original": original}, {"original": "full"}
    for spec in args.variants.split(","):
        if spec.startswith("conv1:"):
            _, blocks, width = spec.split(":")
            name = f"conv1 of {blocks} blocks -> {width}"
            model = resolve_model(args.model).model
            coupling = Coupling(model)
            plan = PruningPlan.keep_all(coupling, args.model)
            for i in range(int(blocks)):
                group = coupling.groups[f"block{i:02d}_conv1"]
                keep = sorted(l1_scores(coupling, group).argsort()[::-1][: int(width)].tolist())
                plan.keep[group.name] = keep
            plan_path = plan.save(out / f"conv1_{blocks}_{width}.json")
            keras_path = out / f"conv1_{blocks}_{width}.keras"
            slim_file(model, plan_path, keras_path, size)
            path = out / f"conv1_{blocks}_{width}.tflite"
            export_tflite(keras_path, path, size)
            models[name] = path
            widths[name] = f"trunk 64, conv1 {width} x{blocks}"
            continue
        ratio, multiple = spec.split(":")
        name = f"R={ratio}, multiple {multiple}"
        folder = out / f"r{ratio}_m{multiple}"
        report = one_shot_prune(args.model, float(ratio), folder, input_size=size, channel_multiple=int(multiple))
        path = out / f"r{ratio}_m{multiple}.tflite"
        export_tflite(folder / "pruned.keras", path, size)
        models[name] = path
        widths[name] = ", ".join(sorted({str(g["kept"]) for g in report["groups"].values()}, key=int))
    timing = interleaved_latency(list(models.values()), num_threads=args.threads, rounds=args.rounds)
    macs = {n: sum(op.mac for op in TfliteGraph.read(p).conv_ops()) for n, p in models.items()}
    base = timing[str(original)]["median_us"]
    pred = {n: predict_tflite(profile, TfliteGraph.read(p))["total_us"] for n, p in models.items()} if profile else {}
    print(f"{args.model}, fp32, {args.input_size}, {args.threads} thread(s), median of {args.rounds} interleaved "
          "rounds (LiteRT/XNNPACK on the host)\n")
    head = "| model | kept widths | MAC | MAC ratio | median latency (ms) | latency ratio | latency - MAC ratio |"
    print(head + (" predicted ratio |" if profile else ""))
    print("|---" * (8 if profile else 7) + "|")
    for name, path in models.items():
        med = timing[str(path)]["median_us"]
        mac_ratio = macs[name] / macs["original"]
        row = (f"| {name} | {widths[name]} | {macs[name] / 1e9:.2f} G | {mac_ratio:.3f} | {med / 1e3:.1f} | "
               f"{med / base:.3f} | {med / base - mac_ratio:+.3f} |")
        if profile:
            row += f" {pred[name] / pred['original']:.3f} |"
        print(row)


if __name__ == "__main__":
    main()
