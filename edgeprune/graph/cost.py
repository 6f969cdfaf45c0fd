"""The analytical cost model: MAC, weights, activations and memory bandwidth per layer, counted as
in Table 1 of Wang et al., "Architecture-aware Network Pruning for Vision Quality Applications", ICIP 2019
(arXiv 1908.02125).

Costed layers are the kinds of the layer table (:mod:`edgeprune.graph.layer_table`) that have a cost formula: the
convolutions and Dense (``Conv1D/2D/3D``, their transposes, ``DepthwiseConv1D/2D``, ``SeparableConv1D/2D``,
``Dense``); the formulas live in the table. For each call of such a layer:

- MAC: ``prod(kernel) * C_in/groups * C_out * prod(output spatial)``; for a transposed conv
  ``prod(kernel) * C_in * C_out * prod(input spatial)`` (every input pixel scatters a full kernel);
  depthwise ``prod(kernel) * C_in * multiplier * prod(output spatial)``; separable = depthwise + pointwise.
- weights: kernel elements (bias excluded, as in the paper's Table 1); ``bias`` is reported separately.
- activations: input elements + output elements (each feature map written once and read once). A separable
  conv also writes and reads its depthwise result: ``activations_internal = 2 * that tensor``.
- BW elements = weights + activations; bytes = elements * bytes per element of the chosen dtype.

Every other layer is listed with zero MAC, its parameters as ``other_params`` and its activations, so both the
paper's conv-only totals (``totals``) and an every-layer view (``totals_all_layers``, which adds bias and other
parameters to BW) are available. Batch size is 1; NHWC (channels-last) is assumed for spatial inputs.
"""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from edgeprune.core.runtime import keras
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.graph.layer_table import kind_of, weight_name
from edgeprune.graph.model_graph import ModelGraph, NodeShapes

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}  # bytes per element of each dtype the cost model knows
TFLITE_DTYPES = {"FLOAT32": "fp32", "FLOAT16": "fp16", "INT8": "int8", "UINT8": "int8"}  # TFLite tensor types


def tflite_bytes_per_element(tensor_type: str | None, default: str = "fp32") -> int:
    """Bytes per element of a TFLite tensor type (``FLOAT32``, ...); ``default``'s for a type not listed."""
    return DTYPE_BYTES[TFLITE_DTYPES.get(tensor_type, default)]


@dataclass(frozen=True)
class LayerCost:
    name: str
    type: str
    costed: bool
    input_shapes: tuple[tuple[int, ...], ...]
    output_shapes: tuple[tuple[int, ...], ...]
    mac: int
    weights: int
    bias: int
    other_params: int
    activations_in: int
    activations_out: int
    activations_internal: int
    bytes_per_element: int
    shared_with: str | None = None

    @property
    def activations(self) -> int:
        return self.activations_in + self.activations_out + self.activations_internal

    @property
    def bw_elements(self) -> int:
        return self.weights + self.activations

    @property
    def bw_bytes(self) -> int:
        return self.bw_elements * self.bytes_per_element

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("bytes_per_element")
        d["input_shapes"] = [list(s) for s in self.input_shapes]
        d["output_shapes"] = [list(s) for s in self.output_shapes]
        d.update(activations=self.activations, bw_elements=self.bw_elements, bw_bytes=self.bw_bytes)
        return d


@dataclass(frozen=True)
class Totals:
    mac: int
    weights: int
    bias: int
    other_params: int
    activations: int
    bw_elements: int
    bw_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CostReport:
    model: str
    input_size: tuple[int, int] | None
    dtype: str
    layers: tuple[LayerCost, ...]
    # the shapes of the model's own input and output tensors (where a deployed int8 model converts from and to float)
    model_inputs: tuple[tuple[int, ...], ...] = ()
    model_outputs: tuple[tuple[int, ...], ...] = ()
    totals: Totals = field(init=False)
    totals_all_layers: Totals = field(init=False)

    def __post_init__(self):
        nbytes = DTYPE_BYTES[self.dtype]
        conv = [c for c in self.layers if c.costed]
        act = sum(c.activations for c in conv)
        w = sum(c.weights for c in conv)
        object.__setattr__(self, "totals", Totals(
            mac=sum(c.mac for c in conv), weights=w, bias=sum(c.bias for c in conv), other_params=0,
            activations=act, bw_elements=w + act, bw_bytes=(w + act) * nbytes,
        ))
        all_params = sum(c.weights + c.bias + c.other_params for c in self.layers)
        all_act = sum(c.activations for c in self.layers)
        object.__setattr__(self, "totals_all_layers", Totals(
            mac=sum(c.mac for c in self.layers), weights=sum(c.weights for c in self.layers),
            bias=sum(c.bias for c in self.layers), other_params=sum(c.other_params for c in self.layers),
            activations=all_act, bw_elements=all_params + all_act, bw_bytes=(all_params + all_act) * nbytes,
        ))

    def layer(self, name: str) -> LayerCost:
        for c in self.layers:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "input_size": list(self.input_size) if self.input_size else None,
            "dtype": self.dtype,
            "bytes_per_element": DTYPE_BYTES[self.dtype],
            "convention": "totals: conv/dense layers only, bias excluded from weights and BW (the paper's Table 1); "
                          "totals_all_layers: every layer, BW includes bias and other parameters",
            "totals": self.totals.to_dict(),
            "totals_all_layers": self.totals_all_layers.to_dict(),
            "layers": [c.to_dict() for c in self.layers],
        }


def _numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def _param_count(layer, exclude=frozenset()) -> int:
    return sum(_numel(w.shape) for w in layer.weights if weight_name(w) not in exclude)


