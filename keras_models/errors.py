"""The one exception type of :mod:`keras_models`."""


class ModelConfigError(ValueError):
    """A builder argument is out of range or malformed; the message says what is supported."""
