"""An int8 model's own conversions, alone: single-op QUANTIZE and DEQUANTIZE models cut from a converted model, at
the shapes of a calibration's models' inputs and outputs."""

import numpy as np
import pytest

from edgeprune.core.errors import ExportError
from edgeprune.core.runtime import keras
from edgeprune.deploy.conversion_models import (CONVERSION_GRID, conversion_models, conversion_shapes,
                                                single_op_model)
from edgeprune.deploy.export import convert
from edgeprune.deploy.tflite_reader import TfliteGraph
from keras_models import build_edsr


def test_each_conversion_model_is_its_one_op_between_float_and_int8():
    models = conversion_models([(8, 6, 3)])
    assert [desc for desc, _ in models] == ["QUANTIZE 8x6x3 (conversion)", "DEQUANTIZE 8x6x3 (conversion)"]
    (_, quantize), (_, dequantize) = models
    q, d = TfliteGraph(quantize), TfliteGraph(dequantize)
    assert q.op_counts() == {"QUANTIZE": 1} and d.op_counts() == {"DEQUANTIZE": 1}
    assert (q.ops[0].input_types, q.ops[0].output_types) == (("FLOAT32",), ("INT8",))
    assert (d.ops[0].input_types, d.ops[0].output_types) == (("INT8",), ("FLOAT32",))
    assert q.input_shapes == d.input_shapes == ((1, 8, 6, 3),)


def test_a_conversion_model_runs_in_litert():
    from ai_edge_litert.interpreter import Interpreter

    _, quantize = conversion_models([(4, 4, 2)])[0]
    interpreter = Interpreter(model_content=quantize)
    interpreter.allocate_tensors()
    x = np.linspace(0, 0.99, 32, dtype=np.float32).reshape(1, 4, 4, 2)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert out.dtype == np.int8 and out.shape == (1, 4, 4, 2) and np.all(np.diff(out.ravel()) >= 0)


def test_a_model_without_exactly_one_such_op_is_a_one_line_error():
    inputs = keras.Input((4, 4, 2), batch_size=1)
    fp32 = convert(keras.Model(inputs, keras.layers.ReLU()(inputs)))
    with pytest.raises(ExportError, match="the model has 0 QUANTIZE ops, not one") as info:
        single_op_model(fp32, "QUANTIZE")
    assert "\n" not in str(info.value)


def test_the_shapes_are_the_models_inputs_and_outputs_then_the_grid():
    edsr = build_edsr(num_blocks=1, num_features=8)  # x2: a 20x24x3 input gives a 40x48x3 output
    assert conversion_shapes([edsr, edsr], (20, 24)) == [(20, 24, 3), (40, 48, 3)] + list(CONVERSION_GRID)
    assert conversion_shapes([edsr], (16, 16)).count((32, 32, 3)) == 1  # an output shape the grid has too
