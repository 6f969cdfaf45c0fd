"""Everything edgeprune takes from tensorflow-model-optimization (tfmot): its public pruning API, and the few internals
that driving tfmot's wrappers with our own channel masks needs.

The internals, all here and nowhere else: the wrapper class (``pruning_wrapper.PruneLowMagnitude``) and its
``pruning_vars`` (weight, mask, threshold) triples, the registry's prunable weights per layer
(``prune_registry.PruneRegistry._weight_names``), the wrapper's name prefix, and tfmot's Keras (its ``compat`` module),
which must be our tf_keras. A tfmot upgrade that moves one of them fails at import with a message naming it
(``tests/test_tfmot_adapter.py`` proves each).
"""

import importlib

from edgeprune.core.errors import EdgepruneError
from edgeprune.core.runtime import keras

import tensorflow_model_optimization as tfmot  # noqa: E402  (after runtime: TensorFlow loads quietly)

_SPARSITY = "tensorflow_model_optimization.python.core.sparsity.keras"


def _internal(module: str, name: str):
    """``module.name`` (a dotted name inside the module too) from tfmot's internals, or an EdgepruneError that names
    what moved."""
    try:
        found = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
        return found
    except (ImportError, AttributeError) as exc:
        raise EdgepruneError(
            f"tensorflow-model-optimization {tfmot.__version__} has no {module}.{name}, which edgeprune's channel "
            "masks use: install the tfmot version pinned in edgeprune's pyproject.toml"
        ) from exc


# public API
PruningSchedule = tfmot.sparsity.keras.PruningSchedule
UpdatePruningStep = tfmot.sparsity.keras.UpdatePruningStep
prune_low_magnitude = tfmot.sparsity.keras.prune_low_magnitude

# internals
PruneLowMagnitude = _internal(f"{_SPARSITY}.pruning_wrapper", "PruneLowMagnitude")
_PruneRegistry = _internal(f"{_SPARSITY}.prune_registry", "PruneRegistry")
_weight_names = _internal(f"{_SPARSITY}.prune_registry", "PruneRegistry._weight_names")
if _internal("tensorflow_model_optimization.python.core.keras.compat", "keras.layers.Layer") is not keras.layers.Layer:
    raise EdgepruneError(f"tensorflow-model-optimization {tfmot.__version__} does not use tf_keras (Keras 2): install "
                         "the tfmot version pinned in edgeprune's pyproject.toml")

WRAPPER_PREFIX = "prune_low_magnitude_"  # tfmot names a wrapper after its class (snake case) and the wrapped layer


def prunable_weight_names(layer) -> list[str]:
    """The weights of ``layer`` tfmot's registry masks (for example ``["kernel"]``); [] if tfmot cannot wrap it."""
    if not _PruneRegistry.supports(layer):
        return []
    return list(_weight_names(layer))


def is_wrapper(layer) -> bool:
    return isinstance(layer, PruneLowMagnitude)


def mask_variables(wrapper) -> dict:
    """``id(weight variable) -> its mask variable`` of a tfmot wrapper (built)."""
    return {id(weight): mask for weight, mask, _threshold in wrapper.pruning_vars}
