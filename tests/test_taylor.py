"""Data-driven (first-order Taylor) channel importance: the score is the exact loss change of removing a channel
where the loss is linear in it, pruned channels score zero, the layout matches the magnitude rows, and the
measurement is reproducible."""

import numpy as np
import pytest

from edgeprune.core.runtime import keras
from edgeprune.graph.coupling import Coupling
from edgeprune.data.pairs import PairSet
from edgeprune.graph.model_graph import TensorRef
from edgeprune.prune.importance import normalised_unit_norms, unit_scores
from edgeprune.prune.taylor import channel_taylor, normalised, taylor_importance, taylor_rows
from keras_models import build_edsr


def _linear_model(seed=0):
    keras.utils.set_random_seed(seed)
    x = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(x)
    y = keras.layers.Conv2D(3, 3, padding="same", name="b")(a)
    return keras.Model(x, y)


def _l1(model, x, y):
    return float(np.mean(np.abs(model(x).numpy().astype(np.float64) - y)))  # float64: the changes are ~1e-6 of it


def test_the_score_is_the_loss_change_of_removing_the_channel_where_the_loss_is_linear():
    model = _linear_model()
    rng = np.random.default_rng(0)
    x = rng.random((1, 8, 8, 3), dtype=np.float32)
    y = model(x).numpy() + 100.0  # far from every output: no residual changes sign, so L1 is linear in each channel
    scores = channel_taylor(model, ["a"], [(x, y)])["a"]
    assert scores.shape == (4,) and (scores > 0).all()
    base = _l1(model, x, y)
    kernel, bias = model.get_layer("a").get_weights()
    for c in range(4):
        k, b = kernel.copy(), bias.copy()
        k[..., c], b[c] = 0, 0
        model.get_layer("a").set_weights([k, b])
        change = abs(_l1(model, x, y) - base)
        model.get_layer("a").set_weights([kernel, bias])
        # the score is per position; the loss change sums over the 8x8 positions
        np.testing.assert_allclose(scores[c] * 64, change, rtol=1e-4)


def test_scores_average_over_examples_and_a_dead_channel_scores_zero():
    model = _linear_model(1)
    kernel, bias = model.get_layer("a").get_weights()
    kernel[..., 2], bias[2] = 0, 0  # as the masks leave a pruned channel
    model.get_layer("a").set_weights([kernel, bias])
    rng = np.random.default_rng(1)
    xs = [rng.random((1, 8, 8, 3), dtype=np.float32) for _ in range(2)]
    ys = [rng.random((1, 8, 8, 3), dtype=np.float32) for _ in range(2)]
    one = [channel_taylor(model, ["a", "b"], [(x, y)]) for x, y in zip(xs, ys)]
    both = channel_taylor(model, ["a", "b"], [(np.concatenate(xs), np.concatenate(ys))])
    # a batch of two halves each example's gradient (mean loss), so compare the per-batch sums
    split = channel_taylor(model, ["a", "b"], list(zip(xs, ys)))
    for name in ("a", "b"):
        np.testing.assert_allclose(split[name], (one[0][name] + one[1][name]) / 2, rtol=1e-5)
        np.testing.assert_allclose(both[name], split[name] / 2, rtol=1e-4)
    assert split["a"][2] == 0
    np.testing.assert_allclose(normalised(split["a"])[[0, 1, 3]].mean(), 1.0)
    assert normalised(split["a"])[2] == 0 and not normalised(np.zeros(3)).any()
    with pytest.raises(ValueError, match="no batches"):
        channel_taylor(model, ["a"], [])


def _pool(count=3, size=16, seed=0):
    rng = np.random.default_rng(seed)
    hr = [rng.random((2 * size, 2 * size, 3), dtype=np.float32) for _ in range(count)]
    return PairSet([h[::2, ::2] for h in hr], hr, 2, {"kind": "random"})


def test_rows_have_the_magnitude_layout_and_the_measurement_is_reproducible():
    model = build_edsr(scale=2, num_blocks=2, num_features=8)
    coupling = Coupling(model)
    rows = taylor_importance(model, coupling, _pool(), batch_size=2, patch=8, seed=3, batches=2)
    again = taylor_importance(model, coupling, _pool(), batch_size=2, patch=8, seed=3, batches=2)
    other = taylor_importance(model, coupling, _pool(), batch_size=2, patch=8, seed=4, batches=2)
    assert set(rows) == set(coupling.groups)
    for name, group in coupling.groups.items():
        assert rows[name].shape == normalised_unit_norms(coupling, group).shape
        np.testing.assert_array_equal(rows[name], again[name])
    assert any(not np.array_equal(rows[n], other[n]) for n in rows)
    # the residual trunk has several producers: method A takes their maximum, D their mean
    trunk = max(coupling.groups, key=lambda n: len(coupling.groups[n].producers))
    assert len(coupling.groups[trunk].producers) > 1
    np.testing.assert_allclose(unit_scores(coupling, "A", rows=rows)[trunk], rows[trunk].max(axis=0))
    producers = sorted({p for g in coupling.groups.values() for p in g.producers})
    values = channel_taylor(model, producers, [(np.ones((1, 8, 8, 3), np.float32), np.zeros((1, 16, 16, 3),
                                                                                           np.float32))])
    direct = taylor_rows(coupling, values)[trunk]
    for row, producer in zip(direct, coupling.groups[trunk].producers):
        np.testing.assert_allclose(row, normalised(values[producer]))
    # the upsampler's depth-to-space group: a unit owns 4 channels, and scores their mean
    shuffle = next(n for n, g in coupling.groups.items()
                   if g.channels_per_unit(TensorRef(coupling.graph.node(g.producers[0]).id, 0)) == 4)
    producer = coupling.groups[shuffle].producers[0]
    owned = coupling.groups[shuffle].index_maps[TensorRef(coupling.graph.node(producer).id, 0)]
    rows_all = taylor_rows(coupling, values)[shuffle][0]
    for unit, channels in enumerate(owned):
        assert len(channels) == 4
        np.testing.assert_allclose(rows_all[unit], normalised(values[producer])[channels].mean())


def test_a_layer_that_does_not_reach_the_scored_output_scores_zero():
    keras.utils.set_random_seed(2)
    x = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(x)
    side = keras.layers.Conv2D(2, 3, padding="same", name="side")(x)  # feeds only the second output
    model = keras.Model(x, [keras.layers.Conv2D(3, 1, name="out")(a), side])
    rng = np.random.default_rng(2)
    scores = channel_taylor(model, ["a", "side"], [(rng.random((1, 8, 8, 3), dtype=np.float32),
                                                    rng.random((1, 8, 8, 3), dtype=np.float32))])
    assert (scores["a"] > 0).all() and not scores["side"].any()
