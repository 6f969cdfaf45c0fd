import numpy as np
import pytest

from edgeprune.runtime import keras, tf


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts with a clear Keras session and fixed seeds (layer names and weights are reproducible)."""
    keras.backend.clear_session()
    tf.random.set_seed(0)
    np.random.seed(0)
    yield


def single_layer_model(layer, input_shape):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, layer(inputs))
