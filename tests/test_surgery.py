"""Masked and slim models compute the same thing; the slim model's cost is what the plan predicts."""

import numpy as np
import pytest

from edgeprune.core.runtime import keras
from edgeprune.graph.cost import model_cost, predicted_cost
from edgeprune.graph.coupling import Coupling
from edgeprune.prune.masking import masked_model
from edgeprune.core.modelio import load_model, save_model
from edgeprune.prune.plan import PruningPlan
from edgeprune.prune.surgery import slim
from keras_models import build_edsr, build_sid

L = keras.layers
A = keras.applications


def random_plan(coupling, seed, name="m"):
    rng = np.random.default_rng(seed)
    plan = PruningPlan.keep_all(coupling, name)
    for n, g in coupling.groups.items():
        plan.keep[n] = sorted(rng.choice(g.size, rng.integers(1, g.size + 1), replace=False).tolist())
    return plan


def check_equivalence(model, input_shape, seed, scale=1.0):
    coupling = Coupling(model)
    plan = random_plan(coupling, seed)
    slim_model = slim(model, plan, coupling)
    masked = masked_model(model, plan, coupling)
    x = np.random.default_rng(seed).random((1, *input_shape), dtype=np.float32) * scale
    a, b = masked(x, training=False).numpy(), slim_model(x, training=False).numpy()
    assert a.shape == b.shape == model(x).shape
    assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()
    assert slim_model.count_params() < model.count_params()
    kept = coupling.kept_channels({n: plan.kept_units(n) for n in coupling.groups})
    predicted = predicted_cost(model, {r: len(k) for r, k in kept.items()}, input_shape[:2])
    actual = model_cost(slim_model, input_shape[:2])
    assert predicted.totals == actual.totals
    assert predicted.totals_all_layers == actual.totals_all_layers
    return coupling, plan, slim_model


def tiny_zoo():
    """One model with every layer type the engine slices: transposed, depthwise, separable, BN, PReLU, Dense."""
    inputs = keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, padding="same", name="c1")(inputs)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.PReLU(shared_axes=[1, 2], name="prelu")(x)
    y = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(x)
    y = L.SeparableConv2D(8, 3, padding="same", name="sep")(y)
    x = L.Add(name="add")([x, y])
    z = L.Conv2DTranspose(6, 2, strides=2, name="up")(x)
    z = L.MaxPooling2D(name="pool")(z)
    x = L.Concatenate(name="cat")([x, z])
    x = L.Conv2D(12, 1, name="c2")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(10, name="fc1")(x)
    x = L.Dense(4, name="fc2")(x)
    return keras.Model(inputs, x)


def tiny_applications():
    """The patterns of the keras.applications models in tiny: ResNet's bottleneck (BN on both branches of an add,
    a projection shortcut), DenseNet's dense block (concatenations chained, each read through BN and ReLU) and
    EfficientNet's squeeze-excite (pooling, Reshape, two 1x1 convs, a multiply)."""
    inputs = keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, padding="same", name="stem")(inputs)
    main = L.BatchNormalization(name="res_bn1")(L.Conv2D(4, 1, name="res_c1")(x))
    main = L.BatchNormalization(name="res_bn2")(L.Conv2D(6, 3, padding="same", name="res_c2")(L.ReLU()(main)))
    short = L.BatchNormalization(name="res_bn_short")(L.Conv2D(6, 1, name="res_short")(x))
    x = L.ReLU(name="res_out")(L.Add(name="res_add")([main, short]))
    for i in range(2):  # a dense block: every layer reads all the features so far
        y = L.ReLU()(L.BatchNormalization(name=f"dense{i}_bn")(x))
        y = L.Conv2D(3, 3, padding="same", name=f"dense{i}_conv")(y)
        x = L.Concatenate(name=f"dense{i}_cat")([x, y])
    x = L.Conv2D(8, 1, activation="swish", name="expand")(L.BatchNormalization(name="trans_bn")(x))
    se = L.Reshape((1, 1, 8), name="se_reshape")(L.GlobalAveragePooling2D(name="se_pool")(x))
    se = L.Conv2D(2, 1, activation="swish", name="se_reduce")(se)
    se = L.Conv2D(8, 1, activation="sigmoid", name="se_expand")(se)
    x = L.Multiply(name="se_excite")([x, se])
    x = L.Conv2D(5, 1, name="project")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, L.Dense(4, name="fc")(x))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_edsr_sid_and_every_layer_type(seed):
    check_equivalence(build_edsr(num_blocks=2, num_features=6, scale=2 + seed % 2, res_scale=0.5), (9, 7, 3), seed)
    check_equivalence(build_edsr(num_blocks=1, num_features=4, scale=4), (5, 6, 3), seed)
    check_equivalence(build_sid(features=(4, 5, 6, 7, 8)), (32, 48, 4), seed)
    check_equivalence(tiny_zoo(), (16, 16, 3), seed)
    check_equivalence(tiny_applications(), (16, 16, 3), seed, scale=255.0)


