"""Prune inside a multi-worker ``fit`` (``tf.distribute.MultiWorkerMirroredStrategy``): every worker runs this
script with its ``TF_CONFIG``; every worker ends with the same masks and weights, and the chief alone writes.

    python examples/multi_worker.py --launch 2 --out DIR [--blocks 16 --features 64 ...]

``--launch N`` starts N workers of this script on 127.0.0.1 (free ports, one ``TF_CONFIG`` each) and waits for
them; on a cluster, start one worker per host with the cluster's ``TF_CONFIG`` instead. ``--digest-dir D``: each
worker also writes D/worker-INDEX.json, a digest of its final masks and weights (to compare the workers).
"""

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def launch(count: int, argv: list[str]) -> int:
    workers = [f"127.0.0.1:{p}" for p in _free_ports(count)]
    processes = []
    for index in range(count):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                                      "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen([sys.executable, __file__, *argv], env=env))
    codes = [p.wait() for p in processes]
    return max(codes, key=abs)


def worker(args) -> None:
    import tensorflow as tf
    import tf_keras as keras

    import common
    import edgeprune
    from keras_models import build_edsr

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    data = common.dataset(args.patch, args.batch, seed=index).with_options(options)
    val = common.validation_pairs()
    with strategy.scope():
        model = build_edsr(scale=common.SCALE, num_blocks=args.blocks, num_features=args.features)
        model.compile(keras.optimizers.Adam(1e-3), loss=common.l1_and_gradient_loss)
    model.fit(data, epochs=1, steps_per_epoch=args.pretrain, verbose=0)
    with strategy.scope():
        pruner = edgeprune.Pruner(model, edgeprune.PruneConfig(target_mac=args.target_mac,
                                                               finetune_steps=args.steps_per_check,
                                                               max_iterations=args.max_iterations))
        pruner.model.compile(keras.optimizers.Adam(2.5e-4), loss=common.l1_and_gradient_loss)
    gate = edgeprune.QualityGatedPruning(pruner, val, backup_dir=args.out / "backup")
    pruner.model.fit(data, epochs=args.max_iterations, steps_per_epoch=args.steps_per_check, callbacks=[gate],
                     verbose=0)
    slim = pruner.slim()
    if strategy.extended.should_checkpoint:  # the chief alone writes the outputs
        edgeprune.save_model(slim, args.out / "slim.keras")
        pruner.plan.save(args.out / "plan.json")
    if args.digest_dir:
        digest = hashlib.sha256()
        for w in pruner.strip().get_weights():
            digest.update(w.tobytes())
        args.digest_dir.mkdir(parents=True, exist_ok=True)
        (args.digest_dir / f"worker-{index}.json").write_text(json.dumps({
            "weights_sha256": digest.hexdigest(), "keep": pruner.plan.keep, "mac": pruner.state.mac,
            "decisions": [r["accepted"] for r in pruner.state.iterations],
            "replicas": strategy.num_replicas_in_sync, "chief": bool(strategy.extended.should_checkpoint)}))


def main(argv=None) -> int:
    import common

    parser = common.arguments(__doc__)
    parser.add_argument("--launch", type=int, default=0, help="start this many local workers and wait for them")
    parser.add_argument("--digest-dir", type=Path, default=None)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.launch:
        rest = [a for i, a in enumerate(argv) if a != "--launch" and (i == 0 or argv[i - 1] != "--launch")]
        return launch(args.launch, rest)
    worker(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
