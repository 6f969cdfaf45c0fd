"""Read a .tflite flatbuffer: its operators, their tensors' shapes, names and element types, and a census of the
conv ops. The one adapter to LiteRT's flatbuffer schema: it reads through ``ai_edge_litert``'s public
``tools.flatbuffer_utils`` (and the ``schema_py_generated`` module it is built on), not TensorFlow's private
``tensorflow.lite.python``, so it loads neither TensorFlow nor an interpreter.

Conv-like ops and where their data input and weights are (the TFLite schema's operand order):
CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED / CONV_3D: inputs (data, weights, bias); TRANSPOSE_CONV and
CONV_3D_TRANSPOSE: inputs (output_shape, weights, data, bias). Weight layouts: CONV_2D and TRANSPOSE_CONV
``[out, kh, kw, in]``, DEPTHWISE_CONV_2D ``[1, kh, kw, C*m]``, FULLY_CONNECTED ``[out, in]``.
"""

import math
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edgeprune.core.errors import ExportError

CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED", "CONV_3D", "CONV_3D_TRANSPOSE")
# (data input, weights input) of each conv op; every other conv op has (0, 1)
_OPERANDS = {"TRANSPOSE_CONV": (2, 1), "CONV_3D_TRANSPOSE": (2, 1)}
# the transposed convs: input 0 is the output-shape vector, and every weight meets every input position
TRANSPOSED_OPS = ("TRANSPOSE_CONV", "CONV_3D_TRANSPOSE")


def operands(op_name: str) -> tuple[int, int]:
    """(index of the data input, index of the weights input) of a conv op."""
    return _OPERANDS.get(op_name, (0, 1))


TYPE_BYTES = {"FLOAT32": 4, "FLOAT16": 2, "INT8": 1, "UINT8": 1, "INT16": 2, "INT32": 4, "INT64": 8, "BOOL": 1}


@dataclass(frozen=True)
class TfliteOp:
    index: int
    name: str
    input_shapes: tuple
    output_shapes: tuple
    output_names: tuple
    input_types: tuple = ()  # element type name of each input ("FLOAT32", "INT8", ...; None for an absent one)
    output_types: tuple = ()

    def tensor_bytes(self, skip_inputs: tuple = ()) -> int:
        """Bytes of the op's input and output tensors at their element types (4 for a type not in
        :data:`TYPE_BYTES`), without the inputs at ``skip_inputs``."""
        pairs = [(s, t) for i, (s, t) in enumerate(zip(self.input_shapes, self.input_types)) if i not in skip_inputs]
        pairs += list(zip(self.output_shapes, self.output_types))
        return sum(math.prod(s) * TYPE_BYTES.get(t, 4) for s, t in pairs if s and t is not None)

    @property
    def is_conv(self) -> bool:
        return self.name in CONV_OPS

    @property
    def data_shape(self) -> tuple:
        return self.input_shapes[operands(self.name)[0]]

    @property
    def weight_shape(self) -> tuple:
        return self.input_shapes[operands(self.name)[1]]

    @property
    def weight_type(self) -> str | None:
        index = operands(self.name)[1]
        return self.input_types[index] if index < len(self.input_types) else None

    @property
    def weight_elements(self) -> int:
        return math.prod(self.weight_shape)

    @property
    def mac(self) -> int:
        data, weights = self.data_shape, self.weight_shape
        if self.name == "FULLY_CONNECTED":
            return math.prod(weights) * (math.prod(data) // weights[-1])
        if self.name in TRANSPOSED_OPS:  # input positions x kernel volume x Cin x Cout
            return math.prod(weights) * math.prod(data[1:-1])
        return math.prod(weights) * math.prod(self.output_shapes[0][1:-1])

    def layer_names(self) -> set[str]:
        """Keras layer names in the output tensor's name (``model/layer/op`` parts joined by ';')."""
        names = set()
        for tensor_name in self.output_names:
            for part in tensor_name.split(";"):
                names.update(part.split("/")[1:-1])
        return names


class TfliteGraph:
    def __init__(self, content: bytes):
        from ai_edge_litert.tools import flatbuffer_utils

        try:
            model = flatbuffer_utils.read_model_from_bytearray(bytes(content))
        except (struct.error, ValueError, TypeError, IndexError) as exc:  # flatbuffers, on a truncated or foreign file
            raise ExportError(f"not a valid .tflite flatbuffer: {type(exc).__name__}") from exc
        if not model.subgraphs:
            raise ExportError("the .tflite file has no subgraph")
        self.custom_ops: list[str] = []
        graph = model.subgraphs[0]
        tensors = graph.tensors

        def shape(t):
            return tuple(int(d) for d in tensors[t].shape) if t >= 0 and tensors[t].shape is not None else ()

        def type_name(t):
            return flatbuffer_utils.type_to_name(tensors[t].type) if t >= 0 else None

        ops = []
        for i, op in enumerate(graph.operators or []):
            name = flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) or "UNKNOWN"
            if name == "CUSTOM":
                custom = (model.operatorCodes[op.opcodeIndex].customCode or b"").decode()
                self.custom_ops.append(custom)
                name = f"CUSTOM:{custom}"
            ops.append(TfliteOp(i, name, tuple(shape(t) for t in op.inputs), tuple(shape(t) for t in op.outputs),
                                tuple(tensors[t].name.decode() for t in op.outputs),
                                tuple(type_name(t) for t in op.inputs), tuple(type_name(t) for t in op.outputs)))
        self.ops: tuple[TfliteOp, ...] = tuple(ops)
        self.input_shapes = tuple(shape(t) for t in graph.inputs)

    @classmethod
    def read(cls, path) -> "TfliteGraph":
        path = Path(path)
        if not path.is_file():
            raise ExportError(f"TFLite file '{path}' does not exist")
        try:
            return cls(path.read_bytes())
        except ExportError as exc:  # the bytes alone do not say which file they came from
            raise ExportError(f"TFLite file '{path}': {exc}; give a .tflite written by 'edgeprune export'") from exc

    def op_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(op.name for op in self.ops).items()))

    def flex_ops(self) -> list[str]:
        return [c for c in self.custom_ops if c.startswith("Flex")]

    def weight_dtype(self) -> str | None:
        """Element type of the first conv op's weights (FLOAT32, INT8, ...; fp16 weights reach the conv through a
        DEQUANTIZE and show as FLOAT32)."""
        convs = self.conv_ops()
        return convs[0].weight_type if convs else None

    def conv_ops(self) -> list[TfliteOp]:
        return [op for op in self.ops if op.is_conv]


def conv_cost(convs, weight_dtype: str | None) -> dict:
    """The analytical cost of conv ops (:class:`TfliteOp`): MAC, weights, activations (each conv's data input and
    output) and BW = weights + activations, in elements and in bytes at the element size of ``weight_dtype`` (4 for
    FLOAT32, 1 for INT8; fp16 weights reach the conv through a DEQUANTIZE and count as FLOAT32)."""
    from edgeprune.graph.cost import tflite_bytes_per_element

    weights = sum(op.weight_elements for op in convs)
    activations = sum(math.prod(op.data_shape) + math.prod(op.output_shapes[0]) for op in convs)
    nbytes = tflite_bytes_per_element(weight_dtype)
    return {"mac": sum(op.mac for op in convs), "weights": weights, "activations": activations,
            "bw_elements": weights + activations, "bw_bytes": (weights + activations) * nbytes}
