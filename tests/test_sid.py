import numpy as np
import pytest

from edgeprune.core.runtime import keras
from edgeprune.core.modelio import load_model, save_model
from keras_models import ModelConfigError, build_reference, build_sid

TINY = (2, 3, 4, 5, 6)


@pytest.mark.parametrize("size", [(16, 16), (32, 48), (64, 16)])
def test_output_is_rgb_at_twice_the_packed_size(size):
    model = build_sid(features=TINY)
    out = model(np.random.rand(1, *size, 4).astype(np.float32))
    assert out.shape == (1, 2 * size[0], 2 * size[1], 3)


def test_sony_layout_and_weight_count():
    model = build_reference("sid")
    kernels = sum(int(np.prod(layer.kernel.shape)) for layer in model.layers if hasattr(layer, "kernel"))
    assert kernels == 7_757_312
    assert model.get_layer("up6").use_bias is False and model.get_layer("up6").strides == (2, 2)
    assert model.get_layer("conv10").filters == 12 and model.get_layer("conv10").kernel_size == (1, 1)
    assert model.get_layer("conv1_1_lrelu").alpha == pytest.approx(0.2)
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)] == [
        "pool1", "pool2", "pool3", "pool4"]


def test_concat_order_is_upsampled_then_skip():
    model = build_sid(features=TINY)
    inbound = model.get_layer("concat7")._inbound_nodes[0].inbound_layers
    assert [layer.name for layer in inbound] == ["up7", "conv3_2_lrelu"]
    assert model.get_layer("concat7").output_shape[-1] == 4 + 4


def test_conv_widths_override_single_layers():
    model = build_sid(features=TINY, conv_widths={"conv1_1": 7, "up9": 9})
    assert model.get_layer("conv1_1").filters == 7
    assert model.get_layer("concat9").output_shape[-1] == 9 + 2


def test_save_load_round_trip_is_exact(tmp_path):
    model = build_sid(features=TINY)
    x = np.random.rand(1, 16, 32, 4).astype(np.float32)
    loaded = load_model(save_model(model, tmp_path / "sid.keras"))
    np.testing.assert_array_equal(model(x).numpy(), loaded(x).numpy())


@pytest.mark.parametrize("kwargs, message", [
    ({"features": (1, 2, 3)}, "features must list 5 level widths, got 3"),
    ({"input_size": (40, 32)}, "SID input height and width must be multiples of 16, got 40x32"),
    ({"conv_widths": {"conv11": 3}}, r"conv_widths names unknown layers \['conv11'\]"),
    ({"conv_widths": {"conv1_1": 0}}, r"conv_widths\['conv1_1'\] must be a positive integer, got 0"),
    ({"upscale": 1}, "upscale must be an integer >= 2, got 1"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ModelConfigError, match=message):
        build_sid(**kwargs)


def test_initial_weights_are_reproducible_per_seed():
    a, b, c = (build_sid(features=TINY, seed=s) for s in (3, 3, 4))
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_layer("up6").kernel.numpy(), c.get_layer("up6").kernel.numpy())
