"""An int8 model's own conversions, alone: single-op TFLite models of the QUANTIZE that turns a float input into int8
and of the DEQUANTIZE that turns an int8 output back into float, at the shapes of the models a calibration covers.

A whole int8 model exported with float input and output (``edgeprune export --quantize int8``) converts once at
each input and once at each output; its layers' single-layer calibration models have int8 input and output
(:func:`edgeprune.deploy.latency.converted_layers`), so these two ops are timed here, apart, and fitted under
their own names. The converter keeps no conversion of its own (an identity model converts to no op at all), so
each model is cut from a converted float-input ``input -> ReLU`` model: its one QUANTIZE (or DEQUANTIZE) is kept,
with that op's input and output made the graph's.
"""

import numpy as np

from edgeprune.core.errors import ExportError

CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE")
# shapes timed besides the covered models' own inputs and outputs, so that each conversion's roofline is fitted over
# sizes from 3 K to 1 M elements (their time grows with the bytes they move)
CONVERSION_GRID = ((32, 32, 3), (64, 64, 3), (128, 128, 16), (256, 256, 12), (128, 128, 64))


def single_op_model(content: bytes, op_name: str) -> bytes:
    """The TFLite model ``content`` cut down to its one ``op_name`` op, whose inputs and outputs become the graph's;
    ExportError unless the model has exactly one such op."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytes(content))
    graph = model.subgraphs[0]
    ops = [op for op in graph.operators or [] if flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) == op_name]
    if len(ops) != 1:
        raise ExportError(f"the model has {len(ops)} {op_name} ops, not one: nothing to cut a single-op model from")
    graph.operators = ops
    graph.inputs = np.array([t for t in ops[0].inputs if t >= 0], dtype=np.int32)
    graph.outputs = np.array(list(ops[0].outputs), dtype=np.int32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def conversion_shapes(models, input_size) -> list[tuple[int, int, int]]:
    """The distinct (H, W, C) of ``models``' inputs and outputs at ``input_size``, then :data:`CONVERSION_GRID`'s."""
    from edgeprune.graph.model_graph import ModelGraph

    shapes = []
    for model in models:
        graph = ModelGraph(model)
        traced = graph.shapes_at(input_size)
        refs = [traced[i].outputs[0] for i in graph.input_ids]
        refs += [traced[ref.node].outputs[ref.index] for ref in graph.outputs]
        shapes += [tuple(int(d) for d in s[1:]) for s in refs if len(s) == 4]
    return list(dict.fromkeys(shapes + list(CONVERSION_GRID)))


def conversion_models(shapes) -> list[tuple[str, bytes]]:
    """(description, .tflite content) of a QUANTIZE alone (float32 -> int8) and a DEQUANTIZE alone (int8 -> float32)
    at each (H, W, C) of ``shapes``, batch 1."""
    from edgeprune.core.runtime import keras
    from edgeprune.deploy.export import convert, random_samples

    out = []
    for shape in shapes:
        inputs = keras.Input(tuple(shape), batch_size=1)
        model = keras.Model(inputs, keras.layers.ReLU()(inputs))
        content = convert(model, "int8", random_samples(model))
        for op_name in CONVERSION_OPS:
            out.append((f"{op_name} {'x'.join(map(str, shape))} (conversion)", single_op_model(content, op_name)))
    return out
