"""edgeprune.core.runtime: importing edgeprune configures nothing; the command line configures the process in one call; the
library leaves the caller's global generators and logical devices as they were."""

import json
import os
import subprocess
import sys
import textwrap

from click.testing import CliRunner


def run_python(script: str, **env) -> subprocess.CompletedProcess:
    """``script`` in a fresh interpreter, with ``env`` added to (or, for None values, removed from) the environment."""
    full = {k: v for k, v in os.environ.items() if k not in env}
    full.update({k: v for k, v in env.items() if v is not None})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=full, capture_output=True, text=True,
                          timeout=300)


def last_json(proc: subprocess.CompletedProcess):
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_edgeprune_loads_no_tensorflow_and_configures_nothing():
    out = last_json(run_python("""
        import json, os, sys
        before = dict(os.environ)
        import edgeprune, edgeprune.core.runtime, edgeprune.core.errors
        loaded = sorted({m.split(".")[0] for m in sys.modules} & {"tensorflow", "tensorflow_model_optimization",
                                                                   "tf_keras", "keras"})
        from edgeprune.core.runtime import tf  # TensorFlow itself, and nothing else: the caller still owns the devices
        tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                                   [tf.config.LogicalDeviceConfiguration()] * 3)
        print(json.dumps({"loaded": loaded, "env_changed": sorted(set(os.environ.items()) ^ set(before.items())),
                          "cpus": len(tf.config.list_logical_devices("CPU"))}))
    """, TF_USE_LEGACY_KERAS=None, TF_CPP_MIN_LOG_LEVEL=None, EDGEPRUNE_CPU_DEVICES="2"))
    assert out == {"loaded": [], "env_changed": [], "cpus": 3}


def test_keras_is_tf_keras_everywhere():
    out = last_json(run_python("""
        import json, os
        from edgeprune.core.runtime import keras, tf
        import tensorflow_model_optimization as tfmot  # sets TF_USE_LEGACY_KERAS=1 itself (tfmot's, documented)
        from tensorflow_model_optimization.python.core.keras.compat import keras as tfmot_keras

        print(json.dumps([os.environ["TF_USE_LEGACY_KERAS"] == "1", keras.__version__.startswith("2."),
                          tfmot_keras.layers.Conv2D is keras.layers.Conv2D,
                          tf.keras.layers.Conv2D is keras.layers.Conv2D,
                          tfmot.sparsity.keras.prune_low_magnitude is not None]))
    """, TF_USE_LEGACY_KERAS=None))
    assert out == [True] * 5


def test_a_conflicting_setting_is_an_error_with_advice(monkeypatch):
    proc = run_python("from edgeprune.core.runtime import configure_process; configure_process()", TF_USE_LEGACY_KERAS="0")
    assert proc.returncode != 0
    assert ("TF_USE_LEGACY_KERAS='0' is set, but edgeprune needs Keras 2 (tf_keras): unset it or set it to 1"
            in proc.stderr)
    from edgeprune.cli import cli

    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "0")
    result = CliRunner().invoke(cli, ["analyze", "edsr"], prog_name="edgeprune")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "Error: TF_USE_LEGACY_KERAS='0' is set, but edgeprune needs Keras 2 (tf_keras): unset it or set it to 1"]


