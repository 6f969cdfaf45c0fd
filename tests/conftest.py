import numpy as np
import pytest

from edgeprune.core.runtime import keras, tf


# A latency profile standing in for this host's in tests (the real one is calibrated by the README's main command
# and tests/test_host_profile.py): conv kernels in tiles of 4 channels, so the tests' 8-wide models can be pruned.
TEST_HOST_PROFILE = {
    "target": "host", "runner": "ai_edge_litert (test stand-in for this host's profile)", "num_threads": 1,
    "default": {"mac_per_s": 2e10, "bytes_per_s": 2e10, "overhead_us": 5.0},
    "ops": {"CONV_2D": {"mac_per_s": 4e10, "bytes_per_s": 1e10, "overhead_us": 10.0}},
    "channel_tile": 4, "small_channel_tile": 4,
}


@pytest.fixture(autouse=True, scope="session")
def _host_profile_cache(tmp_path_factory):
    """Every test sees a cache holding TEST_HOST_PROFILE as this host's 1-thread profile (no test calibrates the
    host by accident); tests of the cache itself point EDGEPRUNE_CACHE_DIR elsewhere."""
    import os

    from edgeprune.deploy.host_profile import CACHE_ENV, host_profile_path
    from edgeprune.graph.latency_profile import LatencyProfile

    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("edgeprune-cache"))
    LatencyProfile(**TEST_HOST_PROFILE).save(host_profile_path(1))
    yield
    if old is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = old


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts with Keras' global state cleared (``clear_session``) and fixed seeds (layer names and weights
    are reproducible)."""
    keras.backend.clear_session()
    tf.random.set_seed(0)
    np.random.seed(0)
    yield


def single_layer_model(layer, input_shape):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, layer(inputs))


def load_tool(name: str):
    """A script of tools/ imported as a module (tools/ is not a package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
