"""The declarative layer table: everything edgeprune knows about a layer type, in one entry per kind of layer.

A :class:`LayerKind` says, for its tf_keras classes: its role in channel coupling, which axes of each weight hold
input and output channels (so weights can be sliced by surgery and zeroed by masks), how its config is resized, its
cost formula, the TFLite op it becomes (for the latency model), how many conv ops the converter emits for it (for
the export's tensor census) and which weight's filter norms score its output channels. :func:`kind_of` finds a layer's entry; every other module asks the table instead of testing layer classes.
Adding a layer type is one entry in :data:`LAYER_KINDS`; ``tests/test_layer_table.py`` walks the table.

Roles:
- ``mixing``: produces new output channels from all input channels (Conv*, Conv*Transpose, SeparableConv*,
  Dense). Its input and output channels are independent; both sides can be pruned.
- ``depthwise``: output channel ``c*m + j`` comes from input channel ``c`` (DepthwiseConv*, multiplier ``m``).
- ``preserving``: output channel ``c`` comes from input channel ``c`` only (BN, activations, pooling, padding,
  cropping, dropout, upsampling, ...).
- ``merge``: elementwise over several inputs (Add, Subtract, Multiply, Average, Maximum, Minimum).
- ``concat``: Concatenate; along the channel axis the output is the inputs' channels at increasing offsets.
- ``depth_to_space``: output channel ``c`` owns input channels ``k*C_out + c`` (TensorFlow's channel order).
- ``reshape``: Reshape; channel-preserving when the last axis keeps its size.
- ``elementwise_op``: an op written on Keras tensors (tf_keras's TFOpLambda) that acts per element.
- ``frozen``: anything else; none of its input or output channels can be pruned.

Costed kinds (those with a ``cost`` formula) are the convolutions and Dense. One call's figures:
- MAC: ``prod(kernel) * C_in/groups * C_out * prod(output spatial)``; for a transposed conv
  ``prod(kernel) * C_in * C_out * prod(input spatial)`` (every input pixel scatters a full kernel);
  depthwise ``prod(kernel) * C_in * multiplier * prod(output spatial)``; separable = depthwise + pointwise.
- weights: kernel elements (bias excluded, as in the paper's Table 1); ``bias`` is reported separately.
- internal activations: a separable conv writes and reads its depthwise result (``2 * that tensor``).
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

import numpy as np

from edgeprune.core.errors import UnsupportedModelError
from edgeprune.core.runtime import keras
from keras_models.layers import DepthToSpace, MeanShift, ResidualScale

L = keras.layers

ROLES = ("mixing", "depthwise", "preserving", "merge", "concat", "depth_to_space", "reshape", "elementwise_op",
         "frozen")
ELEMENTWISE_ACTIVATIONS = {
    "linear", "relu", "relu6", "sigmoid", "hard_sigmoid", "tanh", "swish", "silu", "elu", "selu", "gelu",
    "softplus", "softsign", "exponential", "mish", "hard_swish", "hard_silu",
}
# Ops written directly on Keras tensors (tf_keras wraps them in TFOpLambda) that act per element.
ELEMENTWISE_OPS = {
    "__operators__.add", "math.add", "math.subtract", "math.multiply", "math.truediv", "math.divide",
    "nn.relu", "nn.relu6", "math.sigmoid", "nn.sigmoid", "math.tanh", "nn.swish", "nn.silu", "math.maximum",
    "math.minimum", "clip_by_value", "nn.leaky_relu", "nn.elu", "nn.gelu",
}


def weight_name(variable) -> str:
    """A layer weight's own name (``kernel``, ``bias``, ``gamma``, ...) without its layer scope and ``:0``."""
    return variable.name.split("/")[-1].split(":")[0]


def weight_names(layer) -> list[str]:
    """``layer``'s weight names in ``get_weights()`` order."""
    return [weight_name(w) for w in layer.weights]


@dataclass(frozen=True)
class Axes:
    """Where a weight holds channels: ``in_axis`` indexes the layer's input channels, ``out_axis`` its output
    channels (negative axes; None: not on that side). ``in_expanded``: the input axis holds ``C_in * multiplier``
    channels, ``c*m + j`` for input channel ``c`` (a separable conv's pointwise kernel)."""

    in_axis: int | None
    out_axis: int | None
    in_expanded: bool = False


