"""Hand-computed costs of tiny networks for every costed layer type, and the paper's reference figures."""

import pytest

from conftest import single_layer_model
from edgeprune.core.runtime import keras
from edgeprune.graph.cost import model_cost
from edgeprune.core.errors import InvalidArgumentError, ShapeError
from keras_models import build_edsr, build_reference, build_sid

L = keras.layers


def only(model, input_size=None, dtype="fp32"):
    report = model_cost(model, input_size, dtype)
    costed = [c for c in report.layers if c.costed]
    assert len(costed) == 1
    return costed[0]


@pytest.mark.parametrize("layer, input_shape, expect", [
    # (mac, weights, bias, act_in, act_out, output HxW)
    (L.Conv2D(8, 3, strides=2, padding="valid"), (11, 11, 4), (9 * 4 * 8 * 25, 288, 8, 484, 200, (5, 5))),
    (L.Conv2D(8, 3, strides=2, padding="same"), (11, 11, 4), (9 * 4 * 8 * 36, 288, 8, 484, 288, (6, 6))),
    (L.Conv2D(6, 3, groups=2, padding="same", use_bias=False), (8, 8, 4), (9 * 2 * 6 * 64, 108, 0, 256, 384, (8, 8))),
    (L.Conv2D(4, 3, dilation_rate=2), (10, 10, 2), (9 * 2 * 4 * 36, 72, 4, 200, 144, (6, 6))),
    (L.Conv2D(5, (1, 3), strides=(1, 2), padding="same"), (4, 9, 2), (3 * 2 * 5 * 20, 30, 5, 72, 100, (4, 5))),
    (L.Conv2DTranspose(5, 2, strides=2), (4, 6, 3), (4 * 3 * 5 * 24, 60, 5, 72, 480, (8, 12))),
    (L.Conv2DTranspose(2, 3, strides=2, padding="same"), (5, 5, 4), (9 * 4 * 2 * 25, 72, 2, 100, 200, (10, 10))),
    (L.Conv2DTranspose(2, 3, strides=1, padding="valid"), (5, 5, 4), (9 * 4 * 2 * 25, 72, 2, 100, 98, (7, 7))),
    (L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same"), (8, 8, 3),
     (9 * 3 * 2 * 16, 54, 6, 192, 96, (4, 4))),
    (L.DepthwiseConv2D(3, dilation_rate=2, use_bias=False), (9, 9, 2), (9 * 2 * 25, 18, 0, 162, 50, (5, 5))),
])
def test_conv_costs_by_hand(layer, input_shape, expect):
    mac, weights, bias, act_in, act_out, hw = expect
    c = only(single_layer_model(layer, input_shape))
    assert (c.mac, c.weights, c.bias, c.activations_in, c.activations_out) == (mac, weights, bias, act_in, act_out)
    assert c.output_shapes[0][1:3] == hw
    assert c.activations == act_in + act_out
    assert c.bw_elements == weights + act_in + act_out
    assert c.bw_bytes == 4 * c.bw_elements


def test_separable_conv_counts_depthwise_pointwise_and_its_internal_tensor():
    c = only(single_layer_model(L.SeparableConv2D(7, 3, depth_multiplier=2, padding="same"), (6, 6, 3)))
    dw, pw = 9 * 3 * 2, 3 * 2 * 7
    assert c.weights == dw + pw == 96
    assert c.mac == (dw + pw) * 36
    assert c.bias == 7
    assert c.activations_internal == 2 * 6 * 36  # the depthwise result, written once and read once
    assert c.activations == 108 + 252 + 432


def test_dense_on_vectors_and_on_feature_maps():
    c = only(single_layer_model(L.Dense(10), (20,)))
    assert (c.mac, c.weights, c.bias, c.activations_in, c.activations_out) == (200, 200, 10, 20, 10)
    c = only(single_layer_model(L.Dense(10, use_bias=False), (4, 5, 6)))
    assert (c.mac, c.weights, c.bias) == (6 * 10 * 20, 60, 0)


def test_conv1d_and_conv3d_use_the_same_rule():
    c = only(single_layer_model(L.Conv1D(4, 3), (16, 2)))
    assert (c.mac, c.weights) == (3 * 2 * 4 * 14, 24)
    c = only(single_layer_model(L.Conv3D(2, 3, padding="same"), (4, 4, 4, 3)))
    assert (c.mac, c.weights) == (27 * 3 * 2 * 64, 162)


def test_other_layers_have_zero_mac_and_count_only_in_all_layer_totals():
    inputs = keras.Input((8, 8, 4))
    x = L.Conv2D(4, 3, padding="same", name="conv")(inputs)
    y = L.BatchNormalization(name="bn")(x)
    y = L.ReLU(name="relu")(y)
    z = L.Add(name="add")([x, y])
    report = model_cost(keras.Model(inputs, z))
    bn, add = report.layer("bn"), report.layer("add")
    assert (bn.mac, bn.costed, bn.other_params, bn.activations_in, bn.activations_out) == (0, False, 16, 256, 256)
    assert (add.activations_in, add.activations_out) == (512, 256)
    t, a = report.totals, report.totals_all_layers
    assert (t.mac, t.weights, t.bias, t.activations) == (9 * 16 * 64, 144, 4, 512)
    assert t.bw_elements == 144 + 512 and t.bw_bytes == 4 * (144 + 512)
    assert a.mac == t.mac
    assert a.activations == 512 + 512 + 512 + 768
    assert a.bw_elements == 144 + 4 + 16 + a.activations


