import numpy as np
import pytest

from edgeprune.core.runtime import keras, tf
from edgeprune.core.errors import UnsupportedModelError
from edgeprune.graph.model_graph import ModelGraph, TensorRef
from keras_models import build_edsr, build_sid

L = keras.layers


def test_nodes_are_topological_with_producers_and_consumers():
    model = build_edsr(num_blocks=2, num_features=4)
    graph = ModelGraph(model)
    ids = [n.id for n in graph]
    assert ids[0] == "lr" and ids[-1] == "add_mean"
    position = {node_id: i for i, node_id in enumerate(ids)}
    for node in graph:
        for ref in node.inputs:
            assert position[ref.node] < position[node.id]
    assert [p.id for p in graph.producers("block00_add")] == ["head", "block00_conv2"]
    assert sorted((n.id, pos) for n, pos in graph.consumers("head")) == [
        ("block00_add", 0), ("block00_conv1", 0), ("body_add", 1)]
    assert graph.input_ids == ("lr",) and graph.outputs == (TensorRef("add_mean", 0),)


def test_propagated_shapes_equal_those_of_a_real_run():
    model = build_sid(features=(3, 4, 5, 6, 7))
    graph = ModelGraph(model)
    shapes = graph.shapes_at((32, 48))
    conv_ids = [n.id for n in graph if not n.is_input]
    probe = keras.Model(model.inputs, [model.get_layer(i).output for i in conv_ids])
    outputs = probe(np.zeros((1, 32, 48, 4), np.float32))
    for node_id, out in zip(conv_ids, outputs):
        assert shapes[node_id].outputs[0] == tuple(out.shape), node_id


def test_shape_probe_does_not_run_or_modify_the_model():
    model = build_edsr(num_blocks=1, num_features=4)
    nodes_before = [len(layer._inbound_nodes) for layer in model.layers]
    ModelGraph(model).shapes_at((4000, 4000))  # would take seconds and GBs if it computed anything
    assert [len(layer._inbound_nodes) for layer in model.layers] == nodes_before


def test_ops_on_keras_tensors_are_traced_too():
    inputs = keras.Input((None, None, 2))
    x = L.Conv2D(3, 1, name="conv")(inputs)
    y = tf.nn.relu6(x + 3.0) * (1.0 / 6.0)  # becomes TFOpLambda layers, as in MobileNetV3
    shapes = ModelGraph(keras.Model(inputs, y)).shapes_at((5, 6))
    assert all(s.outputs[0] == (1, 5, 6, 3) for k, s in shapes.items() if k != "input_1")


def test_multi_input_models_and_their_dtypes():
    a, b = keras.Input((None, None, 2), name="a"), keras.Input((None, None, 3), name="b")
    out = L.Concatenate(name="cat")([a, b])
    graph = ModelGraph(keras.Model([a, b], out))
    assert graph.input_ids == ("a", "b")
    assert graph.shapes_at((4, 5))["cat"].outputs == ((1, 4, 5, 5),)


def test_nested_and_subclassed_models_are_refused_with_a_reason():
    inner_in = keras.Input((4, 4, 2))
    inner = keras.Model(inner_in, L.Conv2D(2, 1)(inner_in), name="inner")
    outer_in = keras.Input((4, 4, 2))
    with pytest.raises(UnsupportedModelError, match="layer 'inner' is a nested model"):
        ModelGraph(keras.Model(outer_in, inner(outer_in)))

    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(UnsupportedModelError, match="Sub is not a functional tf_keras model"):
        ModelGraph(Sub())
