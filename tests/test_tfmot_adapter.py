"""edgeprune/prune/tfmot_adapter.py: every tfmot internal edgeprune uses is where the adapter expects it (a tfmot
upgrade that moves one fails here, loudly, naming it), and behaves as the channel masks assume."""

import numpy as np
import pytest

from edgeprune.core.errors import EdgepruneError
from edgeprune.prune import tfmot_adapter
from edgeprune.core.runtime import keras


def test_each_internal_is_where_the_adapter_expects_it_and_does_what_it_uses_it_for():
    import tensorflow_model_optimization as tfmot

    sparsity = "tensorflow_model_optimization.python.core.sparsity.keras"
    wrapper = tfmot_adapter._internal(f"{sparsity}.pruning_wrapper", "PruneLowMagnitude")
    conv = keras.layers.Conv2D(4, 3)
    assert wrapper is tfmot_adapter.PruneLowMagnitude and issubclass(wrapper, keras.layers.Wrapper)
    assert isinstance(tfmot.sparsity.keras.prune_low_magnitude(conv), wrapper)  # what the public API wraps with
    supports = tfmot_adapter._internal(f"{sparsity}.prune_registry", "PruneRegistry.supports")
    unknown = type("Unknown", (keras.layers.Layer,), {})()  # a layer tfmot has never heard of
    assert (supports(conv), supports(keras.layers.Add()), supports(unknown)) == (True, True, False)
    weight_names = tfmot_adapter._internal(f"{sparsity}.prune_registry", "PruneRegistry._weight_names")
    assert list(weight_names(conv)) == ["kernel"] and list(weight_names(keras.layers.Add())) == []
    compat = tfmot_adapter._internal("tensorflow_model_optimization.python.core.keras.compat", "keras")
    assert compat.layers.Layer is keras.layers.Layer  # tfmot's Keras is tf_keras, the one edgeprune builds with


def test_a_moved_internal_fails_loudly_naming_it():
    import tensorflow_model_optimization as tfmot

    with pytest.raises(EdgepruneError, match=(
            rf"^tensorflow-model-optimization {tfmot.__version__} has no tensorflow_model_optimization\.python\.core\."
            r"sparsity\.keras\.prune_registry\.PruneRegistry\._gone, which edgeprune's channel masks use: install the "
            r"tfmot version pinned in edgeprune's pyproject\.toml$")):
        tfmot_adapter._internal("tensorflow_model_optimization.python.core.sparsity.keras.prune_registry",
                                "PruneRegistry._gone")
    with pytest.raises(EdgepruneError, match=r"has no tensorflow_model_optimization\.python\.core\.nowhere\.X"):
        tfmot_adapter._internal("tensorflow_model_optimization.python.core.nowhere", "X")


def test_prunable_weights_per_layer_type():
    assert tfmot_adapter.prunable_weight_names(keras.layers.Conv2D(4, 3)) == ["kernel"]
    assert tfmot_adapter.prunable_weight_names(keras.layers.Conv2DTranspose(4, 2)) == ["kernel"]
    # tfmot does not mask depthwise kernels: masking.ChannelMaskCallback keeps their removed channels at zero itself
    assert tfmot_adapter.prunable_weight_names(keras.layers.DepthwiseConv2D(3)) == []
    assert tfmot_adapter.prunable_weight_names(keras.layers.Dense(4)) == ["kernel"]
    assert tfmot_adapter.prunable_weight_names(keras.layers.Add()) == []


def test_a_wrapper_its_name_and_its_mask_variables():
    import tensorflow_model_optimization as tfmot

    inputs = keras.Input((6, 6, 3))
    conv = keras.layers.Conv2D(4, 3, name="head")
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0)
    model = keras.Model(inputs, tfmot_adapter.prune_low_magnitude(conv, pruning_schedule=schedule)(inputs))
    wrapper = model.layers[1]
    assert tfmot_adapter.is_wrapper(wrapper) and not tfmot_adapter.is_wrapper(conv)
    assert wrapper.name == tfmot_adapter.WRAPPER_PREFIX + "head" and wrapper.layer is conv
    masks = tfmot_adapter.mask_variables(wrapper)
    assert list(masks) == [id(conv.kernel)]
    np.testing.assert_array_equal(masks[id(conv.kernel)].numpy(), np.ones(conv.kernel.shape, np.float32))


def test_update_pruning_step_is_tfmots_callback():
    import tensorflow_model_optimization as tfmot

    assert tfmot_adapter.UpdatePruningStep is tfmot.sparsity.keras.UpdatePruningStep
    assert issubclass(tfmot_adapter.UpdatePruningStep, keras.callbacks.Callback)
