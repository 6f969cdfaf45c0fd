import numpy as np

from edgeprune.backend import keras
from edgeprune.coupling import Coupling
from edgeprune.importance import filter_norms, l1_scores


def test_filter_norms_per_output_channel():
    conv = keras.layers.Conv2D(3, 1, use_bias=False)
    conv.build((None, 4, 4, 2))
    conv.set_weights([np.array([[[[1, -2, 0], [3, 0, 0.5]]]], np.float32)])
    np.testing.assert_allclose(filter_norms(conv), [4, 2, 0.5])
    tconv = keras.layers.Conv2DTranspose(3, 1, use_bias=False)
    tconv.build((None, 4, 4, 2))
    tconv.set_weights([np.array([[[[1, -1], [2, 0], [0, 0]]]], np.float32)])  # (k, k, out, in)
    np.testing.assert_allclose(filter_norms(tconv), [2, 2, 0])


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
