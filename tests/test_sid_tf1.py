"""The original SID TF1 checkpoint importer: checkpoints written as train_Sony.py writes them (a tf.compat.v1 graph,
an L1 loss, Adam, tf.compat.v1.train.Saver), imported and checked against that graph restored by TF1's Saver."""

import shutil

import numpy as np
import pytest

from edgeprune.checkpoints import sid_tf1
from edgeprune.checkpoints.verify import compare, verify
from edgeprune.data.photos import photo_input
from edgeprune.core.errors import CheckpointError
from edgeprune.core.runtime import tf

FEATURES = (4, 8, 8, 16, 16)
v1 = tf.compat.v1


def train_and_save(prefix, widths=FEATURES, in_channels=4, upscale=2, extra=None):
    """One Adam step of an L1 loss on random data, then ``Saver().save`` (every variable, Adam's slots included)."""
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)
        x = v1.placeholder(tf.float32, [None, None, None, in_channels])
        target = v1.placeholder(tf.float32, [None, None, None, 3])
        out = sid_tf1.tf1_network(x, widths, upscale)
        if extra:  # an extra trained variable, as a modified training script would add
            with v1.variable_scope(extra):
                out = out * v1.get_variable("weights", [], initializer=v1.ones_initializer())
        step = v1.train.AdamOptimizer(1e-4).minimize(tf.reduce_mean(tf.abs(out - target)))
        init, saver = v1.global_variables_initializer(), v1.train.Saver()
    rng = np.random.default_rng(0)
    with v1.Session(graph=graph) as sess:
        sess.run(init)
        sess.run(step, {x: rng.random((1, 32, 32, in_channels), np.float32),
                        target: rng.random((1, 32 * upscale, 32 * upscale, 3), np.float32)})
        saver.save(sess, str(prefix))
    return str(prefix)


def save_tensors(prefix, tensors):
    """A checkpoint holding exactly ``tensors`` (saved under their names with ``Saver(var_list=dict)``)."""
    graph = tf.Graph()
    with graph.as_default():
        variables = {name: v1.Variable(value, name=f"v{i}") for i, (name, value) in enumerate(tensors.items())}
        init, saver = v1.global_variables_initializer(), v1.train.Saver(var_list=variables)
    with v1.Session(graph=graph) as sess:
        sess.run(init)
        saver.save(sess, str(prefix))
    return str(prefix)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_and_save(tmp_path_factory.mktemp("sony") / "model.ckpt")


@pytest.fixture(scope="module")
def tensors(trained):
    return sid_tf1.read_checkpoint(trained)


def run_tf1(prefix, widths, x):
    """The TF1 graph restored from ``prefix``, run on ``x`` as given (the original's channel order)."""
    graph = tf.Graph()
    with graph.as_default():
        inp = v1.placeholder(tf.float32, [None, None, None, 4])
        out = sid_tf1.tf1_network(inp, widths)
        saver = v1.train.Saver()
    with v1.Session(graph=graph) as sess:
        saver.restore(sess, prefix)
        return sess.run(out, {inp: x})


def test_import_matches_the_original_network_on_a_photo(trained):
    converted = sid_tf1.convert(trained)
    try:
        record = verify(converted)
    finally:
        converted.release()
    assert record["passed"] and record["max_relative_difference"] < 1e-5
    assert "photo" in record["input"] and record["input_shape"] == [1, 64, 64, 4]
    assert record["reference_peak"] > 0
    assert converted.architecture == "sid" and converted.verify_size == (64, 64)
    assert converted.config == {"features": list(FEATURES), "conv_widths": {}, "in_channels": 4, "out_channels": 3,
                                "upscale": 2, "variables": 42,
                                "parameters": sum(v.size for v in converted.model.get_weights())}
    assert any("[0, 1, 3, 2]" in c for c in converted.conversions)
    assert "tf.compat.v1.train.Saver" in converted.framework and tf.__version__ in converted.framework