_KERNEL = Axes(-2, -1)  # (..., in, out): Conv*, Dense
_KERNEL_TRANSPOSED = Axes(-1, -2)  # (..., out, in): Conv*Transpose
_DEPTHWISE_KERNEL = Axes(-2, None)  # (..., in, multiplier): its outputs follow its inputs
_POINTWISE_KERNEL = Axes(-2, -1, in_expanded=True)
_PER_CHANNEL = Axes(None, -1)  # biases and per-channel parameters on the last axis


# cost formulas: (layer, input shape, output shape) -> (mac, weights, bias, internal activation elements)

def _channel_axis(layer) -> int:
    return 1 if getattr(layer, "data_format", "channels_last") == "channels_first" else -1


def _spatial(shape: Sequence[int], layer) -> list[int]:
    return list(shape[2:]) if _channel_axis(layer) == 1 else list(shape[1:-1])


def _bias(layer, c_out: int) -> int:
    return c_out if layer.use_bias else 0


def _dense_cost(layer, in_shape, out_shape):
    positions = math.prod(in_shape[1:-1])
    weights = in_shape[-1] * out_shape[-1]
    return weights * positions, weights, _bias(layer, out_shape[-1]), 0


def _conv_dims(layer, in_shape, out_shape):
    """(C_in, C_out, kernel elements, output positions)."""
    axis = _channel_axis(layer)
    return in_shape[axis], out_shape[axis], math.prod(layer.kernel_size), math.prod(_spatial(out_shape, layer))


