"""The declarative table: how each layer type relates its input channels to its output channels, and how its
weights are sliced when channels are removed.

Roles:
- ``mixing``: produces new output channels from all input channels (Conv*, Conv*Transpose, SeparableConv*,
  Dense). Its input and output channels are independent; both sides can be pruned.
- ``depthwise``: output channel ``c*m + j`` comes from input channel ``c`` (DepthwiseConv*, multiplier ``m``).
- ``preserving``: output channel ``c`` comes from input channel ``c`` only (BN, activations, pooling, padding,
  cropping, dropout, upsampling, reshape that keeps the last axis, ...).
- ``merge``: elementwise over several inputs (Add, Subtract, Multiply, Average, Maximum, Minimum).
- ``concat``: Concatenate; along the channel axis the output is the inputs' channels at increasing offsets.
- ``depth_to_space``: output channel ``c`` owns input channels ``k*C_out + c`` (TensorFlow's channel order).
- ``frozen``: anything else; none of its input or output channels can be pruned.
"""

from dataclasses import dataclass

from edgeprune.runtime import keras
from keras_models.layers import DepthToSpace, MeanShift, ResidualScale

L = keras.layers

DEPTHWISE = (L.DepthwiseConv1D, L.DepthwiseConv2D)
SEPARABLE = (L.SeparableConv1D, L.SeparableConv2D)  # not Conv2D subclasses in tf_keras
TRANSPOSED = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
MIXING = (L.Conv1D, L.Conv2D, L.Conv3D, L.Dense) + SEPARABLE + TRANSPOSED
PRESERVING = (
    L.BatchNormalization, L.ReLU, L.LeakyReLU, L.PReLU, L.ELU, L.ThresholdedReLU, L.Dropout, L.SpatialDropout1D,
    L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianNoise, L.GaussianDropout, L.AlphaDropout, L.ActivityRegularization,
    L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D,
    L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D, L.GlobalMaxPooling1D,
    L.GlobalMaxPooling2D, L.GlobalMaxPooling3D, L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D, L.Cropping1D,
    L.Cropping2D, L.Cropping3D, L.UpSampling1D, L.UpSampling2D, L.UpSampling3D, ResidualScale, MeanShift,
)
MERGE = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)
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


@dataclass(frozen=True)
class Role:
    kind: str
    reason: str = ""


def _channels_last(layer) -> bool:
    return getattr(layer, "data_format", "channels_last") != "channels_first"


def role_of(layer) -> Role:
    """How ``layer`` maps channels (see the module docstring); ``frozen`` roles say why."""
    name = type(layer).__name__
    if not _channels_last(layer):
        return Role("frozen", f"{name} '{layer.name}' is channels_first")
    if isinstance(layer, DEPTHWISE):
        return Role("depthwise")
    if isinstance(layer, MIXING):
        if getattr(layer, "groups", 1) not in (1, None):
            return Role("frozen", f"{name} '{layer.name}' is a grouped convolution (groups={layer.groups})")
        return Role("mixing")
    if isinstance(layer, L.BatchNormalization):
        axis = layer.axis if isinstance(layer.axis, int) else (layer.axis[0] if len(layer.axis) == 1 else None)
        if axis not in (-1, 3) and not (axis is not None and axis == len(layer.input_shape) - 1):
            return Role("frozen", f"BatchNormalization '{layer.name}' normalises axis {layer.axis}")
        return Role("preserving")
    if isinstance(layer, L.PReLU):
        return Role("preserving")
    if isinstance(layer, PRESERVING):
        return Role("preserving")
    if isinstance(layer, L.Activation):
        act = getattr(layer.activation, "__name__", "")
        if act in ELEMENTWISE_ACTIVATIONS:
            return Role("preserving")
        return Role("frozen", f"Activation '{layer.name}' ({act}) mixes channels")
    if isinstance(layer, L.Softmax):
        return Role("frozen", f"Softmax '{layer.name}' normalises across channels")
    if isinstance(layer, MERGE):
        return Role("merge")
    if isinstance(layer, L.Concatenate):
        return Role("concat")
    if isinstance(layer, DepthToSpace):
        return Role("depth_to_space")
    if isinstance(layer, L.Reshape):
        return Role("reshape")
    if type(layer).__name__ == "TFOpLambda" and getattr(layer, "symbol", None) in ELEMENTWISE_OPS:
        return Role("elementwise_op")
    return Role("frozen", f"edgeprune cannot reason about channels of {name} '{layer.name}'")


def slice_weights(layer, weights: list, keep_in, keep_out) -> list:
    """``layer``'s weights (``get_weights()`` order) restricted to kept input / output channel indices."""
    import numpy as np

    names = [w.name.split("/")[-1].split(":")[0] for w in layer.weights]
    out = []
    for name, w in zip(names, weights):
        if isinstance(layer, SEPARABLE):
            if name == "depthwise_kernel":
                w = w[..., keep_in, :]
            elif name == "pointwise_kernel":
                m = layer.depth_multiplier
                expanded = (np.asarray(keep_in)[:, None] * m + np.arange(m)[None, :]).ravel()
                w = w[..., expanded, :][..., keep_out]
            elif name == "bias":
                w = w[keep_out]
        elif isinstance(layer, DEPTHWISE):
            w = w[..., keep_in, :] if name == "depthwise_kernel" else w[keep_out]
        elif isinstance(layer, TRANSPOSED):
            w = w[..., keep_out, :][..., keep_in] if name == "kernel" else w[keep_out]
        elif isinstance(layer, MIXING):
            if name == "kernel":
                w = w[..., keep_in, :][..., keep_out]
            else:
                w = w[keep_out]
        else:  # per-channel parameters on the last axis (BatchNormalization, PReLU)
            w = w[..., keep_out]
        out.append(w)
    return out


def resized_config(layer, config: dict, keep_out) -> dict:
    """``layer``'s config for a slimmer copy whose output keeps channels ``keep_out``."""
    config = dict(config)
    n = len(keep_out)
    if isinstance(layer, DEPTHWISE):
        pass  # its width follows its input
    elif isinstance(layer, L.Dense):
        config["units"] = n
    elif isinstance(layer, MIXING):
        config["filters"] = n
    elif isinstance(layer, L.Reshape):
        config["target_shape"] = tuple(config["target_shape"][:-1]) + (n,)
    elif isinstance(layer, MeanShift):
        config["rgb_mean"] = [config["rgb_mean"][i] for i in keep_out]
    return config