def test_adam_slots_and_optimizer_state_are_ignored(trained, tensors):
    assert sum(n.endswith(("/Adam", "/Adam_1")) for n in tensors) == 84
    assert np.any(tensors["g_conv1_1/weights/Adam"] != 0)  # a real training step was taken
    converted = sid_tf1.convert(trained)
    converted.release()
    assert converted.ignored == ["84 optimizer slots (/Adam, /Adam_1)", "beta1_power", "beta2_power"]


def test_the_channel_permutation_is_needed(trained):
    converted = sid_tf1.convert(trained)
    converted.release()
    x, _ = photo_input(64, 64, 4)
    ours = converted.model(x, training=False).numpy()
    permuted = run_tf1(trained, FEATURES, x[..., [0, 1, 3, 2]])
    unpermuted = run_tf1(trained, FEATURES, x)
    assert compare(ours, permuted)["max_relative_difference"] < 1e-5
    assert compare(ours, unpermuted)["max_relative_difference"] > 1e-3


def test_pruned_widths_are_inferred(tmp_path):
    widths = sid_tf1.level_widths(FEATURES)
    assert widths["conv2_1"] == widths["conv8_2"] == widths["up8"] == 8 and widths["up9"] == 4
    changed = {"conv1_1": 3, "conv3_2": 5, "up7": 6, "conv8_1": 7, "conv9_2": 2}
    prefix = train_and_save(tmp_path / "model.ckpt", {**widths, **changed})
    converted = sid_tf1.convert(prefix)
    try:
        record = verify(converted)
    finally:
        converted.release()
    assert record["max_relative_difference"] < 1e-5
    # conv3_2 sets level 3's width (5): the level's other layers (conv3_1, conv7_*) now differ from it
    assert converted.config["features"] == [4, 8, 5, 16, 16]
    assert converted.config["conv_widths"] == {"conv1_1": 3, "conv3_1": 8, "up7": 6, "conv7_1": 8, "conv7_2": 8,
                                               "conv8_1": 7, "conv9_2": 2}


def test_variable_names_and_parameter_count_match_the_spec():
    graph = tf.Graph()
    with graph.as_default():
        sid_tf1.tf1_network(v1.placeholder(tf.float32, [None, None, None, 4]), (32, 64, 128, 256, 512))
        variables = v1.global_variables()
    expected = {f"g_conv{l}_{k}/{p}" for l in range(1, 10) for k in (1, 2) for p in ("weights", "biases")}
    expected |= {"g_conv10/weights", "g_conv10/biases", "Variable", "Variable_1", "Variable_2", "Variable_3"}
    assert {v.op.name for v in variables} == expected == set(sid_tf1.NETWORK_VARIABLES)
    assert sum(v.shape.num_elements() for v in variables) == 7_760_268
    shapes = {v.op.name: v.shape.as_list() for v in variables}
    assert shapes["Variable"] == [2, 2, 256, 512] and shapes["Variable_3"] == [2, 2, 32, 64]
    assert shapes["g_conv6_1/weights"] == [3, 3, 512, 256] and shapes["g_conv10/weights"] == [1, 1, 32, 12]
    assert sid_tf1.infer_widths(shapes)["up6"] == 256


def test_checkpoint_paths_are_resolved(trained, tmp_path):
    files = sid_tf1.source_files(trained)
    assert [f.name for f in files] == ["model.ckpt.index", "model.ckpt.data-00000-of-00001"]
    for given in (trained + ".index", trained + ".data-00000-of-00001", trained + ".meta", str(files[0].parent)):
        assert sid_tf1.source_files(given) == files
    alone = tmp_path / "alone"  # no 'checkpoint' file: the directory's only checkpoint is taken
    alone.mkdir()
    for f in files:
        shutil.copy(f, alone / f.name)
    assert [f.name for f in sid_tf1.source_files(alone)] == [f.name for f in files]
    shutil.copy(files[0], alone / "other.index")
    with pytest.raises(CheckpointError, match=r"several TF1 checkpoints \['model.ckpt', 'other'\]"):
        sid_tf1.source_files(alone)
    with pytest.raises(CheckpointError, match="no TF1 checkpoint at .*give the checkpoint prefix"):
        sid_tf1.source_files(tmp_path / "nothing" / "model.ckpt")
    with pytest.raises(CheckpointError, match="no TF1 checkpoint at"):
        sid_tf1.convert(tmp_path / "model.ckpt")
    with pytest.raises(CheckpointError, match="holds no TF1 checkpoint.*give the checkpoint prefix"):
        sid_tf1.convert(tmp_path)


