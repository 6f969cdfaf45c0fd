"""Reference image-quality CNNs in tf_keras (Keras 2): EDSR (super-resolution) and SID (low-light raw).

Importing this package registers the custom layers (DepthToSpace, MeanShift, ResidualScale) for safe loading. It
depends on tf_keras and TensorFlow only (not on edgeprune); a bad builder argument raises :class:`ModelConfigError`.
"""

from keras_models.edsr import build_edsr
from keras_models.errors import ModelConfigError
from keras_models.layers import CUSTOM_OBJECTS, DepthToSpace, MeanShift, ResidualScale
from keras_models.registry import REFERENCE_MODELS, ReferenceModel, build_reference, reference_names
from keras_models.sid import build_sid

__all__ = [
    "CUSTOM_OBJECTS", "DepthToSpace", "MeanShift", "ModelConfigError", "REFERENCE_MODELS", "ReferenceModel",
    "ResidualScale", "build_edsr", "build_reference", "build_sid", "reference_names",
]
