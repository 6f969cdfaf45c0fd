"""tfmot's unstructured magnitude pruning (prune_low_magnitude, 50% sparsity) against edgeprune's channel pruning
of the same nominal MAC reduction, both exported to fp32 TFLite: file size (raw and gzip), host latency (medians of
interleaved runs in one process) and the calibrated latency model's prediction.

Usage: python tools/tfmot_vs_edgeprune.py [--model edsr] [--input-size 256x256] [--rounds 7] [--profile P.json]
"""

import argparse
import gzip
import tempfile
from pathlib import Path

import numpy as np
import tensorflow_model_optimization as tfmot

from edgeprune.core.runtime import keras
from edgeprune.deploy.bench.host import interleaved_latency
from edgeprune.deploy.export import export_tflite
from edgeprune.graph.latency_profile import LatencyProfile
from edgeprune.deploy.latency import predict_tflite
from edgeprune.core.modelio import resolve_model
from edgeprune.prune.oneshot import one_shot_prune
from edgeprune.core.sizes import parse_input_size
from edgeprune.deploy.tflite_reader import TfliteGraph
from edgeprune.core.runtime import configure_process


def tfmot_sparse(model: keras.Model, sparsity: float) -> keras.Model:
    """tfmot's own flow: wrap, one pruning step with UpdatePruningStep so the masks are computed, strip. The convs are
    wrapped one by one (tfmot's documented way to prune some layers): its whole-model call refuses custom layers such
    as EDSR's MeanShift."""
    import keras_models

    schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=1)

    def wrap(layer):
        if isinstance(layer, keras.layers.Conv2D):
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer.__class__.from_config(layer.get_config())

    with keras.utils.custom_object_scope(keras_models.CUSTOM_OBJECTS):
        wrapped = keras.models.clone_model(model, clone_function=wrap)
    wrapped.compile(optimizer=keras.optimizers.SGD(0.0), loss="mae")  # lr 0: only the masks change
    x = np.random.default_rng(0).random((1, 16, 16, model.inputs[0].shape[-1]), dtype=np.float32)
    wrapped.fit(x, wrapped.predict(x, verbose=0), epochs=1, verbose=0,
                callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(wrapped)


def zero_fraction(model) -> float:
    kernels = [l.kernel.numpy() for l in model.layers if hasattr(l, "kernel")]
    return float(sum((k == 0).sum() for k in kernels) / sum(k.size for k in kernels))


def main() -> None:
    configure_process()  # quiet TensorFlow logs, Keras 2 for tf.keras: as the CLI does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="edsr")
    parser.add_argument("--input-size", default="256x256")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    size = parse_input_size(args.input_size)
    out = Path(tempfile.mkdtemp(prefix="tfmot_vs_edgeprune_"))
    base = resolve_model(args.model).model
    models = {"original": out / "original.tflite"}
    export_tflite(base, models["original"], size)
    sparse = tfmot_sparse(base, 0.5)
    models["tfmot 50% unstructured"] = out / "tfmot.tflite"
    export_tflite(sparse, models["tfmot 50% unstructured"], size)
    for label, ratio, multiple in (("edgeprune channels R=0.3", 0.3, 1), ("edgeprune channels R=0.5, multiple 32",
                                                                          0.5, 32)):
        one_shot_prune(args.model, ratio, out / label.replace(" ", "_"), input_size=size, channel_multiple=multiple)
        models[label] = out / (label.replace(" ", "_").replace(",", "") + ".tflite")
        export_tflite(out / label.replace(" ", "_") / "pruned.keras", models[label], size)
    timing = interleaved_latency(list(models.values()), rounds=args.rounds)
    profile = LatencyProfile.load(args.profile) if args.profile else None
    base_t = timing[str(models["original"])]["median_us"]
    print(f"{args.model}, fp32 TFLite, {args.input_size}, 1 thread, median of {args.rounds} interleaved rounds; "
          f"tfmot kernels zero: {100 * zero_fraction(sparse):.1f}%\n")
    print("| model | MAC executed | nominal MAC ratio | .tflite bytes | gzip bytes | latency (ms) | latency ratio |"
          + (" predicted (ms) |" if profile else ""))
    print("|---" * (8 if profile else 7) + "|")
    base_mac = None
    for name, path in models.items():
        graph = TfliteGraph.read(path)
        mac = sum(op.mac for op in graph.conv_ops())
        base_mac = base_mac or mac
        nominal = 0.5 if name.startswith("tfmot") else mac / base_mac
        med = timing[str(path)]["median_us"]
        row = (f"| {name} | {mac / 1e9:.2f} G | {nominal:.3f} | {path.stat().st_size:,} | "
               f"{len(gzip.compress(path.read_bytes())):,} | {med / 1e3:.1f} | {med / base_t:.3f} |")
        if profile:
            row += f" {predict_tflite(profile, graph)['total_us'] / 1e3:.1f} |"
        print(row)


if __name__ == "__main__":
    main()