def _conv_cost(layer, in_shape, out_shape):
    c_in, c_out, k, out_positions = _conv_dims(layer, in_shape, out_shape)
    groups = getattr(layer, "groups", 1) or 1
    weights = k * (c_in // groups) * c_out
    return weights * out_positions, weights, _bias(layer, c_out), 0


def _transposed_cost(layer, in_shape, out_shape):
    c_in, c_out, k, _ = _conv_dims(layer, in_shape, out_shape)
    weights = k * c_in * c_out
    return weights * math.prod(_spatial(in_shape, layer)), weights, _bias(layer, c_out), 0


def _depthwise_cost(layer, in_shape, out_shape):
    c_in, c_out, k, out_positions = _conv_dims(layer, in_shape, out_shape)
    weights = k * c_in * layer.depth_multiplier
    return weights * out_positions, weights, _bias(layer, c_out), 0


def _separable_cost(layer, in_shape, out_shape):
    c_in, c_out, k, out_positions = _conv_dims(layer, in_shape, out_shape)
    mid = c_in * layer.depth_multiplier
    weights = k * mid + mid * c_out
    return weights * out_positions, weights, _bias(layer, c_out), 2 * mid * out_positions


# config resizing: (config, kept output channels) -> config of the slimmer copy

def _set_width(key: str) -> Callable[[dict, Sequence[int]], dict]:
    def resize(config: dict, keep_out) -> dict:
        return {**config, key: len(keep_out)}

    resize.__name__ = f"set_{key}"
    return resize


def _reshape_target(config: dict, keep_out) -> dict:
    return {**config, "target_shape": tuple(config["target_shape"][:-1]) + (len(keep_out),)}


def _select_rgb_mean(config: dict, keep_out) -> dict:
    return {**config, "rgb_mean": [config["rgb_mean"][i] for i in keep_out]}


# conditions under which a layer of a kind is frozen after all: layer -> reason, or None

def _grouped(layer) -> str | None:
    if getattr(layer, "groups", 1) not in (1, None):
        return f"{type(layer).__name__} '{layer.name}' is a grouped convolution (groups={layer.groups})"
    return None


def _normalises_other_axis(layer) -> str | None:
    axis = layer.axis if isinstance(layer.axis, int) else (layer.axis[0] if len(layer.axis) == 1 else None)
    if axis not in (-1, 3) and not (axis is not None and axis == len(layer.input_shape) - 1):
        return f"BatchNormalization '{layer.name}' normalises axis {layer.axis}"
    return None


def _mixing_activation(layer) -> str | None:
    act = getattr(layer.activation, "__name__", "")
    return None if act in ELEMENTWISE_ACTIVATIONS else f"Activation '{layer.name}' ({act}) mixes channels"


def _across_channels(layer) -> str:
    return f"Softmax '{layer.name}' normalises across channels"


def _unknown(layer) -> str:
    return f"edgeprune cannot reason about channels of {type(layer).__name__} '{layer.name}'"


def _not_elementwise(layer) -> str | None:
    return None if getattr(layer, "symbol", None) in ELEMENTWISE_OPS else _unknown(layer)


@dataclass(frozen=True, eq=False)
class LayerKind:
    """One entry of the table; every field is given explicitly in :data:`LAYER_KINDS`."""

    name: str
    types: tuple  # tf_keras classes (matched with isinstance, subclasses included), or class names as strings
    role: str  # one of ROLES
    frozen_if: Callable | None  # layer -> why this layer is frozen after all (or None); None: never
    weights: Mapping[str, Axes]  # weight name -> its channel axes; every weight the kind's layers have
    resize: Callable | None  # (config, keep_out) -> config of a copy with those output channels; None: unchanged
    cost: Callable | None  # (layer, in_shape, out_shape) -> (mac, weights, bias, internal); None: not costed
    tflite_op: str | None  # the TFLite builtin op it becomes; None: not named (the default roofline prices it)
    tflite_ops: int  # how many conv ops the TFLite converter emits for one layer (costed kinds); 0: not costed
    converted_away: bool  # the TFLite converter removes it (an inference no-op): no op, no latency
    tiled: bool  # its TFLite kernel computes output channels in tiles (the latency model's channel tile)
    norm_weight: str | None  # the weight whose per-output-channel norms score its filters; None: not a producer

    @property
    def costed(self) -> bool:
        return self.cost is not None


def _kind(name, types, role, *, frozen_if=None, weights=None, resize=None, cost=None, tflite_op=None,
          tflite_ops=0, converted_away=False, tiled=False, norm_weight=None) -> LayerKind:
    return LayerKind(name, tuple(types), role, frozen_if, MappingProxyType(dict(weights or {})), resize, cost,
                     tflite_op, tflite_ops, converted_away, tiled, norm_weight)


def _conv_kind(name, types, kernel: Axes, cost, tflite_op, *, width="filters") -> LayerKind:
    return _kind(name, types, "mixing", frozen_if=_grouped, weights={"kernel": kernel, "bias": _PER_CHANNEL},
                 resize=_set_width(width), cost=cost, tflite_op=tflite_op, tflite_ops=1, tiled=True,
                 norm_weight="kernel")


def _preserving(name, types, tflite_op=None, **fields) -> LayerKind:
    return _kind(name, types, "preserving", tflite_op=tflite_op, **fields)


# Ordered: the first entry whose types match a layer is its kind, so subclasses come before their bases
# (DepthwiseConv2D, SeparableConv2D and the transposed convs are Conv subclasses in tf_keras).
LAYER_KINDS: tuple[LayerKind, ...] = (
    _kind("separable_conv", (L.SeparableConv1D, L.SeparableConv2D), "mixing", frozen_if=_grouped,
          weights={"depthwise_kernel": _DEPTHWISE_KERNEL, "pointwise_kernel": _POINTWISE_KERNEL,
                   "bias": _PER_CHANNEL},
          resize=_set_width("filters"), cost=_separable_cost, tflite_op="CONV_2D", tflite_ops=2, tiled=True,
          norm_weight="pointwise_kernel"),  # the converter emits a DEPTHWISE_CONV_2D and a pointwise CONV_2D
    _kind("depthwise_conv", (L.DepthwiseConv1D, L.DepthwiseConv2D), "depthwise",
          weights={"depthwise_kernel": _DEPTHWISE_KERNEL, "bias": _PER_CHANNEL}, cost=_depthwise_cost,
          tflite_op="DEPTHWISE_CONV_2D", tflite_ops=1),
    _conv_kind("transposed_conv", (L.Conv1DTranspose, L.Conv2DTranspose), _KERNEL_TRANSPOSED, _transposed_cost,
               "TRANSPOSE_CONV"),
    _conv_kind("transposed_conv_3d", (L.Conv3DTranspose,), _KERNEL_TRANSPOSED, _transposed_cost,
               "CONV_3D_TRANSPOSE"),
    _conv_kind("conv", (L.Conv1D, L.Conv2D), _KERNEL, _conv_cost, "CONV_2D"),
    _conv_kind("conv_3d", (L.Conv3D,), _KERNEL, _conv_cost, "CONV_3D"),
    _conv_kind("dense", (L.Dense,), _KERNEL, _dense_cost, "FULLY_CONNECTED", width="units"),
    _preserving("batch_norm", (L.BatchNormalization,), "MUL", frozen_if=_normalises_other_axis,
                weights=dict.fromkeys(("gamma", "beta", "moving_mean", "moving_variance"), _PER_CHANNEL)),
    _preserving("prelu", (L.PReLU,), "PRELU", weights={"alpha": _PER_CHANNEL}),
    _preserving("relu", (L.ReLU,), "RELU"),
    _preserving("leaky_relu", (L.LeakyReLU,), "LEAKY_RELU"),
    _preserving("elu", (L.ELU,), "ELU"),
    _preserving("thresholded_relu", (L.ThresholdedReLU,)),
    _preserving("activation", (L.Activation,), frozen_if=_mixing_activation),
    _preserving("inference_no_op", (L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D,
                                    L.GaussianNoise, L.GaussianDropout, L.AlphaDropout, L.ActivityRegularization),
                converted_away=True),
    _preserving("max_pool_2d", (L.MaxPooling2D,), "MAX_POOL_2D"),
    _preserving("average_pool_2d", (L.AveragePooling2D,), "AVERAGE_POOL_2D"),
    _preserving("global_average_pool_2d", (L.GlobalAveragePooling2D,), "MEAN"),
    _preserving("pooling", (L.MaxPooling1D, L.MaxPooling3D, L.AveragePooling1D, L.AveragePooling3D,
                            L.GlobalAveragePooling1D, L.GlobalAveragePooling3D, L.GlobalMaxPooling1D,
                            L.GlobalMaxPooling2D, L.GlobalMaxPooling3D)),
    _preserving("zero_padding_2d", (L.ZeroPadding2D,), "PAD"),
    _preserving("padding_cropping", (L.ZeroPadding1D, L.ZeroPadding3D, L.Cropping1D, L.Cropping2D, L.Cropping3D)),
    _preserving("upsampling_2d", (L.UpSampling2D,), "RESIZE_NEAREST_NEIGHBOR"),
    _preserving("upsampling", (L.UpSampling1D, L.UpSampling3D)),
    _preserving("residual_scale", (ResidualScale,), "MUL"),
    _preserving("mean_shift", (MeanShift,), "ADD", resize=_select_rgb_mean),
    _kind("softmax", (L.Softmax,), "frozen", frozen_if=_across_channels, tflite_op="SOFTMAX"),
    _kind("add", (L.Add,), "merge", tflite_op="ADD"),
    _kind("subtract", (L.Subtract,), "merge", tflite_op="SUB"),
    _kind("multiply", (L.Multiply,), "merge", tflite_op="MUL"),
    _kind("maximum", (L.Maximum,), "merge", tflite_op="MAXIMUM"),
    _kind("minimum", (L.Minimum,), "merge", tflite_op="MINIMUM"),
    _kind("average", (L.Average,), "merge"),
    _kind("concatenate", (L.Concatenate,), "concat", tflite_op="CONCATENATION"),
    _kind("depth_to_space", (DepthToSpace,), "depth_to_space", tflite_op="DEPTH_TO_SPACE"),
    _kind("reshape", (L.Reshape,), "reshape", resize=_reshape_target, tflite_op="RESHAPE"),
    _kind("elementwise_op", ("TFOpLambda",), "elementwise_op", frozen_if=_not_elementwise),
)
UNKNOWN = _kind("unknown", (), "frozen", frozen_if=_unknown)  # every layer type the table does not list

_BY_NAME = {t if isinstance(t, str) else t.__name__: kind for kind in reversed(LAYER_KINDS) for t in kind.types}


@lru_cache(maxsize=None)
def kind_of_type(cls: type) -> LayerKind:
    """The table entry of layer class ``cls`` (the first whose types it is, or subclasses), else :data:`UNKNOWN`."""
    for kind in LAYER_KINDS:
        for t in kind.types:
            if (cls.__name__ == t) if isinstance(t, str) else issubclass(cls, t):
                return kind
    return UNKNOWN


def kind_of(layer) -> LayerKind:
    """``layer``'s entry in the table."""
    return kind_of_type(type(layer))


def kind_named(type_name: str) -> LayerKind:
    """The entry of the layer class called ``type_name`` (as a CostReport names layer types), else UNKNOWN."""
    return _BY_NAME.get(type_name, UNKNOWN)


def types_with_role(role: str) -> tuple:
    """Every class the table gives ``role`` (its static role, before any frozen_if condition)."""
    return tuple(t for kind in LAYER_KINDS if kind.role == role for t in kind.types if not isinstance(t, str))


MIXING = types_with_role("mixing")

# Kinds that map an all-zero input channel to an all-zero output channel (pooling, padding, resampling, ReLU-like
# activations, merges of zeros, channel moves), and the activations f with f(0) = 0. A channel whose producers write
# only zeros stays zero through these, so it can be removed exactly (coarse kernel pruning); batch norm, a mean
# shift or a sigmoid would turn it into a constant, which removing would change.
ZERO_PRESERVING_KINDS = frozenset({
    "relu", "leaky_relu", "elu", "prelu", "thresholded_relu", "inference_no_op", "max_pool_2d", "average_pool_2d",
    "global_average_pool_2d", "pooling", "zero_padding_2d", "padding_cropping", "upsampling_2d", "upsampling",
    "residual_scale", "add", "subtract", "multiply", "maximum", "minimum", "average", "concatenate",
    "depth_to_space", "reshape"})
ZERO_PRESERVING_ACTIVATIONS = frozenset({
    "linear", "relu", "relu6", "tanh", "swish", "silu", "elu", "selu", "gelu", "softsign", "mish", "hard_swish",
    "hard_silu", "leaky_relu"})


def keeps_zero(layer) -> bool:
    """Whether ``layer`` turns an all-zero channel into an all-zero channel (a mixing or ``activation`` layer: when
    its activation does; see :data:`ZERO_PRESERVING_KINDS`)."""
    kind = kind_of(layer)
    if kind.role == "mixing" or kind.name == "activation":
        activation = getattr(layer, "activation", None)
        return getattr(activation, "__name__", "linear") in ZERO_PRESERVING_ACTIVATIONS
    return kind.name in ZERO_PRESERVING_KINDS


@dataclass(frozen=True)
class Role:
    kind: str
    reason: str = ""


def _channels_last(layer) -> bool:
    return getattr(layer, "data_format", "channels_last") != "channels_first"


def role_of(layer) -> Role:
    """How ``layer`` maps channels (see the module docstring); ``frozen`` roles say why."""
    if not _channels_last(layer):
        return Role("frozen", f"{type(layer).__name__} '{layer.name}' is channels_first")
    kind = kind_of(layer)
    reason = kind.frozen_if(layer) if kind.frozen_if else None
    if reason or kind.role == "frozen":
        return Role("frozen", reason or "")
    return Role(kind.role)


def _expanded(index, multiplier: int) -> np.ndarray:
    """The channels ``c*m + j`` (j < m) of input channels ``index``."""
    return (np.asarray(index)[:, None] * multiplier + np.arange(multiplier)[None, :]).ravel()


def _on_axis(axis: int, index) -> tuple:
    return (Ellipsis, index) + (slice(None),) * (-axis - 1)


def channel_indices(layer, in_index, out_index) -> list[tuple[str, tuple]]:
    """(weight name, numpy index) pairs that select input channels ``in_index`` and output channels ``out_index``
    of ``layer``'s weights, one pair per channel axis (an index that is None selects nothing on its side). Names
    are those the kind can have; a layer built without one (``use_bias=False``) has no such weight."""
    pairs = []
    for name, axes in kind_of(layer).weights.items():
        if axes.in_axis is not None and in_index is not None:
            index = _expanded(in_index, layer.depth_multiplier) if axes.in_expanded else in_index
            pairs.append((name, _on_axis(axes.in_axis, index)))
        if axes.out_axis is not None and out_index is not None:
            pairs.append((name, _on_axis(axes.out_axis, out_index)))
    return pairs


def _check_weights_known(layer) -> None:
    known = kind_of(layer).weights
    for name in weight_names(layer):
        if name not in known:
            raise UnsupportedModelError(f"{type(layer).__name__} '{layer.name}' has a weight '{name}' whose channel "
                                        "axes edgeprune's layer table does not know: add it there, or leave this "
                                        "layer's channels unpruned")


def slice_weights(layer, weights: list, keep_in, keep_out) -> list:
    """``layer``'s weights (``get_weights()`` order) restricted to kept input / output channel indices."""
    _check_weights_known(layer)
    by_name = dict(zip(weight_names(layer), weights))
    for name, index in channel_indices(layer, keep_in, keep_out):
        if name in by_name:  # a layer may lack a weight its kind can have (no bias, BN without scale)
            by_name[name] = by_name[name][index]
    return [by_name[name] for name in weight_names(layer)]


def resized_config(layer, config: dict, keep_out) -> dict:
    """``layer``'s config for a slimmer copy whose output keeps channels ``keep_out``."""
    resize = kind_of(layer).resize
    return resize(config, keep_out) if resize else dict(config)



def filter_weight(layer) -> tuple[np.ndarray, int]:
    """The weight of a producer (mixing) layer whose per-output-channel filters score its channels, and the axis
    of that weight that holds the output channels."""
    kind = kind_of(layer)
    if kind.norm_weight is None:
        raise UnsupportedModelError(f"{type(layer).__name__} '{layer.name}' produces no filters to score")
    variable = next(w for w in layer.weights if weight_name(w) == kind.norm_weight)
    return variable.numpy(), kind.weights[kind.norm_weight].out_axis
