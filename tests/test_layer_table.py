"""edgeprune/graph/layer_table.py: the one declarative layer table (roles, weight axes, slicing, cost formulas,
TFLite ops, filter norms), walked entry by entry, and what it drives."""

import numpy as np
import pytest

from edgeprune.core.errors import UnsupportedModelError
from edgeprune.core.runtime import keras
from edgeprune.graph.layer_table import (LAYER_KINDS, ROLES, UNKNOWN, Axes, LayerKind, channel_indices, kind_named,
                                         kind_of, kind_of_type, resized_config, role_of, slice_weights, weight_name,
                                         weight_names)
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


# --- the table itself -------------------------------------------------------------------------------------------

FIELDS = ("name", "types", "role", "frozen_if", "weights", "resize", "cost", "tflite_op", "tflite_ops",
          "converted_away", "tiled", "norm_weight")


def test_every_kind_has_every_field_and_each_is_of_its_type():
    assert tuple(f for f in LayerKind.__dataclass_fields__) == FIELDS
    names = [kind.name for kind in LAYER_KINDS]
    assert len(names) == len(set(names))
    for kind in LAYER_KINDS + (UNKNOWN,):
        assert isinstance(kind.name, str) and kind.name, kind
        assert isinstance(kind.types, tuple) and (kind.types or kind is UNKNOWN), kind.name
        assert all(isinstance(t, str) or issubclass(t, L.Layer) for t in kind.types), kind.name
        assert kind.role in ROLES, kind.name
        for fn in (kind.frozen_if, kind.resize, kind.cost):
            assert fn is None or callable(fn), kind.name
        assert all(isinstance(n, str) and isinstance(a, Axes) for n, a in kind.weights.items()), kind.name
        for axes in kind.weights.values():  # negative axes (counted from the channel end), at least one side
            assert {axes.in_axis, axes.out_axis} != {None}, kind.name
            assert all(a is None or a < 0 for a in (axes.in_axis, axes.out_axis)), kind.name
            assert not axes.in_expanded or axes.in_axis is not None, kind.name
        assert kind.tflite_op is None or (isinstance(kind.tflite_op, str) and kind.tflite_op.isupper()), kind.name
        assert type(kind.tflite_ops) is int and kind.tflite_ops >= 0, kind.name
        assert isinstance(kind.converted_away, bool) and isinstance(kind.tiled, bool), kind.name
        assert kind.norm_weight is None or kind.norm_weight in kind.weights, kind.name
        if kind.role == "frozen":
            assert kind.frozen_if is not None, kind.name  # a frozen kind says why


def test_costed_mixing_depthwise_tiled_and_removed_kinds_have_what_they_need():
    for kind in LAYER_KINDS:
        if kind.costed:
            assert kind.tflite_op and kind.role in ("mixing", "depthwise"), kind.name
        assert (kind.tflite_ops >= 1) == kind.costed, kind.name  # the export's census counts a costed kind's ops
        if kind.role in ("mixing", "depthwise"):
            assert kind.costed, kind.name
            assert any(a.in_axis is not None for a in kind.weights.values()), kind.name  # input channels sliceable
            assert kind.weights["bias"] == Axes(None, -1), kind.name
        if kind.role == "mixing":  # a producer: its kernel has both axes, its width is resized, its filters scored
            kernel = kind.weights[kind.norm_weight]
            assert kernel.in_axis is not None and kernel.out_axis is not None, kind.name
            assert kind.resize is not None and kind.frozen_if is not None, kind.name  # frozen when grouped
        if kind.tiled:
            assert kind.tflite_op and kind.role == "mixing", kind.name
        if kind.converted_away:
            assert kind.tflite_op is None and not kind.costed and not kind.weights, kind.name


def test_every_type_resolves_to_its_own_entry_so_subclasses_come_before_their_bases():
    seen = set()
    for kind in LAYER_KINDS:
        for t in kind.types:
            cls = type(t, (L.Layer,), {}) if isinstance(t, str) else t
            assert kind_of_type(cls) is kind, (kind.name, t)
            assert kind_named(cls.__name__) is kind
            assert cls.__name__ not in seen
            seen.add(cls.__name__)
    assert kind_of(L.LayerNormalization()) is UNKNOWN and kind_named("LayerNormalization") is UNKNOWN

    class MyConv(L.Conv2D):  # a user's subclass is its base's kind
        pass

    assert kind_of(MyConv(2, 3)).name == "conv"


