"""EDSR: Enhanced Deep Residual Networks for Single Image Super-Resolution (Lim et al., CVPRW 2017).

The baseline single-scale model is 16 residual blocks of 64 features with no batch normalisation:

    sub_mean -> head (3x3, C->F) -> 16 x [conv1 3x3 F->B, ReLU, conv2 3x3 B->F, (x res_scale), + block input]
    -> body_conv (3x3 F->F) -> + head output -> upsampler -> tail (3x3 U->C) -> add_mean

Upsampler: for scale 2^n, n stages of conv 3x3 -> U*4 and depth-to-space(2); for scale 3, one conv -> U*9 and
depth-to-space(3). Input and output are RGB in [0, 1] (``rgb_range=1``); the DIV2K mean is subtracted by a
``MeanShift`` layer, as in the reference code. The ReLU is fused into ``conv1`` (TFLite fuses it anyway).

Layer names: ``sub_mean, head, block{i:02d}_conv1, block{i:02d}_conv2, [block{i:02d}_scale], block{i:02d}_add,
body_conv, body_add, up{s}_conv, up{s}_shuffle, tail, add_mean``.
"""

from collections.abc import Sequence

import tf_keras as keras
from keras_models.errors import ModelConfigError
from keras_models import _validate
from keras_models.layers import DepthToSpace, MeanShift, ResidualScale

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def upsample_factors(scale: int) -> list[int]:
    """Depth-to-space factors of the upsampler: ``[3]`` for x3, ``[2] * n`` for x2^n."""
    if isinstance(scale, int) and not isinstance(scale, bool):
        if scale == 3:
            return [3]
        if scale >= 2 and scale & (scale - 1) == 0:
            return [2] * (scale.bit_length() - 1)
    raise ModelConfigError(f"scale {scale!r} is not supported. Supported scales: 2^n and 3")


def build_edsr(
    scale: int = 2,
    num_blocks: int = 16,
    num_features: int = 64,
    block_features: int | Sequence[int] | None = None,
    upsample_features: int | Sequence[int] | None = None,
    in_channels: int = 3,
    res_scale: float = 1.0,
    rgb_range: float = 1.0,
    rgb_mean: Sequence[float] | None = DIV2K_RGB_MEAN,
    input_size: tuple = (None, None),
    name: str = "edsr",
    seed: int = 0,
) -> keras.Model:
    """Builds EDSR as a functional tf_keras model.

    ``num_features`` is the residual trunk width (head, every ``conv2``, ``body_conv``); ``block_features`` the
    width of each block's ``conv1`` (one int or one per block); ``upsample_features`` the width after each
    depth-to-space stage. Defaults give EDSR-baseline x2 (1,367,424 kernel weights). The random initial weights are
    reproducible per ``seed`` (each kernel initializer gets its own explicit seed; no global generator is used).
    """
    factors = upsample_factors(scale)
    _validate.positive_int("num_features", num_features)
    _validate.positive_int("in_channels", in_channels)
    if isinstance(num_blocks, bool) or not isinstance(num_blocks, int) or num_blocks < 0:
        raise ModelConfigError(f"num_blocks must be an integer >= 0, got {num_blocks!r}")
    inner = _validate.widths("block_features", num_features if block_features is None else block_features,
                             num_blocks)
    up_widths = _validate.widths("upsample_features", num_features if upsample_features is None
                                 else upsample_features, len(factors))
    height, width = _validate.spatial_shape(input_size)
    if rgb_mean is not None and len(rgb_mean) != in_channels:
        raise ModelConfigError(f"rgb_mean has {len(rgb_mean)} entries but in_channels is {in_channels}")

    kernels = _validate.KernelInitializers(seed)

    def conv(filters, layer_name, activation=None):
        return keras.layers.Conv2D(filters, 3, padding="same", activation=activation, name=layer_name,
                                   kernel_initializer=kernels.next())

    inputs = keras.Input((height, width, in_channels), name="lr")
    x = inputs
    if rgb_mean is not None:
        x = MeanShift(rgb_mean, sign=-1, rgb_range=rgb_range, name="sub_mean")(x)
    head = conv(num_features, "head")(x)
    x = head
    for i in range(num_blocks):
        y = conv(inner[i], f"block{i:02d}_conv1", activation="relu")(x)
        y = conv(num_features, f"block{i:02d}_conv2")(y)
        if res_scale != 1.0:
            y = ResidualScale(res_scale, name=f"block{i:02d}_scale")(y)
        x = keras.layers.Add(name=f"block{i:02d}_add")([x, y])
    x = conv(num_features, "body_conv")(x)
    x = keras.layers.Add(name="body_add")([x, head])
    for s, (r, w) in enumerate(zip(factors, up_widths)):
        x = conv(w * r * r, f"up{s}_conv")(x)
        x = DepthToSpace(r, name=f"up{s}_shuffle")(x)
    x = conv(in_channels, "tail")(x)
    if rgb_mean is not None:
        x = MeanShift(rgb_mean, sign=1, rgb_range=rgb_range, name="add_mean")(x)
    return keras.Model(inputs, x, name=name)
