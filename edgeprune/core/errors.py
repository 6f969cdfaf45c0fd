"""Exception types for edgeprune.

Every error a user can cause (bad file, bad option, a model the engine cannot handle) is an
:class:`EdgepruneError`. Its message is one line that says what is wrong and what to do; the CLI prints
it as ``Error: <message>`` and exits with code 2, without a traceback.
"""


class EdgepruneError(Exception):
    """Base class of every user-facing edgeprune error."""


class InvalidArgumentError(EdgepruneError, ValueError):
    """An argument is out of range or malformed (an input size, a ratio, a width)."""


class ModelLoadError(EdgepruneError):
    """A model file is missing, is not a tf_keras model, or cannot be loaded safely."""


class UnsupportedModelError(EdgepruneError):
    """The model has a structure edgeprune cannot reason about (a nested model, a dynamic shape, ...)."""


class ShapeError(EdgepruneError):
    """The model cannot be evaluated at the requested input size."""


class PlanError(EdgepruneError):
    """A pruning plan does not fit the model, or its contents are invalid."""


class ExportError(EdgepruneError):
    """A TFLite conversion failed, or its verification found a disagreement with the Keras model."""


class FileFormatError(InvalidArgumentError):
    """A file given by the user or found in the cache is unreadable, corrupt, or not the kind of file expected."""


class CheckpointError(FileFormatError):
    """A checkpoint to import is unreadable or truncated, is not the architecture named, or its tensors do not fit
    it (a missing, unexpected or misshapen tensor)."""


class ImportVerificationError(EdgepruneError):
    """An imported model does not reproduce the original network's output closely enough; nothing was written."""


class MissingDependencyError(EdgepruneError):
    """An optional dependency (an extra such as ``edgeprune[torch]``) is needed and not installed."""