C_IN, C_OUT, M = 3, 5, 2
WEIGHTED = [  # one built layer of every kind with weights: (layer, input shape without batch)
    (L.Conv1D(C_OUT, 3), (9, C_IN)), (L.Conv2D(C_OUT, 3), (9, 9, C_IN)), (L.Conv3D(C_OUT, 3), (5, 5, 5, C_IN)),
    (L.Conv1DTranspose(C_OUT, 2), (4, C_IN)), (L.Conv2DTranspose(C_OUT, 2), (4, 4, C_IN)),
    (L.Conv3DTranspose(C_OUT, 2), (3, 3, 3, C_IN)), (L.SeparableConv1D(C_OUT, 3, depth_multiplier=M), (9, C_IN)),
    (L.SeparableConv2D(C_OUT, 3, depth_multiplier=M), (9, 9, C_IN)),
    (L.DepthwiseConv1D(3, depth_multiplier=M), (9, C_IN)), (L.DepthwiseConv2D(3, depth_multiplier=M), (9, 9, C_IN)),
    (L.Dense(C_OUT), (C_IN,)), (L.BatchNormalization(), (4, 4, C_OUT)), (L.PReLU(), (4, 4, C_OUT)),
]


@pytest.mark.parametrize("layer, shape", WEIGHTED, ids=lambda x: type(x).__name__ if isinstance(x, L.Layer) else "")
def test_weight_axes_name_every_weight_and_hold_the_channels(layer, shape):
    layer.build((None, *shape))
    kind = kind_of(layer)
    assert set(weight_names(layer)) <= set(kind.weights)
    c_out = C_IN * M if kind.role == "depthwise" else C_OUT
    for w in layer.weights:
        axes = kind.weights[weight_name(w)]
        if axes.in_axis is not None:
            assert w.shape[axes.in_axis] == C_IN * (M if axes.in_expanded else 1), w.name
        if axes.out_axis is not None:
            assert w.shape[axes.out_axis] == c_out, w.name
    if kind.costed:
        out_shape = tuple(layer.compute_output_shape((1, *shape)))
        mac, weights, bias, _ = kind.cost(layer, (1, *shape), out_shape)
        assert weights == sum(np.prod(w.shape) for w in layer.weights if weight_name(w) != "bias")
        assert bias == c_out and mac > 0


def test_weight_name_is_the_last_scope_without_the_output_index():
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, L.Conv2D(2, 1, name="c")(inputs))
    assert [w.name for w in model.get_layer("c").weights] == ["c/kernel:0", "c/bias:0"]
    assert weight_names(model.get_layer("c")) == ["kernel", "bias"]


def test_the_weight_name_parse_is_written_once():
    from pathlib import Path

    import edgeprune

    parse = 'split("/")[-1].split(":")[0]'
    owners = [p.name for p in Path(edgeprune.__file__).parent.rglob("*.py") if parse in p.read_text()]
    assert owners == ["layer_table.py"]


def test_channel_indices_zero_exactly_the_channels_of_each_axis():
    sep = built(L.SeparableConv2D(5, 3, depth_multiplier=2), (6, 6, 3))
    pairs = channel_indices(sep, np.array([1]), np.array([0, 4]))
    masks = {n: np.ones(w.shape) for n, w in zip(weight_names(sep), sep.get_weights())}
    for name, index in pairs:
        masks[name][index] = 0
    assert np.flatnonzero(masks["depthwise_kernel"].sum(axis=(0, 1, 3)) == 0).tolist() == [1]
    assert np.flatnonzero(masks["pointwise_kernel"].sum(axis=(0, 1, 3)) == 0).tolist() == [2, 3]  # 1*m + j
    assert np.flatnonzero(masks["pointwise_kernel"].sum(axis=(0, 1, 2)) == 0).tolist() == [0, 4]
    assert np.flatnonzero(masks["bias"] == 0).tolist() == [0, 4]


def test_slicing_a_weight_the_table_does_not_know_is_refused():
    class ScaledConv(L.Conv2D):
        def build(self, input_shape):
            super().build(input_shape)
            self.gain = self.add_weight(name="gain", shape=(3, 3))

    layer = built(ScaledConv(4, 1, name="sc"), (4, 4, 2))
    with pytest.raises(UnsupportedModelError,
                       match="ScaledConv 'sc' has a weight 'gain' whose channel axes edgeprune's layer table does not"):
        slice_weights(layer, layer.get_weights(), [0], [0, 1])