def test_configure_process_splits_the_cpu_quiets_the_logs_and_says_when_it_is_too_late():
    script = """
        import json, os, sys
        from edgeprune.core.runtime import configure_process
        configure_process()
        configure_process()  # harmless twice
        from edgeprune.core.runtime import tf
        print(json.dumps({"cpus": len(tf.config.list_logical_devices("CPU")), "log": os.environ["TF_CPP_MIN_LOG_LEVEL"],
                          "keras_3_loaded": "keras" in sys.modules, "legacy": os.environ["TF_USE_LEGACY_KERAS"],
                          "onednn": os.environ["TF_ENABLE_ONEDNN_OPTS"],
                          "inter_op": os.environ["TF_NUM_INTEROP_THREADS"]}))
    """
    assert last_json(run_python(script, EDGEPRUNE_CPU_DEVICES="2", TF_CPP_MIN_LOG_LEVEL=None, TF_USE_LEGACY_KERAS=None,
                                TF_ENABLE_ONEDNN_OPTS=None, TF_NUM_INTEROP_THREADS=None)
                     ) == {"cpus": 2, "log": "3", "keras_3_loaded": False, "legacy": "1", "onednn": "1",
                           "inter_op": "1"}  # TensorFlow's process_util reads it when its runtime starts
    chosen = last_json(run_python(script, TF_ENABLE_ONEDNN_OPTS="0", TF_NUM_INTEROP_THREADS="2"))
    assert chosen["onednn"] == "0" and chosen["inter_op"] == "2"  # the user's choice stands
    proc = run_python(script, EDGEPRUNE_CPU_DEVICES="two")
    assert proc.returncode != 0 and "EDGEPRUNE_CPU_DEVICES must be a positive integer, got 'two'" in proc.stderr
    late = run_python("""
        from edgeprune.core.runtime import configure_process, tf
        tf.constant(1.0)  # TensorFlow's runtime starts with one CPU device
        configure_process()
    """, EDGEPRUNE_CPU_DEVICES="2")
    assert late.returncode != 0
    assert ("EDGEPRUNE_CPU_DEVICES=2 cannot take effect: TensorFlow already started with 1 CPU device(s) in this "
            "process; call configure_process() before using TensorFlow") in late.stderr


def test_building_pruning_and_fine_tuning_leave_the_global_generators_and_devices_alone(tmp_path):
    out = last_json(run_python(f"""
        import json, random
        import numpy as np
        from edgeprune.core.runtime import keras, tf
        # imported first, as a caller does: importing tfmot imports Keras 3, whose 'rich' draws from Python's
        # generator once at import (third-party, not ours)
        from edgeprune.data.pairs import PairSet
        from edgeprune.graph.coupling import Coupling
        from edgeprune.core.modelio import load_model, resolve_model
        from edgeprune.prune.masking import ChannelMasks
        from edgeprune.prune.oneshot import l1_plan, one_shot_prune
        from edgeprune.train.fit import TrainConfig, fit, initialised_copy

        tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                                   [tf.config.LogicalDeviceConfiguration()] * 2)
        random.seed(123)
        np.random.seed(456)
        tf.random.set_seed(789)
        tf.random.set_global_generator(tf.random.Generator.from_seed(42))

        def state():
            return {{"python": repr(random.getstate()), "numpy": repr(np.random.get_state()),
                    "tf_generator": tf.random.get_global_generator().state.numpy().tolist(),
                    "devices": [d.name for d in tf.config.list_logical_devices()]}}

        before = state()

        model = resolve_model("edsr", num_blocks=1, num_features=4).model
        one_shot_prune(model, 0.5, {str(tmp_path / "run")!r}, input_size=(16, 16))
        slim = load_model({str(tmp_path / "run" / "pruned.keras")!r})
        rng = np.random.default_rng(0)
        targets = [rng.random((32, 32, 3), dtype=np.float32) for _ in range(2)]
        pool = PairSet([t[::2, ::2] for t in targets], targets, 2)
        config = TrainConfig(steps=2, steps_per_epoch=2, batch_size=2, patch=8)
        fit(slim, pool, config, verbose=0)
        fit(initialised_copy(model, 3), pool, config, verbose=0, strategy=tf.distribute.get_strategy(),
            masks=ChannelMasks(Coupling(model), l1_plan(Coupling(model), 0.5, "edsr")))
        after = state()
        drawn = tf.random.uniform([4]).numpy().tolist()  # the op-level seed's sequence was not advanced or reset
        tf.random.set_seed(789)
        print(json.dumps({{"same": {{k: before[k] == after[k] for k in before}}, "devices": after["devices"],
                          "op_seed_untouched": drawn == tf.random.uniform([4]).numpy().tolist()}}))
    """))
    assert out["same"] == {"python": True, "numpy": True, "tf_generator": True, "devices": True}
    assert out["op_seed_untouched"] and len([d for d in out["devices"] if ":CPU:" in d]) == 2
