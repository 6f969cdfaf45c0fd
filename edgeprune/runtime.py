"""The one place where edgeprune selects Keras 2 (``tf_keras``) and imports TensorFlow.

tensorflow-model-optimization (tfmot) only supports Keras 2. ``TF_USE_LEGACY_KERAS=1`` makes ``tf.keras``
(and so the TFLite converter and tfmot) resolve to ``tf_keras``; it must be set before TensorFlow is
imported, so every edgeprune module imports ``tf`` and ``keras`` from here and nowhere else.

TensorFlow's C++ runtime writes start-up chatter (CUDA probing, CPU feature notes) to file descriptor 2
before its logging is initialised (and again when the eager context starts), which ``TF_CPP_MIN_LOG_LEVEL`` cannot stop. We silence fd 2 only
while TensorFlow is imported, so command-line output stays readable; set ``EDGEPRUNE_TF_LOGS=1`` to see it.
"""

import contextlib
import os
import sys

from edgeprune.errors import EdgepruneError

_LEGACY = os.environ.get("TF_USE_LEGACY_KERAS")
if _LEGACY not in (None, "1", "true", "True"):
    raise EdgepruneError(
        f"TF_USE_LEGACY_KERAS={_LEGACY!r} is set, but edgeprune needs Keras 2 (tf_keras): unset it or set it to 1"
    )
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def quiet_native_stderr():
    """Silences file descriptor 2 (C++ log lines of TensorFlow, the TFLite converter and LiteRT) inside the block.

    Python exceptions still propagate; set ``EDGEPRUNE_TF_LOGS=1`` to see everything."""
    if os.environ.get("EDGEPRUNE_TF_LOGS"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with quiet_native_stderr():
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    _cpu_devices = os.environ.get("EDGEPRUNE_CPU_DEVICES")
    if _cpu_devices:  # split the CPU into N logical devices (multi-device training on one machine, and its tests)
        if not _cpu_devices.isdigit() or int(_cpu_devices) < 1:
            raise EdgepruneError(f"EDGEPRUNE_CPU_DEVICES must be a positive integer, got {_cpu_devices!r}")
        tf.config.set_logical_device_configuration(
            tf.config.list_physical_devices("CPU")[0],
            [tf.config.LogicalDeviceConfiguration() for _ in range(int(_cpu_devices))])
    tf.config.list_logical_devices()  # starts the eager context now, so its CUDA probing is silenced too

if not keras.__version__.startswith("2."):  # pragma: no cover - guarded by the pinned dependencies
    raise EdgepruneError(f"tf_keras {keras.__version__} is not Keras 2: reinstall edgeprune's pinned dependencies")

__all__ = ["tf", "keras", "quiet_native_stderr"]
