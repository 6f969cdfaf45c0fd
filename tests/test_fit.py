import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest

from edgeprune.core.runtime import keras
from edgeprune.data.pairs import PairSet
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.commands.train import train_command
from edgeprune.train.fit import (TrainConfig, fit, learning_rate_schedule, plain_copy, scale_of, task_of,
                                 validate_bicubic)
from keras_models import build_edsr, build_sid


def tiny_pool(scale=2, n=4, size=16, channels=3, factor=None):
    rng = np.random.default_rng(0)
    f = factor or scale
    targets = [rng.random((size * f, size * f, 3), dtype=np.float32) for _ in range(n)]
    inputs = [t[::f, ::f, :channels] if channels == 3 else rng.random((size, size, channels), dtype=np.float32)
              for t in targets]
    return PairSet(inputs, targets, f)


def test_fit_lowers_the_l1_loss_and_leaves_the_input_model_alone():
    model = build_edsr(num_blocks=1, num_features=8)
    before = [w.copy() for w in model.get_weights()]
    trained, history = fit(model, tiny_pool(), TrainConfig(steps=40, steps_per_epoch=20, batch_size=4, patch=8,
                                                            learning_rate=1e-3), verbose=0)
    assert history["epochs"] == 2 and history["steps"] == 40 and history["loss"][-1] < history["loss"][0]
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert trained is not model


def test_plain_copy_computes_the_same_and_owns_its_weights():
    model = build_sid(features=(4, 4, 4, 4, 4))  # has the custom DepthToSpace layer
    copy = plain_copy(model)
    x = np.random.default_rng(1).random((1, 16, 16, 4), dtype=np.float32)
    np.testing.assert_array_equal(model(x).numpy(), copy(x).numpy())
    copy.layers[1].kernel.assign(copy.layers[1].kernel * 0)
    assert np.any(model.layers[1].kernel.numpy() != 0)


def test_initialised_copy_is_reproducible_per_seed_and_fresh():
    from edgeprune.train.fit import initialised_copy

    model = build_sid(features=(4, 4, 4, 4, 4))
    a, b, c = initialised_copy(model, 0), initialised_copy(model, 0), initialised_copy(model, 1)
    assert [layer.name for layer in a.layers] == [layer.name for layer in model.layers]
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.layers[1].kernel.numpy(), c.layers[1].kernel.numpy())
    assert not np.array_equal(a.layers[1].kernel.numpy(), model.layers[1].kernel.numpy())


def test_initialised_copy_keeps_the_layer_configs_and_leaves_the_global_generators_alone():
    import random

    from edgeprune.train.fit import initialised_copy

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="unseeded")(inputs)  # Keras would draw its seed from Python's generator
    x = keras.layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(x))
    state = random.getstate(), np.random.get_state()[1].copy()
    a, b = initialised_copy(model, 5), initialised_copy(model, 5)
    assert random.getstate() == state[0] and np.array_equal(np.random.get_state()[1], state[1])
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert [layer.get_config() for layer in a.layers] == [layer.get_config() for layer in model.layers]
    with pytest.raises(InvalidArgumentError, match="seed must be an integer >= 0, got -1"):
        initialised_copy(model, -1)


def test_gradient_clipping_is_validated_and_reaches_adam():
    with pytest.raises(InvalidArgumentError, match="gradient clip norm must be > 0 or None, got 0"):
        TrainConfig(clipnorm=0).validate()
    # Adam divides by the gradient's scale, so a clip norm far below Adam's epsilon (1e-7) leaves steps ~1e-5 of lr:
    # the weights stay put, while an unclipped step moves them by about lr
    model = build_edsr(scale=2, num_blocks=1, num_features=4)
    pool = PairSet([np.random.default_rng(0).random((8, 8, 3), dtype=np.float32)],
                   [np.random.default_rng(1).random((16, 16, 3), dtype=np.float32)], 2)
    moved = {}
    for clip in (None, 1e-12):
        trained, _ = fit(model, pool, TrainConfig(steps=1, batch_size=1, patch=8, learning_rate=1e-2, clipnorm=clip),
                         verbose=0)
        moved[clip] = max(float(np.abs(a - b).max()) for a, b in zip(trained.get_weights(), model.get_weights()))
    assert moved[None] > 5e-3 and moved[1e-12] < 1e-5


