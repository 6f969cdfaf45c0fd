"""keras_models/layers.py: the registered layers behave like their TF ops and survive safe loading."""

import numpy as np
import pytest

from edgeprune.core.runtime import keras, tf
from edgeprune.core.modelio import load_model, save_model
from keras_models.layers import DepthToSpace, MeanShift, ResidualScale


@pytest.mark.parametrize("r", [2, 3])
def test_depth_to_space_is_tf_depth_to_space_with_tf_channel_order(r):
    x = np.random.rand(2, 3, 4, 2 * r * r).astype(np.float32)
    out = DepthToSpace(r)(x).numpy()
    np.testing.assert_array_equal(out, tf.nn.depth_to_space(x, r).numpy())
    # output channel c at sub-pixel (i, j) reads input channel (i*r + j) * C_out + c
    c_out = 2
    for i in range(r):
        for j in range(r):
            for c in range(c_out):
                np.testing.assert_array_equal(out[:, i::r, j::r, c], x[..., (i * r + j) * c_out + c])


def test_depth_to_space_shape_checks():
    layer = DepthToSpace(2, name="d2s")
    assert layer.compute_output_shape((1, 5, None, 8)).as_list() == [1, 10, None, 2]
    with pytest.raises(ValueError, match="d2s: 6 channels are not divisible by block_size\\^2 = 4"):
        layer.compute_output_shape((1, 5, 5, 6))
    with pytest.raises(ValueError, match="block_size must be an integer >= 2"):
        DepthToSpace(1)


def test_mean_shift_and_residual_scale():
    x = np.ones((1, 2, 2, 3), np.float32)
    np.testing.assert_allclose(MeanShift([0.1, 0.2, 0.3], sign=-1, rgb_range=255)(x)[0, 0, 0],
                               [1 - 25.5, 1 - 51, 1 - 76.5], rtol=1e-6)
    np.testing.assert_allclose(ResidualScale(0.25)(x).numpy(), 0.25 * x)
    with pytest.raises(ValueError, match="sign must be -1 or 1"):
        MeanShift([0.1], sign=0)
    with pytest.raises(ValueError, match="input has 3 channels but rgb_mean has 2"):
        MeanShift([0.1, 0.2])(x)


def test_all_three_round_trip_through_safe_loading(tmp_path):
    inputs = keras.Input((None, None, 4))
    x = MeanShift([0.1, 0.2, 0.3, 0.4], sign=1, name="shift")(inputs)
    x = ResidualScale(0.5, name="scale")(x)
    x = DepthToSpace(2, name="d2s")(x)
    model = keras.Model(inputs, x)
    loaded = load_model(save_model(model, tmp_path / "m.keras"))
    data = np.random.rand(1, 3, 3, 4).astype(np.float32)
    np.testing.assert_array_equal(model(data).numpy(), loaded(data).numpy())
    assert loaded.get_layer("shift").get_config()["rgb_mean"] == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_keras_models_depends_on_tf_keras_only():
    import subprocess
    import sys

    script = ("import sys, keras_models; keras_models.build_edsr(num_blocks=0, num_features=2); "
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('edgeprune', 'tensorflow_model_optimization'"
              ")))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
