"""The public API inside the user's own training: a Pruner and QualityGatedPruning in model.fit with a loss and a
tf.data pipeline edgeprune never saw, a subclassed trainer with its own train_step, a custom loop without fit,
resume after a kill, and the errors a user meets before any training starts. Only public names are used."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

import edgeprune
from keras_models import build_edsr

SIZE = 12  # low-resolution side of the tiny training and validation images


def _images(seed=0, count=8):
    rng = np.random.default_rng(seed)
    hr = rng.random((count, 2 * SIZE, 2 * SIZE, 3), dtype=np.float32)
    return hr[:, ::2, ::2].copy(), hr


def user_loss(y, p):
    """L1 plus an image-gradient term: a loss edgeprune never defined."""
    def dy(t):
        return t[:, 1:] - t[:, :-1]

    def dx(t):
        return t[:, :, 1:] - t[:, :, :-1]

    return (tf.reduce_mean(tf.abs(y - p)) + 0.5 * tf.reduce_mean(tf.abs(dy(y) - dy(p)))
            + 0.5 * tf.reduce_mean(tf.abs(dx(y) - dx(p))))


def user_dataset():
    lr, hr = _images()
    return tf.data.Dataset.from_tensor_slices((lr, hr)).shuffle(8, seed=0).batch(2).repeat()


class Scripted:
    """A metric (model -> dict) returning scripted PSNR values in order; it records the plain weights it judged."""

    def __init__(self, pruner, values):
        self.pruner, self.values, self.judged = pruner, list(values), []

    def __call__(self, model):
        self.judged.append(self.pruner.unwrapped().get_weights())
        return {"psnr": self.values.pop(0), "ssim": 0.9}


# baseline, then: level 0.3 holds, 0.6 breaks the 0.05 dB tolerance, 0.45 holds, 0.6 breaks it again (cap: 4)
SCRIPT = [30.0, 30.0, 29.0, 29.99, 29.0]
CONFIG = dict(method="A", target_mac=None, finetune_steps=3, initial_step=0.3, min_step=0.05, max_iterations=4)


def _check_accept_rollback_and_slim(pruner, metric):
    records = pruner.state.iterations
    assert [r["accepted"] for r in records] == [True, False, True, False]
    assert [round(r["level"], 3) for r in records] == [0.3, 0.6, 0.45, 0.6]
    assert all(r["finetune_steps"] == 3 for r in records)
    assert pruner.state.lineage_steps == 6 and pruner.state.spent_steps == 12
    # the last proposal was rolled back: the model holds the weights the gate accepted at iteration 3, bit for bit
    for a, b in zip(pruner.strip().get_weights(), metric.judged[3]):
        np.testing.assert_array_equal(a, b)
    # ... which differ from what the rolled-back chunk had trained
    assert any(not np.array_equal(a, b) for a, b in zip(metric.judged[4], metric.judged[3]))
    slim, masked = pruner.slim(), pruner.strip()
    x = _images(seed=5, count=2)[0]
    np.testing.assert_allclose(slim(x).numpy(), masked(x).numpy(), atol=1e-5)
    assert slim.count_params() < masked.count_params()
    for size in ((SIZE, SIZE), (64, 48)):
        assert edgeprune.model_cost(slim, size).totals == pruner.predicted_cost(size).totals
    assert records[2]["mac"] == pytest.approx(
        pruner.predicted_cost().totals.mac / edgeprune.model_cost(pruner.baseline, pruner.input_size).totals.mac)


def test_prunes_inside_model_fit_with_a_user_loss_and_dataset_then_slims():
    model = build_edsr(scale=2, num_blocks=2, num_features=8)
    pruner = edgeprune.Pruner(model, edgeprune.PruneConfig(**CONFIG))
    metric = Scripted(pruner, SCRIPT)
    pruned = pruner.model
    pruned.compile(keras.optimizers.Adam(1e-3), loss=user_loss)
    history = pruned.fit(user_dataset(), epochs=20, steps_per_epoch=3, verbose=0,
                         callbacks=[edgeprune.QualityGatedPruning(pruner, metric=metric)])
    assert len(history.history["loss"]) == 4  # the gate stopped training at the iteration cap
    _check_accept_rollback_and_slim(pruner, metric)
    # the optimizer's state was rolled back with the weights: 12 steps trained, 6 of them in accepted chunks
    assert int(pruned.optimizer.iterations.numpy()) == 6


class Trainer(keras.Model):
    """A user's trainer: a subclassed model whose train_step is its own (here L1 + gradient loss by hand)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def call(self, x, training=False):
        return self.net(x, training=training)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = user_loss(y, self.net(x, training=True))
        variables = self.net.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss}


