"""edgeprune/layers.py: the role table and weight slicing for every prunable layer type."""

import numpy as np
import pytest

from edgeprune.runtime import keras
from edgeprune.graph.layer_table import resized_config, role_of, slice_weights
from keras_models import DepthToSpace, MeanShift

L = keras.layers


def built(layer, input_shape):
    layer.build((None, *input_shape))
    for w in layer.weights:
        w.assign(np.random.rand(*w.shape))
    return layer


@pytest.mark.parametrize("layer, kind", [
    (L.Conv2D(2, 3), "mixing"), (L.Conv2DTranspose(2, 2), "mixing"), (L.SeparableConv2D(2, 3), "mixing"),
    (L.Dense(3), "mixing"), (L.DepthwiseConv2D(3), "depthwise"), (L.BatchNormalization(), "preserving"),
    (L.LeakyReLU(), "preserving"), (L.MaxPooling2D(), "preserving"), (L.Add(), "merge"), (L.Multiply(), "merge"),
    (L.Concatenate(), "concat"), (DepthToSpace(2), "depth_to_space"), (L.Reshape((1, 1, 4)), "reshape"),
    (L.Activation("relu"), "preserving"), (MeanShift([0.1]), "preserving"),
])
def test_roles(layer, kind):
    assert role_of(layer).kind == kind


@pytest.mark.parametrize("layer, reason", [
    (L.Conv2D(4, 3, groups=2, name="g"), "Conv2D 'g' is a grouped convolution (groups=2)"),
    (L.Activation("softmax", name="sm"), "Activation 'sm' (softmax) mixes channels"),
    (L.LayerNormalization(name="ln"), "edgeprune cannot reason about channels of LayerNormalization 'ln'"),
    (L.Conv2D(4, 3, data_format="channels_first", name="cf"), "Conv2D 'cf' is channels_first"),
])
def test_frozen_roles_say_why(layer, reason):
    role = role_of(layer)
    assert (role.kind, role.reason) == ("frozen", reason)


KEEP_IN, KEEP_OUT = np.array([0, 2]), np.array([1, 3, 4])


def test_slice_conv_and_dense():
    conv = built(L.Conv2D(5, 3), (8, 8, 3))
    k, b = slice_weights(conv, conv.get_weights(), KEEP_IN, KEEP_OUT)
    np.testing.assert_array_equal(k, conv.kernel.numpy()[:, :, [0, 2]][..., [1, 3, 4]])
    np.testing.assert_array_equal(b, conv.bias.numpy()[[1, 3, 4]])
    dense = built(L.Dense(5), (3,))
    k, b = slice_weights(dense, dense.get_weights(), KEEP_IN, KEEP_OUT)
    assert k.shape == (2, 3) and k[1, 2] == dense.kernel.numpy()[2, 4]


def test_slice_transposed_kernel_is_out_in():
    layer = built(L.Conv2DTranspose(5, 2, strides=2), (4, 4, 3))
    k, b = slice_weights(layer, layer.get_weights(), KEEP_IN, KEEP_OUT)
    assert k.shape == (2, 2, 3, 2)
    np.testing.assert_array_equal(k, layer.kernel.numpy()[:, :, [1, 3, 4]][..., [0, 2]])


def test_slice_depthwise_and_separable():
    dw = built(L.DepthwiseConv2D(3, depth_multiplier=2), (6, 6, 3))
    keep_out = np.array([0, 1, 4, 5])  # input channels 0 and 2, multiplier 2
    k, b = slice_weights(dw, dw.get_weights(), KEEP_IN, keep_out)
    np.testing.assert_array_equal(k, dw.depthwise_kernel.numpy()[:, :, [0, 2], :])
    np.testing.assert_array_equal(b, dw.bias.numpy()[keep_out])
    sep = built(L.SeparableConv2D(5, 3, depth_multiplier=2), (6, 6, 3))
    d, p, b = slice_weights(sep, sep.get_weights(), KEEP_IN, KEEP_OUT)
    np.testing.assert_array_equal(d, sep.depthwise_kernel.numpy()[:, :, [0, 2], :])
    np.testing.assert_array_equal(p, sep.pointwise_kernel.numpy()[:, :, [0, 1, 4, 5]][..., [1, 3, 4]])
    assert b.shape == (3,)


def test_slice_batchnorm_statistics():
    bn = built(L.BatchNormalization(), (4, 4, 5))
    sliced = slice_weights(bn, bn.get_weights(), KEEP_OUT, KEEP_OUT)
    for full, part in zip(bn.get_weights(), sliced):
        np.testing.assert_array_equal(part, full[[1, 3, 4]])


def test_resized_config():
    assert resized_config(L.Conv2D(8, 3), {"filters": 8}, [0, 1])["filters"] == 2
    assert resized_config(L.Dense(8), {"units": 8}, [0, 1, 2])["units"] == 3
    assert resized_config(L.Reshape((1, 1, 8)), {"target_shape": (1, 1, 8)}, [0])["target_shape"] == (1, 1, 1)
    assert resized_config(MeanShift([1, 2, 3]), {"rgb_mean": [1, 2, 3]}, [0, 2])["rgb_mean"] == [1, 3]