APPS = {
    "ResNet50": lambda: A.ResNet50(weights=None, input_shape=(32, 32, 3), classes=10),  # residual adds, BN
    "MobileNetV2": lambda: A.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35, classes=10),  # depthwise
    "MobileNetV3Small": lambda: A.MobileNetV3Small(weights=None, input_shape=(32, 32, 3), alpha=0.75,
                                                   classes=10),  # squeeze-excite multiplies, hard-swish ops
    "DenseNet121": lambda: A.DenseNet121(weights=None, input_shape=(32, 32, 3), classes=10),  # concatenations
    "EfficientNetB0": lambda: A.EfficientNetB0(weights=None, input_shape=(32, 32, 3), classes=10),  # SE + Reshape
}


# the heaviest three are slow: tiny_applications() covers their patterns (bottleneck, dense block, SE) by default
HEAVY_APPS = ("ResNet50", "DenseNet121", "EfficientNetB0")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY_APPS else n for n in APPS])
def test_keras_applications(name):
    check_equivalence(APPS[name](), (32, 32, 3), seed=3, scale=255.0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [4, 5])
@pytest.mark.parametrize("name", list(APPS))
def test_keras_applications_more_seeds(name, seed):
    check_equivalence(APPS[name](), (32, 32, 3), seed=seed, scale=255.0)


def test_slim_cost_equals_the_plans_prediction_and_saves(tmp_path):
    model = build_sid(features=(4, 5, 6, 7, 8))
    coupling, plan, slim_model = check_equivalence(model, (32, 32, 4), seed=7)
    kept = coupling.kept_channels({n: plan.kept_units(n) for n in coupling.groups})
    predicted = predicted_cost(model, {r: len(k) for r, k in kept.items()}, (64, 96))
    actual = model_cost(slim_model, (64, 96))
    assert predicted.totals == actual.totals
    assert predicted.totals_all_layers == actual.totals_all_layers
    assert [c.mac for c in predicted.layers] == [c.mac for c in actual.layers]
    loaded = load_model(save_model(slim_model, tmp_path / "slim.keras"))
    x = np.random.rand(1, 32, 32, 4).astype(np.float32)
    np.testing.assert_array_equal(loaded(x).numpy(), slim_model(x).numpy())


def test_surgery_and_export_rebuild_models_through_one_helper():
    from edgeprune.deploy.export import fixed_shape_model
    from edgeprune.core.modelio import rebuilt

    model = build_edsr(num_blocks=1, num_features=4)
    copy = rebuilt(model)
    assert copy is not model and [l.name for l in copy.layers] == [l.name for l in model.layers]
    for a, b in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)

    def rename(config):
        config["name"] = "renamed"

    halved = rebuilt(model, rename, lambda layer: [w / 2 for w in layer.get_weights()])
    assert (halved.name, model.name) == ("renamed", model.name)  # the original's config is not touched
    np.testing.assert_array_equal(halved.get_layer("head").kernel.numpy(), model.get_layer("head").kernel.numpy() / 2)
    fixed = fixed_shape_model(model, (6, 5))
    assert tuple(fixed.input_shape) == (1, 6, 5, 3)
    x = np.random.default_rng(0).random((1, 6, 5, 3), np.float32)
    np.testing.assert_allclose(fixed(x).numpy(), model(x).numpy(), rtol=0, atol=1e-6)


def test_keep_all_plan_changes_nothing():
    model = build_edsr(num_blocks=1, num_features=4)
    coupling = Coupling(model)
    same = slim(model, PruningPlan.keep_all(coupling, "m"), coupling)
    x = np.random.rand(1, 5, 5, 3).astype(np.float32)
    np.testing.assert_array_equal(same(x).numpy(), model(x).numpy())
    assert same.count_params() == model.count_params()