def layer_costs(graph: ModelGraph, shapes: dict[str, NodeShapes], bytes_per_element: int,
                param_scale: dict[str, float] | None = None) -> list[LayerCost]:
    """Per-call costs from concrete shapes. ``param_scale`` scales the parameters of non-costed layers (their
    per-channel parameters shrink with their channels when a plan is predicted)."""
    costs = []
    for node in graph:
        if node.is_input:
            continue
        s = shapes[node.id]
        act_in = sum(_numel(x) for x in s.inputs)
        act_out = sum(_numel(x) for x in s.outputs)
        first_call = node.call_index == 0
        shared_with = None if first_call else node.layer.name
        kind = kind_of(node.layer)
        if kind.costed:
            mac, weights, bias, internal = kind.cost(node.layer, s.inputs[0], s.outputs[0])
            other = _param_count(node.layer, kind.weights)  # parameters beyond its kernels and bias
            if not first_call:
                weights = bias = other = 0
            costs.append(LayerCost(node.id, node.type, True, s.inputs, s.outputs, mac, weights, bias, other,
                                   act_in, act_out, internal, bytes_per_element, shared_with))
        else:
            params = _param_count(node.layer) if first_call else 0
            if param_scale and node.id in param_scale:
                params = round(params * param_scale[node.id])
            costs.append(LayerCost(node.id, node.type, False, s.inputs, s.outputs, 0, 0, 0, params,
                                   act_in, act_out, 0, bytes_per_element, shared_with))
    return costs


def parse_dtype(dtype: str) -> int:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise InvalidArgumentError(f"dtype {dtype!r} is not supported; use one of {', '.join(DTYPE_BYTES)}") from None


def model_cost(model: keras.Model, input_size: Sequence[int] | None = None, dtype: str = "fp32",
               name: str | None = None) -> CostReport:
    """Analytical per-layer cost of a functional tf_keras model at ``input_size=(H, W)`` (batch 1).

    ``input_size`` may be None when the model's inputs have static shapes. The model is never run. ``model`` may
    also be its :class:`ModelGraph`, when the caller has built it.
    """
    nbytes = parse_dtype(dtype)
    graph = model if isinstance(model, ModelGraph) else ModelGraph(model)
    shapes = graph.shapes_at(input_size)
    first = shapes[graph.input_ids[0]].outputs[0]
    size = (first[1], first[2]) if len(first) == 4 else None
    return CostReport(name or graph.model.name, size, dtype, tuple(layer_costs(graph, shapes, nbytes)),
                      *_model_io(graph, shapes))


def _model_io(graph: ModelGraph, shapes) -> tuple[tuple, tuple]:
    """(shapes of the model's inputs, shapes of its outputs) from a graph's traced ``shapes``."""
    return (tuple(shapes[i].outputs[0] for i in graph.input_ids),
            tuple(shapes[ref.node].outputs[ref.index] for ref in graph.outputs))


def predicted_cost(model: keras.Model, channels: dict, input_size: Sequence[int] | None = None,
                   dtype: str = "fp32", name: str | None = None) -> CostReport:
    """The cost ``model`` would have if tensor ``ref`` had ``channels[ref]`` channels (a TensorRef -> int map).

    Computed from the original model's shapes alone, so comparing it with the cost of a model rebuilt by surgery
    checks the surgery. ``model`` may also be its :class:`ModelGraph`.
    """
    nbytes = parse_dtype(dtype)
    graph = model if isinstance(model, ModelGraph) else ModelGraph(model)
    shapes = graph.shapes_at(input_size)
    from edgeprune.graph.model_graph import TensorRef

    def resize(shape, ref):
        return shape[:-1] + (channels.get(ref, shape[-1]),)

    new_shapes, scale = {}, {}
    for node in graph:
        s = shapes[node.id]
        outs = tuple(resize(shape, TensorRef(node.id, i)) for i, shape in enumerate(s.outputs))
        ins = tuple(resize(shape, ref) for shape, ref in zip(s.inputs, node.inputs))
        new_shapes[node.id] = NodeShapes(ins, outs)
        if s.outputs and s.outputs[0][-1]:
            scale[node.id] = outs[0][-1] / s.outputs[0][-1]
    first = new_shapes[graph.input_ids[0]].outputs[0]
    size = (first[1], first[2]) if len(first) == 4 else None
    return CostReport(name or graph.model.name, size, dtype, tuple(layer_costs(graph, new_shapes, nbytes, scale)),
                      *_model_io(graph, new_shapes))


def zero_kernels(model: keras.Model, report: CostReport) -> dict:
    """The k x k kernels of ``model``'s plain 2-D convs that are all zero (what coarse kernel pruning leaves), and
    what skipping them would save: ``{"layers": {name: [zero kernels, kernels]}, "zero_kernels", "kernels",
    "mac_skipping_zero_kernels", "mac"}`` at ``report``'s input size (the model's own cost report). A dense
    TFLite conv multiplies zero kernels too, so the MAC it executes stays ``mac``."""
    import numpy as np

    costs = {c.name: c for c in report.layers}
    layers, saved = {}, 0.0
    for layer in model.layers:
        if kind_of(layer).name != "conv" or getattr(layer, "groups", 1) != 1 or len(layer.kernel.shape) != 4:
            continue
        kernel = layer.kernel.numpy()
        zero = ~np.any(kernel != 0, axis=(0, 1))
        count, total = int(zero.sum()), int(zero.size)
        layers[layer.name] = [count, total]
        if count and layer.name in costs:
            saved += costs[layer.name].mac * count / total
    return {"layers": layers, "zero_kernels": sum(v[0] for v in layers.values()),
            "kernels": sum(v[1] for v in layers.values()), "mac": report.totals.mac,
            "mac_skipping_zero_kernels": report.totals.mac - saved}