def test_missing_variable(tmp_path, tensors):
    kept = {n: v for n, v in tensors.items() if n != "g_conv5_2/biases"}
    with pytest.raises(CheckpointError, match=r"lacks SID network variable.*g_conv5_2/biases"):
        sid_tf1.convert(save_tensors(tmp_path / "model.ckpt", kept))


def test_unexpected_variable(tmp_path):
    prefix = train_and_save(tmp_path / "model.ckpt", extra="g_conv11")
    with pytest.raises(CheckpointError, match=r"variables the SID network does not.*'g_conv11/weights'\]"):
        sid_tf1.convert(prefix)


def test_wrong_shape(tmp_path, tensors):
    bad = dict(tensors, **{"g_conv3_1/weights": np.zeros((3, 3, 9, 8), np.float32)})
    with pytest.raises(CheckpointError, match=r"'g_conv3_1/weights' has shape \[3, 3, 9, 8\], expected \[3, 3, 8, 8\]"):
        sid_tf1.convert(save_tensors(tmp_path / "a" / "model.ckpt", bad))
    bad = dict(tensors, **{"Variable_2": np.zeros((2, 2, 8, 9), np.float32)})
    with pytest.raises(CheckpointError, match=r"'Variable_2' has shape \[2, 2, 8, 9\], expected \[2, 2, 8, 8\]"):
        sid_tf1.convert(save_tensors(tmp_path / "b" / "model.ckpt", bad))
    bad = dict(tensors, **{"Variable": np.zeros((2, 2, 16), np.float32)})
    with pytest.raises(CheckpointError, match=r"'Variable' has shape \[2, 2, 16\], expected \[2, 2, width, 16\]"):
        sid_tf1.convert(save_tensors(tmp_path / "d" / "model.ckpt", bad))
    bad = dict(tensors, **{"g_conv1_1/weights": np.zeros((3, 3, 3, 4), np.float32)})
    with pytest.raises(CheckpointError, match=r"expected \[3, 3, 4, 4\] .*4 packed Bayer input channels"):
        sid_tf1.convert(save_tensors(tmp_path / "e" / "model.ckpt", bad))
    bad = dict(tensors, **{"g_conv7_2/biases": np.zeros(3, np.float32)})
    with pytest.raises(CheckpointError, match=r"'g_conv7_2/biases' has shape \[3\], expected \[8\]"):
        sid_tf1.convert(save_tensors(tmp_path / "c" / "model.ckpt", bad))


def test_truncated_data_file(tmp_path, trained):
    for f in sid_tf1.source_files(trained):
        shutil.copy(f, tmp_path / f.name)
    data = tmp_path / "model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="is not a readable TF1 checkpoint"):
        sid_tf1.convert(tmp_path / "model.ckpt")
    (tmp_path / "model.ckpt.index").write_bytes(b"not an index")
    with pytest.raises(CheckpointError, match="is not a readable TF1 checkpoint"):
        sid_tf1.read_checkpoint(tmp_path / "model.ckpt")


def test_another_network(tmp_path):
    other = {"conv1/kernel": np.zeros((3, 3, 3, 8), np.float32), "conv1/bias": np.zeros(8, np.float32)}
    with pytest.raises(CheckpointError, match=r"not a SID checkpoint.*conv1/bias"):
        sid_tf1.convert(save_tensors(tmp_path / "model.ckpt", other))


def test_fuji_model_is_refused(tmp_path):
    prefix = train_and_save(tmp_path / "model.ckpt", in_channels=9, upscale=3)
    with pytest.raises(CheckpointError, match=r"Fuji \(X-Trans, 9-channel\).*Bayer \(4-channel\) raw only"):
        sid_tf1.convert(prefix)
