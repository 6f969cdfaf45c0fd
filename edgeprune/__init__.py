"""edgeprune: architecture-aware structured pruning of image-quality CNNs for phones.

The public API re-exports the library functions lazily: importing ``edgeprune`` loads neither TensorFlow nor tfmot
and changes nothing in the process (see :mod:`edgeprune.runtime`). The layers of the package are in ARCHITECTURE.md.
"""

__version__ = "0.1.0"

from edgeprune.errors import (  # noqa: E402
    EdgepruneError, ExportError, FileFormatError, InvalidArgumentError, ModelLoadError, PlanError, ShapeError,
    UnsupportedModelError,
)


def __getattr__(name):  # lazy: `import edgeprune` stays light until TensorFlow is needed
    if name in ("analyze",):
        from edgeprune.commands.analyze import analyze
        return analyze
    if name in ("model_cost", "CostReport"):
        from edgeprune.graph import cost
        return getattr(cost, name)
    if name in ("load_model", "save_model"):
        from edgeprune import modelio
        return getattr(modelio, name)
    raise AttributeError(f"module 'edgeprune' has no attribute {name!r}")


__all__ = [
    "EdgepruneError", "ExportError", "FileFormatError", "InvalidArgumentError", "ModelLoadError", "PlanError",
    "ShapeError", "UnsupportedModelError", "analyze", "model_cost", "CostReport", "load_model", "save_model",
]
