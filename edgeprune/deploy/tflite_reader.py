"""Read a .tflite flatbuffer: its operators, their tensors' shapes and names, and a census of the conv ops.

Conv-like ops and where their data input, weights and output are:
CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED: inputs (data, weights, bias); TRANSPOSE_CONV: inputs
(output_shape, weights, data, bias). Weight layouts: CONV_2D and TRANSPOSE_CONV ``[out, kh, kw, in]``,
DEPTHWISE_CONV_2D ``[1, kh, kw, C*m]``, FULLY_CONNECTED ``[out, in]``.
"""

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edgeprune.errors import ExportError

CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED", "CONV_3D", "CONV_3D_TRANSPOSE")


@dataclass(frozen=True)
class TfliteOp:
    index: int
    name: str
    input_shapes: tuple
    output_shapes: tuple
    output_names: tuple

    @property
    def is_conv(self) -> bool:
        return self.name in CONV_OPS

    def _data_and_weights(self):
        if self.name == "TRANSPOSE_CONV":
            return self.input_shapes[2], self.input_shapes[1]
        return self.input_shapes[0], self.input_shapes[1]

    @property
    def data_shape(self) -> tuple:
        return self._data_and_weights()[0]

    @property
    def weight_elements(self) -> int:
        return math.prod(self._data_and_weights()[1])

    @property
    def mac(self) -> int:
        data, weights = self._data_and_weights()
        out = self.output_shapes[0]
        if self.name == "FULLY_CONNECTED":
            return math.prod(weights) * (math.prod(data) // weights[-1])
        if self.name == "TRANSPOSE_CONV":
            return math.prod(weights) * math.prod(data[1:-1])
        if self.name == "DEPTHWISE_CONV_2D":
            return math.prod(weights) * math.prod(out[1:-1])
        return math.prod(weights) * math.prod(out[1:-1])

    def layer_names(self) -> set[str]:
        """Keras layer names in the output tensor's name (``model/layer/op`` parts joined by ';')."""
        names = set()
        for tensor_name in self.output_names:
            for part in tensor_name.split(";"):
                names.update(part.split("/")[1:-1])
        return names


class TfliteGraph:
    def __init__(self, content: bytes):
        from tensorflow.lite.python import schema_py_generated as schema

        try:
            model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
        except Exception as exc:  # a truncated or foreign file fails deep inside flatbuffers
            raise ExportError(f"not a valid .tflite flatbuffer: {type(exc).__name__}") from exc
        if not model.subgraphs:
            raise ExportError("the .tflite file has no subgraph")
        op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self.custom_ops: list[str] = []
        graph = model.subgraphs[0]
        tensors = graph.tensors
        ops = []
        for i, op in enumerate(graph.operators or []):
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            name = op_names.get(builtin, str(builtin))
            if name == "CUSTOM":
                custom = (code.customCode or b"").decode()
                self.custom_ops.append(custom)
                name = f"CUSTOM:{custom}"

            def shape(t):
                return tuple(int(d) for d in tensors[t].shape) if t >= 0 and tensors[t].shape is not None else ()

            ops.append(TfliteOp(i, name, tuple(shape(t) for t in op.inputs), tuple(shape(t) for t in op.outputs),
                                tuple(tensors[t].name.decode() for t in op.outputs)))
        self.ops: tuple[TfliteOp, ...] = tuple(ops)
        type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
        self._conv_weight_types = [type_names.get(tensors[op.inputs[2 if name == "TRANSPOSE_CONV" else 1]].type)
                                   for op, name in zip(graph.operators or [], (o.name for o in ops))
                                   if name in CONV_OPS]
        self.input_shapes = tuple(tuple(int(d) for d in tensors[t].shape) for t in graph.inputs)

    @classmethod
    def read(cls, path) -> "TfliteGraph":
        path = Path(path)
        if not path.is_file():
            raise ExportError(f"TFLite file '{path}' does not exist")
        return cls(path.read_bytes())

    def op_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(op.name for op in self.ops).items()))

    def flex_ops(self) -> list[str]:
        return [c for c in self.custom_ops if c.startswith("Flex")]

    def weight_dtype(self) -> str | None:
        """Element type of the conv weights (FLOAT32, FLOAT16 via DEQUANTIZE shows as FLOAT32, INT8, ...)."""
        return self._conv_weight_types[0] if self._conv_weight_types else None

    def conv_ops(self) -> list[TfliteOp]:
        return [op for op in self.ops if op.is_conv]
