import numpy as np
import pytest
import tensorflow_model_optimization as tfmot

from edgeprune.core.runtime import keras
from edgeprune.graph.coupling import Coupling
from edgeprune.prune.masking import ChannelMaskCallback, ChannelMasks, NeverPrune, inner, wrap, wrappers
from edgeprune.prune.plan import PruningPlan
from keras_models import build_edsr


def setup():
    model = build_edsr(num_blocks=2, num_features=4)
    coupling = Coupling(model)
    plan = PruningPlan.keep_all(coupling, "m")
    plan.keep["head"] = [0, 2]
    plan.keep["block01_conv1"] = [3]
    return model, coupling, plan


def test_prunable_layers_are_tfmot_wrappers_with_a_schedule_that_never_prunes():
    model, _, _ = setup()
    wrapped = wrap(model)
    names = [w.layer.name for w in wrappers(wrapped)]
    assert names == [l.name for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert all(isinstance(w.pruning_schedule, NeverPrune) for w in wrappers(wrapped))
    should_prune, sparsity = NeverPrune()(100)
    assert not bool(should_prune) and float(sparsity) == 0.0


def test_masks_survive_fit_and_stay_exactly_zero():
    model, coupling, plan = setup()
    wrapped = wrap(model)
    masks = ChannelMasks(coupling, plan)
    wrapped.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mae")
    x = np.random.rand(8, 6, 6, 3).astype(np.float32)
    y = np.random.rand(8, 12, 12, 3).astype(np.float32)
    wrapped.fit(x, y, batch_size=2, epochs=2, verbose=0,
                callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), ChannelMaskCallback(masks)])
    for name in ("head", "block00_conv2", "block01_conv2", "body_conv"):  # trunk producers: outputs 1, 3 removed
        layer = inner(wrapped, name)
        assert np.all(layer.kernel.numpy()[..., [1, 3]] == 0) and np.all(layer.bias.numpy()[[1, 3]] == 0)
    for name in ("block00_conv1", "block01_conv1", "body_conv", "up0_conv"):  # trunk consumers: inputs removed
        assert np.all(inner(wrapped, name).kernel.numpy()[:, :, [1, 3], :] == 0)
    assert np.all(inner(wrapped, "head").kernel.numpy()[..., [0, 2]] != 0)  # kept channels still train
    conv1 = inner(wrapped, "block01_conv1")
    assert np.all(conv1.kernel.numpy()[..., :3] == 0) and np.all(conv1.bias.numpy()[:3] == 0)
    assert np.all(inner(wrapped, "block01_conv2").kernel.numpy()[:, :, :3, :] == 0)
    head_mask = wrapped.get_layer("prune_low_magnitude_head").pruning_vars[0][1].numpy()
    assert head_mask.sum() == 27 * 2  # tfmot's own mask variable holds the channel mask


def test_tfmot_refuses_training_without_its_step_callback():
    model, coupling, plan = setup()
    wrapped = wrap(model)
    wrapped.compile(optimizer="adam", loss="mae")
    with pytest.raises(Exception, match="UpdatePruningStep"):
        wrapped.fit(np.zeros((2, 6, 6, 3)), np.zeros((2, 12, 12, 3)), verbose=0,
                    callbacks=[ChannelMaskCallback(ChannelMasks(coupling, plan))])