def test_role_of_a_tf_op_follows_its_symbol():
    op = type("TFOpLambda", (L.Layer,), {})(name="op")
    op.symbol = "math.multiply"
    assert role_of(op).kind == "elementwise_op"
    op.symbol = "linalg.matmul"
    assert (role_of(op).kind, role_of(op).reason) == ("frozen", "edgeprune cannot reason about channels of "
                                                                "TFOpLambda 'op'")


# --- the latency model takes its op names from the table (they used to disagree: Conv3DTranspose had none) ------

def _profile():
    from edgeprune.graph.latency_profile import LatencyProfile

    return LatencyProfile("host", "test", 1, {"mac_per_s": 1e9, "bytes_per_s": 1e9, "overhead_us": 1.0},
                          {"CONV_3D_TRANSPOSE": {"mac_per_s": 1e6, "bytes_per_s": 1e9, "overhead_us": 1.0}}, 8, 8)


def test_latency_model_prices_conv3d_transpose_as_the_op_the_converter_emits():
    from edgeprune.deploy.export import convert
    from edgeprune.graph.latency_profile import predict_report
    from edgeprune.deploy.latency import op_features
    from edgeprune.deploy.tflite_reader import TfliteGraph
    from edgeprune.graph.cost import model_cost

    inputs = keras.Input((4, 4, 4, 3), batch_size=1)
    x = L.Conv3D(6, 3, padding="same", name="c3")(inputs)
    model = keras.Model(inputs, L.Conv3DTranspose(5, 2, strides=2, name="t3")(x))
    report = model_cost(model)
    predicted = {l["name"]: l for l in predict_report(_profile(), report)["layers"]}
    assert (predicted["c3"]["op"], predicted["t3"]["op"]) == ("CONV_3D", "CONV_3D_TRANSPOSE")
    mac = report.layer("t3").mac
    assert predicted["t3"]["us"] == pytest.approx(mac * 8 / 5 / 1e6 * 1e6 + 1.0)  # its own roofline, 5 -> 8 tiled
    features = op_features(TfliteGraph(convert(model)))
    emitted = {name: cout for name, _, _, cout in features}
    assert emitted["CONV_3D"] == 6 and emitted["CONV_3D_TRANSPOSE"] == 5  # both ops tiled on both sides


@pytest.mark.parametrize("layer", [L.Dropout(0.5), L.SpatialDropout1D(0.5), L.AlphaDropout(0.5), L.GaussianNoise(1.0)])
def test_latency_model_skips_every_inference_no_op(layer):
    from edgeprune.graph.latency_profile import predict_report
    from edgeprune.graph.cost import model_cost

    inputs = keras.Input((8, 4), batch_size=1)
    model = keras.Model(inputs, L.Conv1D(4, 1, name="c")(layer(inputs)))
    assert [l["name"] for l in predict_report(_profile(), model_cost(model))["layers"]] == ["c"]


def test_conv_ops_per_costed_kind_are_those_the_converter_emits():
    ops = {kind.name: kind.tflite_ops for kind in LAYER_KINDS if kind.costed}
    assert ops == {"separable_conv": 2, "depthwise_conv": 1, "transposed_conv": 1, "transposed_conv_3d": 1,
                   "conv": 1, "conv_3d": 1, "dense": 1}
    assert (kind_named("SeparableConv2D").tflite_ops, kind_named("Conv2D").tflite_ops) == (2, 1)
    assert UNKNOWN.tflite_ops == 0 and kind_named("BatchNormalization").tflite_ops == 0


def test_the_zero_preserving_kinds_are_kinds_of_the_table():
    from edgeprune.graph.layer_table import LAYER_KINDS, ZERO_PRESERVING_KINDS, keeps_zero
    from edgeprune.core.runtime import keras

    assert ZERO_PRESERVING_KINDS <= {k.name for k in LAYER_KINDS}
    assert not {"batch_norm", "mean_shift", "softmax", "conv", "activation"} & ZERO_PRESERVING_KINDS
    assert [keeps_zero(layer) for layer in (keras.layers.Activation("linear"), keras.layers.Activation("sigmoid"),
                                            keras.layers.MaxPooling2D(), keras.layers.Dense(3),
                                            keras.layers.Dense(3, activation="softplus"))] == [True, False, True,
                                                                                                True, False]
