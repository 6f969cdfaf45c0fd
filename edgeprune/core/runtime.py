"""The one place where edgeprune imports TensorFlow and Keras 2 (``tf_keras``), and configures a process for them.

Every edgeprune module takes ``tf`` and ``keras`` from here (``from edgeprune.core.runtime import keras, tf``); ``keras``
is ``tf_keras`` (Keras 2: tensorflow-model-optimization supports nothing else). Importing this module does nothing;
the first ``tf``/``keras`` asked for imports TensorFlow and tf_keras (with TensorFlow's native start-up chatter on file
descriptor 2 silenced) and nothing else: no environment variable, no device configuration, no runtime start, so a
caller can still configure GPUs and logical devices afterwards. tfmot sets ``TF_USE_LEGACY_KERAS=1`` itself when it
is imported (that is tfmot's, documented); the library does not need it, since it uses ``tf_keras`` directly and the
TFLite converter takes tf_keras models either way.

:func:`configure_process` is for programs, not for the library: the command line calls it once, before any command
runs. It keeps TensorFlow's logs quiet, selects Keras 2 for ``tf.keras`` before TensorFlow is imported (else
TensorFlow's import also loads Keras 3, about a quarter of its import time, for nothing), splits the CPU into
``EDGEPRUNE_CPU_DEVICES`` logical devices (multi-device training on one machine, and its tests) and starts
TensorFlow's runtime with its CUDA probing silenced. Set ``EDGEPRUNE_TF_LOGS=1`` to see everything TensorFlow writes.
"""

import contextlib
import os
import sys

from edgeprune.core.errors import EdgepruneError

_LAZY = ("tf", "keras")
_process_configured = False  # configure_process() was called; its TensorFlow part runs once TensorFlow is loaded
_tensorflow_configured = False


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


def _load():
    """Imports TensorFlow and tf_keras (quietly) and publishes them as this module's ``tf`` and ``keras``."""
    with quiet_native_stderr():
        import tensorflow as tf
        import tf_keras as keras
    if not keras.__version__.startswith("2."):  # pragma: no cover - guarded by the pinned dependencies
        raise EdgepruneError(f"tf_keras {keras.__version__} is not Keras 2: reinstall edgeprune's pinned dependencies")
    globals().update(tf=tf, keras=keras)
    if _process_configured:
        _configure_tensorflow()


def __getattr__(name):
    if name in _LAZY:
        _load()
        return globals()[name]
    raise AttributeError(f"module 'edgeprune.core.runtime' has no attribute {name!r}")


def cpu_devices_requested() -> int | None:
    """The logical CPU device count ``EDGEPRUNE_CPU_DEVICES`` asks for, or None when it is unset."""
    value = os.environ.get("EDGEPRUNE_CPU_DEVICES")
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise EdgepruneError(f"EDGEPRUNE_CPU_DEVICES must be a positive integer, got {value!r}")
    return int(value)


def configure_process() -> None:
    """Configures this process for edgeprune's command line (call it once, before any work; repeated calls are
    harmless): TensorFlow's C++ logs off (``TF_CPP_MIN_LOG_LEVEL=3`` unless set), ``tf.keras`` as Keras 2
    (``TF_USE_LEGACY_KERAS=1``, as tfmot sets it), oneDNN's CPU kernels on (``TF_ENABLE_ONEDNN_OPTS=1`` unless set),
    the CPU split into ``EDGEPRUNE_CPU_DEVICES`` logical devices, and TensorFlow's runtime started with its start-up
    chatter silenced.

    The TensorFlow part runs now if TensorFlow is loaded, else as soon as ``tf`` or ``keras`` is first taken from
    this module, so a command that never needs TensorFlow does not pay for importing it."""
    global _process_configured
    legacy = os.environ.get("TF_USE_LEGACY_KERAS")
    if legacy not in (None, "1", "true", "True"):  # tfmot would override it on import: say so instead
        raise EdgepruneError(
            f"TF_USE_LEGACY_KERAS={legacy!r} is set, but edgeprune needs Keras 2 (tf_keras): unset it or set it to 1"
        )
    cpu_devices_requested()  # a bad value fails before any work
    if "tensorflow" not in sys.modules:  # these take effect only when set before TensorFlow is imported
        # 3: not even C++ ERROR lines (grappler's "remapper failed" on SID's LeakyReLU gradients under oneDNN is
        # one, harmless); errors that matter reach Python as exceptions. EDGEPRUNE_TF_LOGS=1 shows everything.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get("EDGEPRUNE_TF_LOGS") else "3")
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        # TensorFlow turns its oneDNN CPU kernels on by itself only on some CPUs (not on an AVX2-only AMD EPYC);
        # there they made edgeprune's training step 1.7-1.9x faster (BENCHMARKS.md, "Training throughput").
        # Set TF_ENABLE_ONEDNN_OPTS=0 to keep TensorFlow's own choice.
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
        # one inter-op thread: ops run one after another, each on every core (the default runs one op per core
        # beside each op's own threads); EDSR's fit step 0.998 -> 0.818 s on 2 AVX2 cores, SID's unchanged
        # (BENCHMARKS.md, "Training throughput"). Set TF_NUM_INTEROP_THREADS to choose another.
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    _process_configured = True
    if "tf" in globals():
        _configure_tensorflow()


def _configure_tensorflow() -> None:
    global _tensorflow_configured
    if _tensorflow_configured:
        return
    tf = globals()["tf"]
    count = cpu_devices_requested()
    with quiet_native_stderr():
        if count:
            cpu = tf.config.list_physical_devices("CPU")[0]
            try:
                tf.config.set_logical_device_configuration(
                    cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
            except RuntimeError:  # the runtime already started: fine only if it has the devices asked for
                have = len(tf.config.list_logical_devices("CPU"))
                if have != count:
                    raise EdgepruneError(
                        f"EDGEPRUNE_CPU_DEVICES={count} cannot take effect: TensorFlow already started with {have} "
                        "CPU device(s) in this process; call configure_process() before using TensorFlow"
                    ) from None
        tf.config.list_logical_devices()  # starts the runtime now, so its CUDA probing is silenced too
    _tensorflow_configured = True


__all__ = ["configure_process", "cpu_devices_requested", "keras", "quiet_native_stderr", "tf"]
