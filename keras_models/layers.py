"""Serializable layers the reference models need (no Lambda: Lambda layers are unsafe to load and not portable).

All are registered under the ``edgeprune`` package name, so ``keras.models.load_model(..., safe_mode=True)``
restores them once :mod:`keras_models` is imported.
"""

from collections.abc import Sequence

import tensorflow as tf
import tf_keras as keras

_PACKAGE = "edgeprune"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DepthToSpace(keras.layers.Layer):
    """Rearranges channels into spatial blocks (pixel shuffle), ``tf.nn.depth_to_space`` in NHWC.

    Channel order is TensorFlow's, not PyTorch's ``PixelShuffle``: output channel ``c`` at sub-pixel ``(i, j)``
    reads input channel ``(i * r + j) * C_out + c``. So one output channel owns the ``r*r`` input channels
    ``{c, C_out + c, 2*C_out + c, ...}``; pruning must remove them together.
    """

    def __init__(self, block_size: int, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(block_size, int) or block_size < 2:
            raise ValueError(f"block_size must be an integer >= 2, got {block_size!r}")
        self.block_size = block_size

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape).as_list()
        r = self.block_size
        n, h, w, c = shape
        if c is not None and c % (r * r):
            raise ValueError(f"{self.name}: {c} channels are not divisible by block_size^2 = {r * r}")
        return tf.TensorShape(
            [n, None if h is None else h * r, None if w is None else w * r, None if c is None else c // (r * r)]
        )

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MeanShift(keras.layers.Layer):
    """Adds ``sign * rgb_range * rgb_mean`` per channel (EDSR's MeanShift with unit std); no trainable weights."""

    def __init__(self, rgb_mean: Sequence[float], sign: int = -1, rgb_range: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if sign not in (-1, 1):
            raise ValueError(f"sign must be -1 or 1, got {sign!r}")
        self.rgb_mean = [float(m) for m in rgb_mean]
        self.sign = int(sign)
        self.rgb_range = float(rgb_range)

    def build(self, input_shape):
        channels = tf.TensorShape(input_shape)[-1]
        if channels is not None and channels != len(self.rgb_mean):
            raise ValueError(f"{self.name}: input has {channels} channels but rgb_mean has {len(self.rgb_mean)}")
        super().build(input_shape)

    def call(self, inputs):
        shift = tf.constant([self.sign * self.rgb_range * m for m in self.rgb_mean], dtype=inputs.dtype)
        return inputs + shift

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)

    def get_config(self):
        return {**super().get_config(), "rgb_mean": self.rgb_mean, "sign": self.sign, "rgb_range": self.rgb_range}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ResidualScale(keras.layers.Layer):
    """Multiplies by a constant (EDSR's ``res_scale``, 0.1 in EDSR-large); channel-wise elementwise."""

    def __init__(self, scale: float, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        return inputs * tf.constant(self.scale, dtype=inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


CUSTOM_OBJECTS = {cls.__name__: cls for cls in (DepthToSpace, MeanShift, ResidualScale)}
