"""What a checkpoint format module hands to the importer: the model in our architecture, and the original network."""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Converted:
    """A checkpoint converted to one of edgeprune's tf_keras architectures.

    ``model`` holds the imported weights; ``config`` is the inferred (or given) configuration, JSON-able;
    ``conversions`` says in words what was changed on the way (layouts, channel orders, value ranges);
    ``reference(x)`` runs the *original* network, in its own framework, on ``x`` given in our model's input layout
    and value range (N x H x W x C float32) and returns its output in our model's layout and range, so the two can be
    compared directly; ``framework`` names it (with its version); ``verify_size`` is the input size (H, W) the check
    runs at; ``release()`` frees what ``reference`` holds (a ``tf.compat.v1.Session``, a torch module).
    """

    model: object
    architecture: str
    config: dict
    conversions: list[str]
    reference: Callable[[np.ndarray], np.ndarray]
    framework: str
    verify_size: tuple[int, int]
    ignored: list[str] = field(default_factory=list)
    release: Callable[[], None] = lambda: None
