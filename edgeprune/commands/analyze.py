"""``edgeprune analyze``: the cost report of a reference model or a saved model at an input size."""

from collections.abc import Sequence

from edgeprune.graph.cost import CostReport, model_cost, parse_dtype
from edgeprune.modelio import resolve_model
from edgeprune.sizes import check_multiple


def analyze(model, input_size: Sequence[int] | None = None, dtype: str = "fp32") -> CostReport:
    """Cost report of ``model`` (a keras.Model, a reference name or a .keras path) at ``input_size=(H, W)``.

    Without ``input_size``, reference models use the paper's evaluation size and saved models their own static
    input shape.
    """
    parse_dtype(dtype)
    resolved = resolve_model(model)
    size = tuple(input_size) if input_size is not None else resolved.default_input_size
    if size is not None:
        check_multiple(size, resolved.input_multiple, resolved.name)
    return model_cost(resolved.model, size, dtype, name=resolved.name)