def test_epoch_split_runs_exactly_the_steps_asked():
    from edgeprune.train.fit import epoch_split

    assert epoch_split(300, 50) == (50, 6) and epoch_split(30, 50) == (30, 1) and epoch_split(120, 50) == (40, 3)
    assert epoch_split(101, 50) == (50, 3)  # a prime: one short epoch too many rather than 101 epochs of 1 step
    assert epoch_split(4, 50) == (4, 1)


def test_schedule_halves_twice():
    schedule = learning_rate_schedule(TrainConfig(steps=100, learning_rate=1e-3))
    assert [float(schedule(s)) for s in (0, 49, 51, 76)] == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4])


def test_task_and_scale():
    assert (task_of(build_edsr(num_blocks=0, num_features=2, scale=3)), scale_of(build_edsr(num_blocks=0,
                                                                                            num_features=2,
                                                                                            scale=3))) == ("edsr", 3)
    assert (task_of(build_sid(features=(2, 2, 2, 2, 2))), scale_of(build_sid(features=(2, 2, 2, 2, 2)))) == ("sid", 2)
    inputs = keras.Input((None, None, 1))
    with pytest.raises(InvalidArgumentError, match="this model has 1"):
        task_of(keras.Model(inputs, inputs))


def test_bad_config():
    with pytest.raises(InvalidArgumentError, match="steps must be an integer >= 1, got 0"):
        TrainConfig(steps=0).validate()


def test_resume_continues_from_the_last_epoch(tmp_path):
    model = build_edsr(num_blocks=1, num_features=4)
    pool = tiny_pool()
    config = TrainConfig(steps=40, steps_per_epoch=10, batch_size=2, patch=8, learning_rate=1e-3)

    class Killed(Exception):
        pass

    class KillAfterTwoEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise Killed()

    with pytest.raises(Killed):
        fit(model, pool, config, workdir=tmp_path, callbacks=[KillAfterTwoEpochs()], verbose=0)
    assert (tmp_path / "backup").exists()

    class CountEpochs(keras.callbacks.Callback):
        epochs = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append(epoch)

    _, history = fit(model, pool, config, workdir=tmp_path, resume=True, callbacks=[CountEpochs()], verbose=0)
    assert CountEpochs.epochs == [2, 3]  # the two epochs that were left
    assert not (tmp_path / "backup").exists()


