import numpy as np
import pytest

from edgeprune.core.runtime import keras
from edgeprune.core.modelio import load_model, save_model
from keras_models import ModelConfigError, build_edsr, build_reference
from keras_models.edsr import upsample_factors


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
@pytest.mark.parametrize("size", [(7, 9), (16, 16)])
def test_output_shape_for_sizes_and_scales(scale, size):
    model = build_edsr(scale=scale, num_blocks=1, num_features=4)
    out = model(np.random.rand(1, *size, 3).astype(np.float32))
    assert out.shape == (1, size[0] * scale, size[1] * scale, 3)
    assert not np.isnan(out.numpy()).any()


def test_baseline_layout_and_weight_count():
    model = build_reference("edsr")
    names = [layer.name for layer in model.layers]
    assert names[:4] == ["lr", "sub_mean", "head", "block00_conv1"]
    assert names[-5:] == ["body_add", "up0_conv", "up0_shuffle", "tail", "add_mean"]
    assert sum(n.endswith("_conv1") for n in names) == 16
    kernels = sum(int(np.prod(layer.kernel.shape)) for layer in model.layers if hasattr(layer, "kernel"))
    assert kernels == 1_367_424
    assert model.get_layer("up0_conv").filters == 256


def test_every_width_is_a_parameter():
    model = build_edsr(num_blocks=3, num_features=8, block_features=[5, 6, 7], upsample_features=3, scale=4)
    assert [model.get_layer(f"block{i:02d}_conv1").filters for i in range(3)] == [5, 6, 7]
    assert [model.get_layer(f"up{s}_conv").filters for s in range(2)] == [12, 12]
    assert model.get_layer("tail").input_shape[-1] == 3
    assert model.output_shape == (None, None, None, 3)


def test_res_scale_adds_a_serializable_scale_layer_and_no_lambda(tmp_path):
    model = build_edsr(num_blocks=2, num_features=4, res_scale=0.1)
    assert model.get_layer("block01_scale").scale == pytest.approx(0.1)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    x = np.random.rand(1, 6, 5, 3).astype(np.float32)
    loaded = load_model(save_model(model, tmp_path / "edsr.keras"))
    np.testing.assert_array_equal(model(x).numpy(), loaded(x).numpy())
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_mean_shift_round_trip_is_identity_without_the_body():
    model = build_edsr(num_blocks=0, num_features=3, scale=2)
    # head + body conv outputs exactly zero when their kernels and biases are zero: output = add_mean(tail(0)).
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    out = model(np.random.rand(1, 4, 4, 3).astype(np.float32)).numpy()
    np.testing.assert_allclose(out[0, 0, 0], [0.4488, 0.4371, 0.4040], rtol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"scale": 5}, "scale 5 is not supported. Supported scales: 2^n and 3"),
    ({"scale": 1}, "scale 1 is not supported"),
    ({"num_blocks": -1}, "num_blocks must be an integer >= 0, got -1"),
    ({"num_features": 0}, "num_features must be a positive integer, got 0"),
    ({"num_blocks": 2, "block_features": [4]}, "block_features must have 2 entries, got 1"),
    ({"in_channels": 1}, "rgb_mean has 3 entries but in_channels is 1"),
])
def test_bad_arguments_say_what_is_supported(kwargs, message):
    with pytest.raises(ModelConfigError, match=message.replace("^", r"\^").replace(".", r"\.")):
        build_edsr(**kwargs)


def test_upsample_factors():
    assert upsample_factors(2) == [2] and upsample_factors(3) == [3] and upsample_factors(8) == [2, 2, 2]


def test_initial_weights_are_reproducible_per_seed_without_the_global_generators():
    import random

    state = random.getstate(), np.random.get_state()[1].copy()
    a, b, c = (build_edsr(num_blocks=1, num_features=4, seed=s) for s in (0, 0, 1))
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_layer("head").kernel.numpy(), c.get_layer("head").kernel.numpy())
    assert not np.array_equal(a.get_layer("head").kernel.numpy(), a.get_layer("body_conv").kernel.numpy()[..., :4])
    assert random.getstate() == state[0] and np.array_equal(np.random.get_state()[1], state[1])
    with pytest.raises(ModelConfigError, match="seed must be an integer >= 0, got -1"):
        build_edsr(seed=-1)
