"""A read-only producer/consumer view of a functional tf_keras model. All private Keras access lives here.

A *node* is one call of a layer inside the model (a layer called twice gives two nodes, ``name`` and
``name:1``). Nodes come in a topological order that follows ``model.layers``. :meth:`ModelGraph.shapes_at`
gives every node's concrete input and output shapes at a chosen input size by tracing each layer's ``call`` on
placeholders in a scratch graph: nothing is executed, so it is fast at any resolution.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edgeprune.core.runtime import keras, tf
from edgeprune.core.errors import ShapeError, UnsupportedModelError
from tf_keras.src.engine.keras_tensor import KerasTensor

Shape = tuple[int, ...]


@dataclass(frozen=True)
class TensorRef:
    """Output ``index`` of node ``node``."""

    node: str
    index: int = 0


@dataclass(frozen=True)
class GraphNode:
    id: str
    layer: keras.layers.Layer
    inputs: tuple[TensorRef, ...]
    num_outputs: int
    call_index: int

    @property
    def type(self) -> str:
        return type(self.layer).__name__

    @property
    def is_input(self) -> bool:
        return isinstance(self.layer, keras.layers.InputLayer)


@dataclass(frozen=True)
class NodeShapes:
    inputs: tuple[Shape, ...]
    outputs: tuple[Shape, ...]


def _node_key(layer, index: int) -> str:
    return f"{layer.name}_ib-{index}"  # tf_keras' own key for the nodes of a functional model


class ModelGraph:
    """Nodes of a functional model in topological order, with producer and consumer look-ups."""

    def __init__(self, model: keras.Model):
        if not isinstance(model, keras.Model) or not getattr(model, "_is_graph_network", False):
            kind = type(model).__name__
            raise UnsupportedModelError(
                f"{kind} is not a functional tf_keras model: build it with keras.Input(...) and the functional API "
                "(subclassed models have no graph to analyse)"
            )
        self.model = model
        self._shapes: dict = {}  # shapes_at's results by input size: the structure never changes
        layer_order = {id(layer): i for i, layer in enumerate(model.layers)}
        network_nodes = model._network_nodes
        ordered = []
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for knode in model._nodes_by_depth[depth]:
                ordered.append((depth, layer_order.get(id(knode.layer), 0), knode))
        ordered.sort(key=lambda item: (-item[0], item[1]))

        self._keras_nodes: dict[str, object] = {}
        self._calls_seen: dict[int, int] = {}
        by_key: dict[str, str] = {}
        nodes = []
        for _, _, knode in ordered:
            layer = knode.layer
            if isinstance(layer, keras.Model):
                raise UnsupportedModelError(
                    f"layer '{layer.name}' is a nested model ({type(layer).__name__}); edgeprune needs a flat "
                    "functional model: rebuild it with the inner model's layers called directly"
                )
            k_index = layer._inbound_nodes.index(knode)
            call_index = self._calls_seen.get(id(layer), 0)
            self._calls_seen[id(layer)] = call_index + 1
            node_id = layer.name if call_index == 0 else f"{layer.name}:{call_index}"
            by_key[_node_key(layer, k_index)] = node_id
            refs = []
            for kt in knode.keras_inputs:
                hist = kt._keras_history
                key = _node_key(hist.layer, hist.node_index)
                if key not in network_nodes or key not in by_key:
                    raise UnsupportedModelError(f"layer '{layer.name}' reads a tensor from outside the model")
                refs.append(TensorRef(by_key[key], hist.tensor_index))
            node = GraphNode(node_id, layer, tuple(refs), len(tf.nest.flatten(knode.outputs)), call_index)
            self._keras_nodes[node_id] = knode
            nodes.append(node)
        self.nodes: tuple[GraphNode, ...] = tuple(nodes)
        self._by_id = {n.id: n for n in nodes}
        self.input_ids: tuple[str, ...] = tuple(
            by_key[_node_key(t._keras_history.layer, t._keras_history.node_index)] for t in model.inputs
        )
        self.outputs: tuple[TensorRef, ...] = tuple(
            TensorRef(by_key[_node_key(t._keras_history.layer, t._keras_history.node_index)],
                      t._keras_history.tensor_index)
            for t in model.outputs
        )
        self._consumers: dict[str, list[tuple[GraphNode, int]]] = {n.id: [] for n in nodes}
        for n in nodes:
            for position, ref in enumerate(n.inputs):
                self._consumers[ref.node].append((n, position))

    def __iter__(self):
        return iter(self.nodes)

    def __len__(self):
        return len(self.nodes)

    def node(self, node_id: str) -> GraphNode:
        return self._by_id[node_id]

    def producers(self, node_id: str) -> list[GraphNode]:
        return [self._by_id[ref.node] for ref in self._by_id[node_id].inputs]

    def consumers(self, node_id: str) -> list[tuple[GraphNode, int]]:
        """Nodes that read any output of ``node_id``, with the input position they read it at."""
        return list(self._consumers[node_id])

    def output_channels(self, ref: TensorRef) -> int | None:
        """Static size of the last axis of a node output (None when dynamic)."""
        tensor = tf.nest.flatten(self._keras_nodes[ref.node].outputs)[ref.index]
        return tensor.shape[-1] if tensor.shape.rank else None

    def output_refs(self, node: GraphNode) -> list[TensorRef]:
        return [TensorRef(node.id, i) for i in range(node.num_outputs)]

    def is_shared(self, node: GraphNode) -> bool:
        return self._calls_seen[id(node.layer)] > 1

    def input_shapes(self, input_size: Sequence[int] | None = None) -> list[Shape]:
        """Batch-1 shapes of the model inputs; ``input_size=(H, W)`` fills the spatial dims of NHWC inputs."""
        shapes = []
        for tensor in self.model.inputs:
            dims = list(tensor.shape)
            dims[0] = 1
            if input_size is not None and len(dims) == 4:
                for axis, value in zip((1, 2), input_size):
                    if dims[axis] is not None and dims[axis] != value:
                        raise ShapeError(
                            f"model input '{tensor.name}' has a fixed size {dims[1]}x{dims[2]}; it cannot be "
                            f"evaluated at {input_size[0]}x{input_size[1]}"
                        )
                    dims[axis] = value
            if any(d is None for d in dims):
                raise ShapeError(
                    f"model input '{tensor.name}' has a dynamic shape {tuple(tensor.shape)[1:]}: give an input size "
                    "(--input-size HxW)"
                )
            shapes.append(tuple(int(d) for d in dims))
        return shapes

    def shapes_at(self, input_size: Sequence[int] | None = None) -> dict[str, NodeShapes]:
        """Concrete batch-1 input and output shapes of every node, by symbolic tracing (no computation); traced
        once per input size (the prune loop prices hundreds of plans of one graph)."""
        key = None if input_size is None else tuple(int(d) for d in input_size)
        if key not in self._shapes:
            self._shapes[key] = self._trace_shapes(input_size)
        return dict(self._shapes[key])

    def _trace_shapes(self, input_size) -> dict[str, NodeShapes]:
        input_shapes = self.input_shapes(input_size)
        values: dict[TensorRef, tf.Tensor] = {}
        result: dict[str, NodeShapes] = {}
        graph = tf.__internal__.FuncGraph("edgeprune_shape_probe")
        with graph.as_default():
            for node_id, tensor, shape in zip(self.input_ids, self.model.inputs, input_shapes):
                values[TensorRef(node_id, 0)] = tf.compat.v1.placeholder(tensor.dtype, shape)
            for node in self.nodes:
                if node.is_input:
                    out = values[TensorRef(node.id, 0)]
                    result[node.id] = NodeShapes((), (tuple(out.shape.as_list()),))
                    continue
                ins = [values[ref] for ref in node.inputs]
                outputs = self._trace_call(node, ins)
                for i, t in enumerate(outputs):
                    values[TensorRef(node.id, i)] = t
                result[node.id] = NodeShapes(
                    tuple(tuple(t.shape.as_list()) for t in ins),
                    tuple(tuple(t.shape.as_list()) for t in outputs),
                )
                for shape in result[node.id].outputs:
                    if any(d is None for d in shape):
                        raise ShapeError(f"layer '{node.id}' ({node.type}) has an output shape {shape} that is not "
                                         "fully defined at this input size")
        return result

    def _trace_call(self, node: GraphNode, ins: list) -> list:
        knode = self._keras_nodes[node.id]
        queue = list(ins)

        def substitute(obj):
            return queue.pop(0) if isinstance(obj, KerasTensor) else obj

        args, kwargs = tf.nest.map_structure(substitute, (knode.call_args, dict(knode.call_kwargs)))
        if getattr(node.layer, "_expects_training_arg", False):
            kwargs["training"] = False
        try:
            outputs = node.layer(*args, **kwargs)
        except (ValueError, TypeError, tf.errors.InvalidArgumentError) as exc:
            shapes = ", ".join(str(tuple(t.shape.as_list())) for t in ins)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ShapeError(f"layer '{node.id}' ({node.type}) cannot take inputs of shape {shapes}: {reason}") from exc
        return tf.nest.flatten(outputs)


def spatial_size_of(shapes: Mapping[str, NodeShapes], graph: ModelGraph) -> tuple[int, int] | None:
    """(H, W) of the first NHWC model input, or None."""
    for node_id in graph.input_ids:
        shape = shapes[node_id].outputs[0]
        if len(shape) == 4:
            return shape[1], shape[2]
    return None