def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        from edgeprune.core.runtime import configure_process
        configure_process()  # EDGEPRUNE_CPU_DEVICES=2: what the command line does first
        from edgeprune.train.fit import TrainConfig, fit, strategy_for_this_machine
        from edgeprune.data.pairs import PairSet
        from keras_models import build_edsr
        rng = np.random.default_rng(0)
        t = [rng.random((32, 32, 3), dtype=np.float32) for _ in range(4)]
        pool = PairSet([x[::2, ::2] for x in t], t, 2)
        strategy = strategy_for_this_machine()
        trained, history = fit(build_edsr(num_blocks=1, num_features=4), pool,
                               TrainConfig(steps=6, steps_per_epoch=3, batch_size=4, patch=8), verbose=0)
        print(json.dumps({"replicas": strategy.num_replicas_in_sync, "history": history,
                          "strategy": type(strategy).__name__}))
    """)
    env = {**os.environ, "EDGEPRUNE_CPU_DEVICES": "2"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["strategy"] == "MirroredStrategy" and out["replicas"] == 2 and out["history"]["replicas"] == 2
    assert all(np.isfinite(out["history"]["loss"]))


def test_train_command_on_a_folder_writes_model_and_report(tmp_path):
    from PIL import Image

    from edgeprune.core.modelio import load_model, save_model

    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2)):
        (tmp_path / "data" / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "data" / split /
                                                                                  f"{i}.png")
    start = save_model(build_edsr(num_blocks=1, num_features=4), tmp_path / "start.keras")
    out = tmp_path / "out" / "baseline.keras"
    report = train_command(str(start), out, data=tmp_path / "data", steps=4, batch_size=2, patch=8, verbose=0)
    assert report["validation"]["images"] == 2 and report["data"]["train"]["images"] == 3
    assert json.loads((tmp_path / "out" / "baseline.keras.json").read_text())["config"]["steps"] == 4
    assert load_model(out).count_params() == load_model(start).count_params()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["baseline.keras", "baseline.keras.json"]
    (tmp_path / "neither").mkdir()  # no train/ folder of photos, no short/ and long/ raw files
    with pytest.raises(InvalidArgumentError, match="is not in the SID Sony layout"):
        train_command("sid", tmp_path / "s.keras", data=tmp_path / "neither", steps=1)


def test_train_starts_a_reference_from_seed_0_and_a_keras_file_from_its_own_weights(tmp_path, monkeypatch):
    from edgeprune.core.modelio import resolve_model, save_model
    from edgeprune.train.fit import initialised_copy

    class Stop(Exception):
        pass

    started = []

    def capture(model, *args, **kwargs):
        started.append(model.get_weights())
        raise Stop

    monkeypatch.setattr("edgeprune.commands.train.fit", capture)
    own = build_edsr(scale=2, num_blocks=1, num_features=4)
    path = save_model(own, tmp_path / "own.keras")
    with pytest.raises(Stop):
        train_command(str(path), tmp_path / "a.keras")
    with pytest.raises(Stop):
        train_command("edsr", tmp_path / "b.keras")
    for a, b in zip(started[0], own.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    expected = initialised_copy(resolve_model("edsr").model, 0).get_weights()
    for a, b in zip(started[1], expected, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not (tmp_path / "a.keras").exists() and not (tmp_path / "b.keras").exists()


def test_patch_dataset_turns_tf_data_autotuning_off_and_draws_reproducible_batches():
    # tf.data's autotuning thread made the end of a fit wait idle for up to tens of seconds (BENCHMARKS.md, "the idle
    # stall at the end of every fit"); the prefetch depth is set explicitly instead
    from edgeprune.train.fit import patch_dataset

    pool = tiny_pool()
    config = TrainConfig(steps=2, batch_size=4, patch=8, seed=5)
    dataset = patch_dataset(pool, config, 4)
    assert dataset.options().autotune.enabled is False
    first = [x.numpy() for x, _ in dataset.take(2)]
    again = [x.numpy() for x, _ in patch_dataset(pool, config, 4).take(2)]
    assert first[0].shape == (4, 8, 8, 3)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], first[1])


def test_the_bicubic_reference_is_measured_as_a_model_is_and_only_for_rgb_super_resolution():
    from edgeprune.core.runtime import tf

    pool = tiny_pool(scale=2, n=3, size=12)
    expected = []
    for x, y in zip(pool.inputs, pool.targets):
        up = tf.clip_by_value(tf.image.resize(x[None], (24, 24), method="bicubic"), 0.0, 1.0)[:, 2:-2, 2:-2]
        expected.append(float(tf.image.psnr(up, y[None, 2:-2, 2:-2], 1.0)[0]))
    result = validate_bicubic(pool)
    assert result["images"] == 3 and result["psnr"] == pytest.approx(np.mean(expected), abs=1e-5)
    with pytest.raises(InvalidArgumentError, match="RGB super-resolution"):
        validate_bicubic(tiny_pool(scale=1, n=1, size=12, channels=4, factor=2))
    with pytest.raises(InvalidArgumentError, match="RGB super-resolution"):
        validate_bicubic(PairSet(pool.targets, pool.targets, 1))
