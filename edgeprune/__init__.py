"""edgeprune: architecture-aware structured pruning of image-quality CNNs for phones.

Pruning inside your own training, in the shape of tfmot's API::

    pruner = edgeprune.Pruner(model, edgeprune.PruneConfig(target_mac=0.5, finetune_steps=200))
    pruned = pruner.model                                    # tfmot-wrapped: compile and fit it as you would
    pruned.compile(optimizer, loss=your_loss)
    pruned.fit(your_dataset, epochs=1000, callbacks=[edgeprune.QualityGatedPruning(pruner, validation_pairs)])
    slim = pruner.slim()                                     # channels physically removed
    edgeprune.export_tflite(slim, "model.tflite", input_size=(256, 256))

To fine-tune against the unpruned model's output as well as the ground truth (knowledge distillation), fit a
``edgeprune.Distiller(pruner.model, teacher=model, weight=1.0)`` instead of ``pruner.model``, with the same callback.

The public names are re-exported lazily: importing ``edgeprune`` loads neither TensorFlow nor tfmot and changes
nothing in the process (see :mod:`edgeprune.core.runtime`). The layers of the package are in ARCHITECTURE.md.
"""

__version__ = "0.1.0"

from edgeprune.core.errors import (  # noqa: E402
    EdgepruneError, ExportError, FileFormatError, InvalidArgumentError, ModelLoadError, PlanError, ShapeError,
    UnsupportedModelError,
)


_PUBLIC = {  # public name -> the module that defines it
    "PruneConfig": "edgeprune.prune.settings",
    "Pruner": "edgeprune.prune.pruner",
    "QualityGatedPruning": "edgeprune.prune.gating",
    "EqualBudgetControl": "edgeprune.prune.control",
    "Distiller": "edgeprune.train.distill",
    "PruningPlan": "edgeprune.prune.plan",
    "LatencyProfile": "edgeprune.graph.latency_profile",
    "export_tflite": "edgeprune.deploy.export",
}


def __getattr__(name):  # lazy: `import edgeprune` stays light until TensorFlow is needed
    if name in ("analyze",):
        from edgeprune.commands.analyze import analyze
        return analyze
    if name in ("model_cost", "CostReport"):
        from edgeprune.graph import cost
        return getattr(cost, name)
    if name in ("load_model", "save_model"):
        from edgeprune.core import modelio
        return getattr(modelio, name)
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'edgeprune' has no attribute {name!r}")


__all__ = [
    "EdgepruneError", "ExportError", "FileFormatError", "InvalidArgumentError", "ModelLoadError", "PlanError",
    "ShapeError", "UnsupportedModelError", "analyze", "model_cost", "CostReport", "load_model", "save_model",
    *_PUBLIC,
]
