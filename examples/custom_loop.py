"""Prune EDSR in a custom training loop (no ``fit``): the same gate, driven by hand.

    python examples/custom_loop.py --out DIR [--blocks 16 --features 64] [--target-mac 0.7]

``gate.attach(model, optimizer)`` starts the loop (measures the unpruned model, imposes the first masks); call
``gate.step()`` after every training step: it judges and proposes every ``--steps-per-check`` steps and returns True
when pruning is done; ``gate.finish()`` leaves the model at the last accepted state.
"""

import json

import tensorflow as tf
import tf_keras as keras

import common
import edgeprune
from keras_models import build_edsr


def main(argv=None) -> dict:
    parser = common.arguments(__doc__)
    args = parser.parse_args(argv)

    data = common.dataset(args.patch, args.batch)
    model = build_edsr(scale=common.SCALE, num_blocks=args.blocks, num_features=args.features)

    def trainer(net, optimizer):
        @tf.function
        def train_step(x, y):
            with tf.GradientTape() as tape:
                loss = common.l1_and_gradient_loss(y, net(x, training=True))
            optimizer.apply_gradients(zip(tape.gradient(loss, net.trainable_variables), net.trainable_variables))
            return loss
        return train_step

    pretrain = trainer(model, keras.optimizers.Adam(1e-3))
    for _, (x, y) in zip(range(args.pretrain), data):  # your trained model goes here
        pretrain(x, y)

    pruner = edgeprune.Pruner(model, edgeprune.PruneConfig(target_mac=args.target_mac,
                                                           finetune_steps=args.steps_per_check,
                                                           max_iterations=args.max_iterations))
    optimizer = keras.optimizers.Adam(2.5e-4)
    train_step = trainer(pruner.model, optimizer)
    gate = edgeprune.QualityGatedPruning(pruner, common.validation_pairs())
    gate.attach(pruner.model, optimizer)
    steps = 0
    for x, y in data:
        train_step(x, y)
        steps += 1
        if gate.step():
            break
    gate.finish()

    slim = pruner.slim()
    args.out.mkdir(parents=True, exist_ok=True)
    edgeprune.save_model(slim, args.out / "slim.keras")
    pruner.plan.save(args.out / "plan.json")
    summary = {"steps": steps, "mac_ratio": pruner.state.mac, "quality": pruner.state.quality,
               "baseline": pruner.state.baseline, "decisions": [r["accepted"] for r in pruner.state.iterations]}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
