"""The .tflite reader: operand positions from the TFLite schema, checked on a real exported SID graph."""

import subprocess
import sys

import pytest

from edgeprune.deploy.export import convert, fixed_shape_model
from edgeprune.deploy.tflite_reader import TfliteGraph, operands
from edgeprune.core.errors import ExportError
from edgeprune.graph.cost import model_cost
from edgeprune.core.runtime import keras
from keras_models import build_sid


@pytest.fixture(scope="module")
def sid():
    model = fixed_shape_model(build_sid(features=(4, 5, 6, 7, 8)), (32, 32))
    return model, TfliteGraph(convert(model))


def test_transpose_conv_reads_weights_from_input_1_and_data_from_input_2(sid):
    model, graph = sid
    assert operands("TRANSPOSE_CONV") == (2, 1) and operands("CONV_2D") == (0, 1)
    ups = [op for op in graph.conv_ops() if op.name == "TRANSPOSE_CONV"]
    layers = [l for l in model.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert len(ups) == len(layers) == 4
    for op, layer in zip(ups, layers):
        kh, kw, out, cin = layer.kernel.shape  # Keras keeps (kh, kw, out, in); TFLite (out, kh, kw, in)
        assert op.input_shapes[0] == (4,) and op.weight_shape == (out, kh, kw, cin)
        assert op.data_shape == tuple(layer.input.shape) and op.output_shapes[0] == tuple(layer.output.shape)
        assert op.input_types[:3] == ("INT32", "FLOAT32", "FLOAT32")
        assert op.mac == out * kh * kw * cin * layer.input.shape[1] * layer.input.shape[2]
    costs = {c.name: c for c in model_cost(model).layers}
    assert sum(op.mac for op in ups) == sum(costs[l.name].mac for l in layers)


def test_weight_dtype_of_a_transpose_conv_is_its_weights_type_not_its_inputs():
    inputs = keras.Input((8, 8, 16), batch_size=1)
    model = keras.Model(inputs, keras.layers.Conv2DTranspose(32, 3, strides=2, padding="same")(inputs))
    graph = TfliteGraph(convert(model, "dynamic"))  # int8 weights, float activations
    (op,) = graph.conv_ops()
    assert op.name == "TRANSPOSE_CONV" and op.weight_type == "INT8" and op.input_types[2] == "FLOAT32"
    assert graph.weight_dtype() == "INT8"
    assert TfliteGraph(convert(model)).weight_dtype() == "FLOAT32"


def test_reading_loads_neither_tensorflow_nor_an_interpreter(sid, tmp_path):
    path = tmp_path / "sid.tflite"
    path.write_bytes(convert(sid[0]))
    code = ("import sys; from edgeprune.deploy.tflite_reader import TfliteGraph; "
            f"g = TfliteGraph.read({str(path)!r}); print(len(g.ops), g.op_counts()['TRANSPOSE_CONV']); "
            "print(sorted(m for m in ('tensorflow', 'tf_keras', 'ai_edge_litert.interpreter') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == f"{len(sid[1].ops)} 4" and out[1] == "[]"


def test_corrupt_and_missing_files(sid, tmp_path):
    content = convert(sid[0])
    for bad in (content[: len(content) // 3], b"not a model", b""):
        with pytest.raises(ExportError, match="not a valid .tflite flatbuffer"):
            TfliteGraph(bad)
    with pytest.raises(ExportError, match="does not exist"):
        TfliteGraph.read(tmp_path / "none.tflite")


def test_a_corrupt_file_is_named(sid, tmp_path):
    path = tmp_path / "cut.tflite"
    path.write_bytes(convert(sid[0])[:100])
    with pytest.raises(ExportError, match=r"TFLite file '.*cut\.tflite': not a valid \.tflite flatbuffer") as err:
        TfliteGraph.read(path)
    assert "\n" not in str(err.value)


def test_a_strided_conv3d_transpose_is_counted_as_the_layer_table_counts_it():
    """A transposed conv's MAC is input positions x kernel volume x Cin x Cout (every weight meets every input
    voxel), in the flatbuffer census as in the layer table; its output-shape operand is no data for the latency
    model."""
    from edgeprune.deploy.latency import op_features
    from edgeprune.graph.latency_profile import ACTIVATION_BYTES

    inputs = keras.Input((4, 6, 8, 3), batch_size=1)
    model = keras.Model(inputs, keras.layers.Conv3DTranspose(5, (3, 2, 3), strides=2, padding="same")(inputs))
    (op,) = TfliteGraph(convert(model)).conv_ops()
    assert op.name == "CONV_3D_TRANSPOSE" and op.input_shapes[0] == (5,)
    assert op.data_shape == (1, 4, 6, 8, 3) and op.output_shapes[0] == (1, 8, 12, 16, 5)
    assert op.mac == (4 * 6 * 8) * (3 * 2 * 3) * 3 * 5 == model_cost(model).totals.mac
    (feature,) = [f for f in op_features(TfliteGraph(convert(model))) if f[0] == "CONV_3D_TRANSPOSE"]
    assert op.input_shapes[3] == ()  # the converter adds the bias in an op of its own
    elements = 4 * 6 * 8 * 3 + 3 * 2 * 3 * 5 * 3 + 8 * 12 * 16 * 5  # data, weights, output
    assert feature[1:3] == (op.mac, elements * ACTIVATION_BYTES)


def test_a_fault_of_the_program_while_reading_is_not_called_a_corrupt_file(sid, monkeypatch):
    from ai_edge_litert.tools import flatbuffer_utils

    def broken(content):
        raise AttributeError("'NoneType' object has no attribute 'subgraphs'")

    monkeypatch.setattr(flatbuffer_utils, "read_model_from_bytearray", broken)
    with pytest.raises(AttributeError, match="no attribute 'subgraphs'"):
        TfliteGraph(convert(sid[0]))
