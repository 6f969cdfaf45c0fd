import os
import subprocess
import sys

from edgeprune.runtime import keras, tf


def test_keras_is_tf_keras_everywhere():
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.keras.compat import keras as tfmot_keras

    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
    assert keras.__version__.startswith("2.")
    assert tfmot_keras.layers.Conv2D is keras.layers.Conv2D
    assert tf.keras.layers.Conv2D is keras.layers.Conv2D
    assert tfmot.sparsity.keras.prune_low_magnitude is not None


def test_a_conflicting_setting_is_an_error_with_advice():
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "0"}
    proc = subprocess.run([sys.executable, "-c", "import edgeprune.backend"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "TF_USE_LEGACY_KERAS='0' is set, but edgeprune needs Keras 2 (tf_keras): unset it or set it to 1" in proc.stderr