def test_bytes_per_element_follow_dtype():
    model = single_layer_model(L.Conv2D(4, 3), (6, 6, 2))
    fp32, fp16, int8 = (model_cost(model, dtype=d).totals for d in ("fp32", "fp16", "int8"))
    assert fp32.bw_elements == fp16.bw_elements == int8.bw_elements
    assert (fp32.bw_bytes, fp16.bw_bytes, int8.bw_bytes) == tuple(fp32.bw_elements * n for n in (4, 2, 1))
    with pytest.raises(InvalidArgumentError, match="dtype 'bf16' is not supported; use one of fp32, fp16, int8"):
        model_cost(model, dtype="bf16")


def test_tflite_tensor_types_take_their_bytes_from_the_one_dtype_table():
    from edgeprune.graph.cost import DTYPE_BYTES, tflite_bytes_per_element

    assert [tflite_bytes_per_element(t) for t in ("FLOAT32", "FLOAT16", "INT8", "UINT8")] == [4, 2, 1, 1]
    assert tflite_bytes_per_element("FLOAT16") == DTYPE_BYTES["fp16"]
    assert tflite_bytes_per_element("INT32") == tflite_bytes_per_element(None) == 4  # not listed: fp32's


def test_shared_layer_costs_mac_per_call_and_weights_once():
    conv = L.Conv2D(3, 3, padding="same", name="shared")
    inputs = keras.Input((5, 5, 3))
    out = conv(conv(inputs))
    report = model_cost(keras.Model(inputs, out))
    first, second = report.layer("shared"), report.layer("shared:1")
    assert first.mac == second.mac == 81 * 25
    assert (first.weights, second.weights, second.shared_with) == (81, 0, "shared")
    assert report.totals.weights == 81


def test_dynamic_model_needs_an_input_size_and_static_model_rejects_another():
    dynamic = single_layer_model(L.Conv2D(2, 3), (None, None, 3))
    with pytest.raises(ShapeError, match=r"dynamic shape .*give an input size"):
        model_cost(dynamic)
    assert model_cost(dynamic, (9, 7)).layers[0].output_shapes == ((1, 7, 5, 2),)
    static = single_layer_model(L.Conv2D(2, 3), (8, 8, 3))
    with pytest.raises(ShapeError, match="fixed size 8x8; it cannot be evaluated at 9x9"):
        model_cost(static, (9, 9))


def test_invalid_input_size_for_a_unet_names_the_layer():
    model = build_sid(features=(2, 2, 2, 2, 2))
    with pytest.raises(ShapeError, match=r"layer 'concat6' \(Concatenate\) cannot take inputs"):
        model_cost(model, (40, 40))


def _edsr_mac_per_lr_pixel(f, b, scale, c=3):
    if scale == 3:
        ups, r2 = [9 * f * f * 9], [9]
    else:
        n = scale.bit_length() - 1
        ups, r2 = [9 * f * f * 4 * 4 ** s for s in range(n)], [4 ** (s + 1) for s in range(n)]
    return 9 * c * f + b * 2 * 9 * f * f + 9 * f * f + sum(ups) + 9 * f * c * r2[-1]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_cost_matches_closed_form(scale):
    f, b, h, w = 6, 2, 7, 5
    report = model_cost(build_edsr(scale=scale, num_blocks=b, num_features=f), (h, w))
    assert report.totals.mac == _edsr_mac_per_lr_pixel(f, b, scale) * h * w


def test_edsr_baseline_reproduces_table1_original():
    t = model_cost(build_reference("edsr"), (1020, 1020)).totals
    assert t.mac == 1_372_608 * 1020 * 1020 == 1_428_061_363_200
    assert t.weights == 1_367_424
    assert t.activations == 4879 * 1020 * 1020 == 5_076_111_600  # paper: 5076M
    assert t.bw_elements == 5_077_479_024  # paper: 5077


def test_sid_reproduces_table1_original_and_the_activation_gap():
    report = model_cost(build_reference("sid"), (1424, 2128))
    t = report.totals
    assert t.mac == 560_091_234_304 and abs(t.mac / 560.09e9 - 1) < 5e-6
    assert t.weights == 7_757_312
    unit = 1424 * 2128  # one full-resolution channel
    assert t.activations == 639 * unit == 1_936_343_808
    # The paper's 1915M, explained: the two bottleneck convs (level 5) hold exactly 7 units; without them the
    # count is 632 units = 1915.1M, the paper's figure to the million.
    level5 = report.layer("conv5_1").activations + report.layer("conv5_2").activations
    assert level5 == 7 * unit
    assert round((t.activations - level5) / 1e6) == 1915