def test_prunes_inside_a_subclassed_models_own_train_step():
    model = build_edsr(scale=2, num_blocks=2, num_features=8)
    pruner = edgeprune.Pruner(model, edgeprune.PruneConfig(**CONFIG))
    metric = Scripted(pruner, SCRIPT)
    trainer = Trainer(pruner.model)
    trainer.compile(keras.optimizers.Adam(1e-3))
    trainer.fit(user_dataset(), epochs=20, steps_per_epoch=3, verbose=0,
                callbacks=[edgeprune.QualityGatedPruning(pruner, metric=metric)])
    _check_accept_rollback_and_slim(pruner, metric)


def test_a_custom_training_loop_drives_the_same_gate_by_hand():
    model = build_edsr(scale=2, num_blocks=2, num_features=8)
    pruner = edgeprune.Pruner(model, edgeprune.PruneConfig(**CONFIG))
    metric = Scripted(pruner, SCRIPT)
    net, optimizer = pruner.model, keras.optimizers.Adam(1e-3)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = user_loss(y, net(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, net.trainable_variables), net.trainable_variables))

    gate = edgeprune.QualityGatedPruning(pruner, metric=metric)
    gate.attach(net, optimizer)
    steps = 0
    for x, y in user_dataset():
        train_step(x, y)
        steps += 1
        if gate.step():
            break
    gate.finish()
    assert steps == 12 and gate.done
    _check_accept_rollback_and_slim(pruner, metric)


def test_the_default_gate_measures_psnr_ssim_on_the_validation_images_with_the_sr_border():
    model = build_edsr(scale=2, num_blocks=2, num_features=8)
    lr, hr = _images(seed=3, count=3)
    val = list(zip(lr, hr))
    pruner = edgeprune.Pruner(model, edgeprune.PruneConfig(method="A", target_mac=0.9, finetune_steps=2,
                                                           psnr_tolerance=50, ssim_tolerance=1))
    pruner.model.compile(keras.optimizers.Adam(1e-3), loss=user_loss)
    records = []
    pruner.model.fit(user_dataset(), epochs=5, steps_per_epoch=2, verbose=0,
                     callbacks=[edgeprune.QualityGatedPruning(pruner, val, progress=records.append)])
    assert records == pruner.state.iterations and records[-1]["accepted"] and pruner.state.level.target_met
    # PSNR of the accepted model over the three images, a 2-pixel border cropped (scale 2)
    out = pruner.strip()(lr).numpy().clip(0, 1)[:, 2:-2, 2:-2]
    psnr = np.mean([10 * np.log10(1 / np.mean((o - t) ** 2)) for o, t in zip(out, hr[:, 2:-2, 2:-2])])
    assert records[-1]["psnr"] == pytest.approx(psnr, abs=1e-3)


