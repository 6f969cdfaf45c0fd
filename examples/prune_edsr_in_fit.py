"""Prune EDSR inside your own ``model.fit``: your loss, your tf.data pipeline, edgeprune's callback.

    python examples/prune_edsr_in_fit.py --out DIR [--blocks 16 --features 64] [--target-mac 0.7]
                                         [--steps-per-check 100] [--cpu-devices N]

Trains a briefly pre-trained EDSR x2 (``--pretrain`` steps; use your trained model instead), prunes it with the
paper's quality-gated loop inside ``fit`` (every ``--steps-per-check`` steps the gate judges PSNR/SSIM on held-out
photos), then writes the physically slim model, its plan and a verified TFLite export to DIR. ``--cpu-devices N``
trains under ``tf.distribute.MirroredStrategy`` over N logical CPU devices, as it would over N GPUs.
"""

import json

import tensorflow as tf
import tf_keras as keras

import common
import edgeprune
from keras_models import build_edsr


def main(argv=None) -> dict:
    parser = common.arguments(__doc__)
    parser.add_argument("--cpu-devices", type=int, default=1)
    args = parser.parse_args(argv)

    if args.cpu_devices > 1:  # before TensorFlow starts: N logical devices stand in for N GPUs
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpu_devices)
        strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    else:
        strategy = tf.distribute.get_strategy()
    data = common.dataset(args.patch, args.batch)
    val = common.validation_pairs()

    with strategy.scope():
        model = build_edsr(scale=common.SCALE, num_blocks=args.blocks, num_features=args.features)
        model.compile(keras.optimizers.Adam(1e-3), loss=common.l1_and_gradient_loss)
    model.fit(data, epochs=1, steps_per_epoch=args.pretrain, verbose=0)  # your trained model goes here

    config = edgeprune.PruneConfig(target_mac=args.target_mac, finetune_steps=args.steps_per_check,
                                   max_iterations=args.max_iterations)
    with strategy.scope():
        pruner = edgeprune.Pruner(model, config)
        pruned = pruner.model  # tfmot-wrapped, with the accepted channel masks
        pruned.compile(keras.optimizers.Adam(2.5e-4), loss=common.l1_and_gradient_loss)
    gate = edgeprune.QualityGatedPruning(pruner, val, progress=lambda r: print(
        f"iteration {r['iteration']}: MAC {r['mac']:.3f}, PSNR {r['psnr']:.2f} dB, "
        f"{'accepted' if r['accepted'] else 'rolled back'}", flush=True))
    pruned.fit(data, epochs=args.max_iterations, steps_per_epoch=args.steps_per_check, callbacks=[gate], verbose=0)

    slim = pruner.slim()
    args.out.mkdir(parents=True, exist_ok=True)
    edgeprune.save_model(slim, args.out / "slim.keras")
    pruner.plan.save(args.out / "plan.json")
    export = edgeprune.export_tflite(slim, args.out / "slim.tflite", input_size=(64, 64))
    summary = {"mac_ratio": pruner.state.mac, "quality": pruner.state.quality, "baseline": pruner.state.baseline,
               "iterations": len(pruner.state.iterations), "replicas": strategy.num_replicas_in_sync,
               "tflite_verified": export["passed"]}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
