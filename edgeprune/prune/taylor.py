"""Data-driven channel importance: the first-order Taylor estimate of how much the training loss changes when a
channel is removed (Molchanov et al., "Pruning Convolutional Neural Networks for Resource Efficient Inference",
ICLR 2017).

Removing output channel ``c`` of a layer sets its activation ``a_c`` to zero, which changes the loss by about
``-sum(a_c * dL/da_c)`` over the channel's positions. Per channel the score is the mean over training examples of
``|mean over positions of a_c * dL/da_c|``, with the training loss (L1). It is measured on training patches, never
on the validation images the quality gate uses.

Why it exists next to filter magnitudes (:mod:`edgeprune.prune.importance`): in a briefly trained network the filter
norms mostly reflect the random initialisation; on the quick SID baseline, masking to MAC 0.8 by this score keeps
far more quality than by magnitude (BENCHMARKS.md, "Figures behind the library's defaults").

Per layer, the scores are divided by their mean over the layer's live channels (non-zero score: a pruned channel's
activation is exactly zero), so layers compare on a common scale, as the magnitudes are.
"""

import numpy as np

from edgeprune.core.runtime import keras, tf
from edgeprune.graph.coupling import Coupling
from edgeprune.data.pairs import PairSet, random_crops
from edgeprune.graph.model_graph import TensorRef

BATCHES = 16  # batches of training patches the scores are averaged over


def channel_taylor(model: keras.Model, layer_names, batches) -> dict[str, np.ndarray]:
    """Per named layer of ``model`` (single-output layers of a functional model), per output channel: the mean over
    the examples of ``batches`` ((input, target) arrays) of ``|mean over positions of a * dL/da|``, where ``a`` is
    the layer's output and ``L`` the mean absolute error of the model's (first) output over the batch, so the
    absolute scale shrinks with the batch size; only the ratios within a layer are used."""
    names = list(layer_names)
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names] + [model.outputs[0]])

    @tf.function  # traced once per batch shape: eager, the quick SID model's 16 batches took 14 s, traced 6 s
    def per_example_sums(x, y):
        with tf.GradientTape() as tape:
            outputs = probe(x, training=False)
            loss = tf.reduce_mean(tf.abs(outputs[-1] - y))
        # a layer that does not reach the first output (another head) does not change this loss: score 0
        grads = tape.gradient(loss, outputs[:-1], unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return [tf.reduce_sum(tf.abs(tf.reduce_mean(a * g, axis=tuple(range(1, len(a.shape) - 1)))), axis=0)
                for a, g in zip(outputs[:-1], grads)]

    sums = {n: 0.0 for n in names}
    examples = 0
    for x, y in batches:
        x, y = tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(y, tf.float32)
        for name, total in zip(names, per_example_sums(x, y)):
            sums[name] = sums[name] + total.numpy()
        examples += int(x.shape[0])
    if not examples:
        raise ValueError("no batches to measure channel importance on")
    return {n: np.asarray(s, np.float64) / examples for n, s in sums.items()}


def normalised(values: np.ndarray) -> np.ndarray:
    """``values`` over their mean among the non-zero ones (all zeros stay zeros)."""
    live = values[values > 0]
    return values / live.mean() if live.size else np.zeros_like(values)


def taylor_rows(coupling: Coupling, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per group, (producers x units): each producer's normalised channel scores of the group's units (the mean over
    a unit's channels), the same layout as :func:`edgeprune.prune.importance.normalised_unit_norms`."""
    rows = {}
    for name, group in coupling.groups.items():
        per_producer = []
        for producer in group.producers:
            ref = TensorRef(coupling.graph.node(producer).id, 0)
            per_producer.append(normalised(values[producer])[group.index_maps[ref]].mean(axis=1))
        rows[name] = np.array(per_producer)
    return rows


def taylor_importance(model: keras.Model, coupling: Coupling, pool: PairSet, batch_size: int, patch: int,
                      seed: int = 0, batches: int = BATCHES) -> dict[str, np.ndarray]:
    """:func:`taylor_rows` of ``model`` (the model ``coupling`` was built on), measured on ``batches`` random
    batches of training patches drawn reproducibly from ``seed``."""
    rng = np.random.default_rng(seed)
    producers = sorted({p for g in coupling.groups.values() for p in g.producers})
    data = (random_crops(pool, patch, batch_size, rng) for _ in range(batches))
    return taylor_rows(coupling, channel_taylor(model, producers, data))