def test_a_killed_fit_resumes_from_the_backup_with_nothing_accepted_lost(tmp_path):
    model = build_edsr(scale=2, num_blocks=2, num_features=8)

    def run(values, progress=None):
        pruner = edgeprune.Pruner(model, edgeprune.PruneConfig(**CONFIG))
        pruner.model.compile(keras.optimizers.Adam(1e-3), loss=user_loss)
        metric = Scripted(pruner, values)
        gate = edgeprune.QualityGatedPruning(pruner, metric=metric, backup_dir=tmp_path, progress=progress)
        pruner.model.fit(user_dataset(), epochs=20, steps_per_epoch=3, verbose=0, callbacks=[gate])
        return pruner, metric

    def kill_after_three(record):
        if record["iteration"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(SCRIPT, kill_after_three)
    saved = json.loads((tmp_path / "loop.json").read_text())
    assert [r["accepted"] for r in saved["iterations"]] == [True, False, True]
    assert saved["baseline"] == {"psnr": 30.0, "ssim": 0.9}
    pruner, metric = run([29.0])  # only iteration 4 is left to judge; the baseline comes from the checkpoint
    assert [r["iteration"] for r in pruner.state.iterations] == [1, 2, 3, 4]
    assert pruner.state.iterations[:3] == saved["iterations"]
    before = edgeprune.Pruner(model, edgeprune.PruneConfig(**CONFIG))
    before.restore(tmp_path)
    for a, b in zip(pruner.strip().get_weights(), before.strip().get_weights()):
        np.testing.assert_array_equal(a, b)  # iteration 3's accepted weights, kept through the rollback of 4


def test_bad_input_is_refused_with_our_errors_before_training():
    model = build_edsr(scale=2, num_blocks=2, num_features=8)
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(edgeprune.InvalidArgumentError, match="strictly between 0 and 1"):
            edgeprune.PruneConfig(target_mac=bad)
    with pytest.raises(edgeprune.InvalidArgumentError, match="importance must be one of magnitude, taylor, qr"):
        edgeprune.PruneConfig(importance="hessian")
    inputs = keras.Input((8, 8, 3))
    dense_only = keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same")(inputs))
    with pytest.raises(edgeprune.UnsupportedModelError, match="has no prunable channel group"):
        edgeprune.Pruner(dense_only)
    with pytest.raises(edgeprune.InvalidArgumentError, match="tf_keras Model"):
        edgeprune.Pruner(lambda x: x)
    foreign = edgeprune.LatencyProfile(target="x", runner="onnxruntime 1.20", num_threads=1,
                                       default={"mac_per_s": 1e9, "bytes_per_s": 1e9, "overhead_us": 1.0})
    with pytest.raises(edgeprune.FileFormatError, match="comes from runner 'onnxruntime 1.20'.*edgeprune calibrate"):
        edgeprune.PruneConfig(latency_profile=foreign)
    with pytest.raises(edgeprune.InvalidArgumentError, match="measures channels on training data: give "
                                                             "importance_data"):
        edgeprune.Pruner(model, edgeprune.PruneConfig(importance="taylor"))
    pruner = edgeprune.Pruner(model)
    lr, hr = _images(count=2)
    with pytest.raises(edgeprune.ShapeError, match="validation inputs have 4 channels; the model takes 3"):
        edgeprune.QualityGatedPruning(pruner, [(np.zeros((8, 8, 4), np.float32), hr[0])])
    with pytest.raises(edgeprune.ShapeError, match=r"maps a validation input \(12, 12, 3\) to \(24, 24, 3\), but "
                                                   r"its target is \(12, 12, 3\)"):
        edgeprune.QualityGatedPruning(pruner, [(lr[0], lr[0])])
    with pytest.raises(edgeprune.InvalidArgumentError, match="gate='control' .* pass control="):
        edgeprune.QualityGatedPruning(edgeprune.Pruner(model, edgeprune.PruneConfig(gate="control")),
                                      list(zip(lr, hr)))
    with pytest.raises(edgeprune.InvalidArgumentError, match="control= is what gate='control' judges against"):
        edgeprune.QualityGatedPruning(pruner, list(zip(lr, hr)), control=lambda steps: {})
    # a metric without the values the tolerance names stops fit at its start, before any step is trained
    pruner.model.compile(keras.optimizers.Adam(1e-3), loss="mae")
    with pytest.raises(edgeprune.InvalidArgumentError, match=r"the gate needs the values \['psnr', 'ssim'\]"):
        pruner.model.fit(user_dataset(), epochs=1, steps_per_epoch=2, verbose=0, callbacks=[
            edgeprune.QualityGatedPruning(pruner, metric=lambda m: {"lpips": 0.1})])
    assert int(pruner.model.optimizer.iterations.numpy()) == 0


def test_the_control_gate_judges_against_an_equal_budget_control():
    model = build_edsr(scale=2, num_blocks=2, num_features=8)
    pruner = edgeprune.Pruner(model, edgeprune.PruneConfig(**{**CONFIG, "gate": "control", "max_iterations": 2}))
    asked = []

    def control_metric(m):
        return {"psnr": 30.0 + 0.04 * len(asked), "ssim": 0.9}

    control = edgeprune.EqualBudgetControl(model, control_metric, data=iter(user_dataset()), loss=user_loss)
    original = control.__call__

    def counting(steps):
        asked.append(steps)
        return original(steps)

    pruner.model.compile(keras.optimizers.Adam(1e-3), loss=user_loss)
    metric = Scripted(pruner, [30.0, 30.0, 30.0])  # holds against the baseline every time
    pruner.model.fit(user_dataset(), epochs=5, steps_per_epoch=3, verbose=0,
                     callbacks=[edgeprune.QualityGatedPruning(pruner, metric=metric, control=counting)])
    records = pruner.state.iterations
    assert asked == [3, 6] and control.steps == 6
    assert [r["control"]["steps"] for r in records] == [3, 6]
    assert [r["accepted"] for r in records] == [True, False]  # 30.0 is 0.08 dB under the control at 6 steps
