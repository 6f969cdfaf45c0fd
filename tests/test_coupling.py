import numpy as np

from edgeprune.core.runtime import keras
from edgeprune.graph.coupling import Coupling
from edgeprune.graph.model_graph import TensorRef
from keras_models import build_edsr, build_sid

L = keras.layers


def test_edsr_trunk_is_one_group_and_block_convs_are_free():
    c = Coupling(build_edsr(num_blocks=3, num_features=4, scale=2))
    assert list(c.groups) == ["head", "block00_conv1", "block01_conv1", "block02_conv1", "up0_conv"]
    trunk = c.groups["head"]
    assert trunk.producers == ("head", "block00_conv2", "block01_conv2", "block02_conv2", "body_conv")
    assert trunk.consumers == ("block00_conv1", "block01_conv1", "block02_conv1", "body_conv", "up0_conv")
    assert trunk.size == 4
    np.testing.assert_array_equal(trunk.index_maps[TensorRef("block01_add")], [[0], [1], [2], [3]])
    assert c.groups["block01_conv1"].producers == ("block01_conv1",)


def test_edsr_upsampler_prunes_whole_depth_to_space_blocks():
    c = Coupling(build_edsr(num_blocks=1, num_features=4, scale=2))
    up = c.groups["up0_conv"]
    assert up.size == 4 and up.consumers == ("tail",)
    # TF channel order: output channel u of the shuffle owns conv channels u, 4+u, 8+u, 12+u
    np.testing.assert_array_equal(up.index_maps[TensorRef("up0_conv")],
                                  [[0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10, 14], [3, 7, 11, 15]])
    assert all(g.name != "tail" for g in c.groups.values())  # the 3 output channels are never pruned


def test_edsr_x4_has_two_upsampler_groups():
    c = Coupling(build_edsr(num_blocks=1, num_features=4, scale=4))
    assert [n for n in c.groups if n.startswith("up")] == ["up0_conv", "up1_conv"]
    assert c.groups["up1_conv"].consumers == ("tail",)


def test_sid_encoder_couples_across_concatenations_at_offsets():
    c = Coupling(build_sid(features=(2, 3, 4, 5, 6)))
    assert len(c.groups) == 22 and "conv10" not in c.groups
    enc = c.groups["conv1_2"]
    assert enc.consumers == ("conv2_1", "conv9_1")
    # concat9 = [up9 (2 channels), conv1_2 skip (2 channels)]
    np.testing.assert_array_equal(enc.index_maps[TensorRef("concat9")], [[2], [3]])
    np.testing.assert_array_equal(c.groups["up9"].index_maps[TensorRef("concat9")], [[0], [1]])
    assert c.groups["conv5_2"].consumers == ("up6",)


def test_kept_channels_follow_every_coupling():
    c = Coupling(build_sid(features=(2, 3, 4, 5, 6)))
    kept = c.kept_channels({"conv1_2": [1], "up9": [0]})
    np.testing.assert_array_equal(kept[TensorRef("concat9")], [0, 3])
    np.testing.assert_array_equal(kept[TensorRef("pool1")], [1])
    np.testing.assert_array_equal(kept[TensorRef("conv2_1")], [0, 1, 2])


def test_depthwise_multiplier_and_broadcast_multiply():
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 1, name="expand")(inputs)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(x)
    gate = L.GlobalAveragePooling2D(name="gap")(x)
    gate = L.Reshape((1, 1, 8), name="reshape")(gate)
    gate = L.Conv2D(8, 1, activation="sigmoid", name="se")(gate)
    x = L.Multiply(name="scale")([x, gate])
    x = L.Conv2D(3, 1, name="project")(x)
    c = Coupling(keras.Model(inputs, x))
    # the gate multiplies the depthwise output channel by channel, so it belongs to the same group
    assert list(c.groups) == ["expand"]
    group = c.groups["expand"]
    assert group.producers == ("expand", "se") and group.consumers == ("dw", "se", "project")
    np.testing.assert_array_equal(group.index_maps[TensorRef("dw")], [[0, 1], [2, 3], [4, 5], [6, 7]])
    np.testing.assert_array_equal(group.index_maps[TensorRef("se")], [[0, 1], [2, 3], [4, 5], [6, 7]])


def test_unknown_and_shared_layers_freeze_their_channels_and_say_why():
    inputs = keras.Input((8, 8, 3))
    a = L.Conv2D(4, 3, padding="same", name="a")(inputs)
    n = L.LayerNormalization(name="ln")(a)
    b = L.Conv2D(4, 3, padding="same", name="b")(n)
    shared = L.Conv2D(4, 1, name="shared")
    d = shared(shared(b))
    e = L.Conv2D(4, 3, padding="same", name="e")(d)
    out = L.Conv2D(3, 1, name="out")(e)
    c = Coupling(keras.Model(inputs, out))
    assert list(c.groups) == ["e"]
    assert c.frozen_reasons == ["edgeprune cannot reason about channels of LayerNormalization 'ln'",
                                "Conv2D 'shared' is called more than once (shared weights)"]


def test_residual_add_with_a_broadcast_operand():
    inputs = keras.Input((4, 4, 3))
    x = L.Conv2D(4, 1, name="x")(inputs)
    bias = L.Conv2D(1, 1, name="bias")(inputs)
    y = L.Add(name="add")([x, bias])
    c = Coupling(keras.Model(inputs, L.Conv2D(2, 1, name="out")(y)))
    assert list(c.groups) == ["x"]
