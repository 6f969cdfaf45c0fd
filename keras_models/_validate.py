"""Argument checks shared by the model builders (raise ModelConfigError with what is supported)."""

from collections.abc import Sequence

import numpy as np
import tf_keras as keras

from keras_models.errors import ModelConfigError


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def widths(name: str, value, count: int) -> list[int]:
    """An int (same width everywhere) or a sequence of ``count`` positive ints."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != count:
            raise ModelConfigError(f"{name} must have {count} entries, got {len(value)}")
        return [positive_int(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [positive_int(name, value)] * count


def spatial_shape(value) -> tuple:
    """``(H, W)`` with positive ints or None (dynamic)."""
    if not isinstance(value, Sequence) or len(value) != 2:
        raise ModelConfigError(f"input_size must be (H, W) with ints or None, got {value!r}")
    for v in value:
        if v is not None:
            positive_int("input_size entries", v)
    return tuple(value)


class KernelInitializers:
    """Keras' default kernel initializer (Glorot uniform), each with its own explicit seed drawn from a local
    generator seeded with ``seed``: a build is reproducible per seed and never draws from (or reseeds) Python's,
    NumPy's or TensorFlow's global generators. Biases keep Keras' default (zeros)."""

    def __init__(self, seed: int):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ModelConfigError(f"seed must be an integer >= 0, got {seed!r}")
        self._rng = np.random.default_rng(int(seed))

    def next(self) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=int(self._rng.integers(2**31 - 1)))
