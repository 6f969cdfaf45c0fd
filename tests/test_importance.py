import numpy as np

from edgeprune.core.runtime import keras
from edgeprune.graph.coupling import Coupling
from edgeprune.prune.importance import filter_norms, l1_scores


def test_filter_norms_per_output_channel():
    conv = keras.layers.Conv2D(3, 1, use_bias=False)
    conv.build((None, 4, 4, 2))
    conv.set_weights([np.array([[[[1, -2, 0], [3, 0, 0.5]]]], np.float32)])
    np.testing.assert_allclose(filter_norms(conv), [4, 2, 0.5])
    tconv = keras.layers.Conv2DTranspose(3, 1, use_bias=False)
    tconv.build((None, 4, 4, 2))
    tconv.set_weights([np.array([[[[1, -1], [2, 0], [0, 0]]]], np.float32)])  # (k, k, out, in)
    np.testing.assert_allclose(filter_norms(tconv), [2, 2, 0])


def test_filter_norms_of_separable_and_dense_read_the_weight_the_layer_table_names():
    sep = keras.layers.SeparableConv2D(3, 1, use_bias=False)
    sep.build((None, 4, 4, 2))
    pointwise = np.array([[[[1, 0, 2], [0, -1, 2]]]], np.float32)  # (1, 1, in * multiplier, out)
    sep.set_weights([np.full((1, 1, 2, 1), 9, np.float32), pointwise])
    np.testing.assert_allclose(filter_norms(sep), [1, 1, 4])
    np.testing.assert_allclose(filter_norms(sep, ord=2), [1, 1, np.sqrt(8)])
    dense = keras.layers.Dense(2, use_bias=False)
    dense.build((None, 3))
    dense.set_weights([np.array([[1, 0], [-2, 0], [0, 3]], np.float32)])
    np.testing.assert_allclose(filter_norms(dense), [3, 3])


def test_group_scores_sum_per_layer_normalised_norms():
    inputs = keras.Input((4, 4, 2))
    a = keras.layers.Conv2D(2, 1, use_bias=False, name="a")(inputs)
    b = keras.layers.Conv2D(2, 1, use_bias=False, name="b")(a)
    out = keras.layers.Conv2D(1, 1, name="out")(keras.layers.Add(name="add")([a, b]))
    model = keras.Model(inputs, out)
    model.get_layer("a").set_weights([np.array([[[[1, 3], [0, 0]]]], np.float32)])   # norms 1, 3 -> 0.5, 1.5
    model.get_layer("b").set_weights([np.array([[[[100, 0], [0, 300]]]], np.float32)])  # 100, 300 -> 0.5, 1.5
    coupling = Coupling(model)
    np.testing.assert_allclose(l1_scores(coupling, coupling.groups["a"]), [1.0, 3.0])


def _trunk_model():
    """x -> a; a + b(a) -> out: a and b are coupled producers of one group."""
    inputs = keras.Input((8, 8, 2))
    a = keras.layers.Conv2D(4, 1, use_bias=False, name="a")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="b")(a)
    out = keras.layers.Conv2D(2, 1, name="out")(keras.layers.Add(name="add")([a, b]))
    model = keras.Model(inputs, out)
    ka = np.zeros((1, 1, 2, 4), np.float32)
    ka[0, 0, 0] = [4, 1, 1, 2]  # a's norms: 4 1 1 2 (mean 2) -> 2 .5 .5 1
    model.get_layer("a").set_weights([ka])
    kb = np.zeros((3, 3, 4, 4), np.float32)
    kb[1, 1, 0] = [1, 1, 3, 3]  # b's norms: 1 1 3 3 (mean 2) -> .5 .5 1.5 1.5
    model.get_layer("b").set_weights([kb])
    return model


def test_methods_score_coupled_groups_by_max_or_balanced_mean():
    from edgeprune.prune.importance import keep_for_threshold, unit_scores

    coupling = Coupling(_trunk_model())
    a = unit_scores(coupling, "A")["a"]
    d_unscaled = unit_scores(coupling, "D", {"a": 1.0})["a"]
    np.testing.assert_allclose(a, [2.0, 0.5, 1.5, 1.5])  # max over the two producers
    np.testing.assert_allclose(d_unscaled, [1.25, 0.5, 1.0, 1.25])  # their mean
    assert keep_for_threshold({"a": a}, 1.2, keep_depth=False) == {"a": [0, 2, 3]}
    assert keep_for_threshold({"a": d_unscaled}, 1.2, keep_depth=False) == {"a": [0, 3]}
    assert keep_for_threshold({"a": a}, 9.0, keep_depth=False) == {"a": [0]}  # never zero units
    assert keep_for_threshold({"a": a}, 9.0, keep_depth=True, depth_floor=0.5) == {"a": [0, 2]}


def test_mac_per_unit_and_mac_efficiency():
    from edgeprune.graph.cost import model_cost
    from edgeprune.prune.importance import mac_per_unit, unit_scores

    model = _trunk_model()
    coupling = Coupling(model)
    macs = mac_per_unit(coupling, model_cost(model, (8, 8)))
    # one unit of the group: a's output channel (1*1*2*64), b's output (9*4*64) and input (9*4*64), out's input (2*64)
    assert macs["a"] == 2 * 64 + 9 * 4 * 64 + 9 * 4 * 64 + 1 * 2 * 64
    c = unit_scores(coupling, "C", macs)["a"]
    np.testing.assert_allclose(c, unit_scores(coupling, "A")["a"])  # one group: relative MAC is 1
