"""SID: the U-Net of "Learning to See in the Dark" (Chen, Chen, Xu, Koltun, CVPR 2018), Sony model.

Input: Bayer raw packed to 4 channels (H/2 x W/2 x 4), black level subtracted, normalised to [0, 1], multiplied
by the exposure ratio (capped at 300) and clipped to 1. Output: RGB at full sensor resolution (H x W x 3) via a
1x1 conv to 12 channels and depth-to-space(2).

Encoder level l = 1..5: two 3x3 convs (``conv{l}_1``, ``conv{l}_2``) each followed by a LeakyReLU(0.2)
(``conv{l}_1_lrelu``...), then 2x2 max-pool ``pool{l}`` (levels 1-4). Decoder level l = 6..9: 2x2 stride-2
transposed conv without bias ``up{l}`` (as in the reference code), ``concat{l}`` = [upsampled, encoder skip]
(that order, as in the reference), two 3x3 convs with LeakyReLU; then ``conv10`` (1x1, 12) and ``depth_to_space``.
The spatial input size must be a multiple of 16 (four poolings), since the skips are concatenated.
"""

from collections.abc import Sequence

import tf_keras as keras
from keras_models.errors import ModelConfigError
from keras_models import _validate
from keras_models.layers import DepthToSpace

SID_FEATURES = (32, 64, 128, 256, 512)
INPUT_MULTIPLE = 16


def build_sid(
    features: Sequence[int] = SID_FEATURES,
    in_channels: int = 4,
    out_channels: int = 3,
    upscale: int = 2,
    leaky_slope: float = 0.2,
    conv_widths: dict[str, int] | None = None,
    input_size: tuple = (None, None),
    name: str = "sid",
    seed: int = 0,
) -> keras.Model:
    """Builds the SID U-Net as a functional tf_keras model.

    ``features`` are the five level widths (default 32/64/128/256/512). ``conv_widths`` overrides the output
    width of individual layers by name (for example ``{"conv1_1": 24, "up6": 200}``); ``conv10`` is fixed at
    ``out_channels * upscale**2``. Defaults give the Sony model (7,757,312 kernel weights). The random initial
    weights are reproducible per ``seed`` (each kernel initializer gets its own explicit seed; no global generator).
    """
    if len(features) != 5:
        raise ModelConfigError(f"features must list 5 level widths, got {len(features)}")
    features = [_validate.positive_int(f"features[{i}]", f) for i, f in enumerate(features)]
    _validate.positive_int("in_channels", in_channels)
    _validate.positive_int("out_channels", out_channels)
    if isinstance(upscale, bool) or not isinstance(upscale, int) or upscale < 2:
        raise ModelConfigError(f"upscale must be an integer >= 2, got {upscale!r}")
    height, width = _validate.spatial_shape(input_size)
    for v in (height, width):
        if v is not None and v % INPUT_MULTIPLE:
            raise ModelConfigError(f"SID input height and width must be multiples of {INPUT_MULTIPLE}, got "
                                       f"{height}x{width}")
    overrides = dict(conv_widths or {})
    known = {f"conv{l}_{k}" for l in range(1, 10) for k in (1, 2)} | {f"up{l}" for l in range(6, 10)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ModelConfigError(f"conv_widths names unknown layers {unknown}; known: conv1_1..conv9_2, up6..up9")

    kernels = _validate.KernelInitializers(seed)

    def width_of(layer_name, default):
        return _validate.positive_int(f"conv_widths[{layer_name!r}]", overrides.get(layer_name, default))

    def double_conv(x, level, filters):
        for k in (1, 2):
            layer_name = f"conv{level}_{k}"
            x = keras.layers.Conv2D(width_of(layer_name, filters), 3, padding="same", name=layer_name,
                                    kernel_initializer=kernels.next())(x)
            x = keras.layers.LeakyReLU(leaky_slope, name=f"{layer_name}_lrelu")(x)
        return x

    inputs = keras.Input((height, width, in_channels), name="raw_packed")
    x = inputs
    skips = []
    for level, filters in enumerate(features, start=1):
        x = double_conv(x, level, filters)
        if level < 5:
            skips.append(x)
            x = keras.layers.MaxPooling2D(2, name=f"pool{level}")(x)
    for level, filters, skip in zip(range(6, 10), reversed(features[:4]), reversed(skips)):
        x = keras.layers.Conv2DTranspose(width_of(f"up{level}", filters), 2, strides=2, use_bias=False,
                                         name=f"up{level}", kernel_initializer=kernels.next())(x)
        x = keras.layers.Concatenate(name=f"concat{level}")([x, skip])
        x = double_conv(x, level, filters)
    x = keras.layers.Conv2D(out_channels * upscale * upscale, 1, name="conv10", kernel_initializer=kernels.next())(x)
    x = DepthToSpace(upscale, name="depth_to_space")(x)
    return keras.Model(inputs, x, name=name)
