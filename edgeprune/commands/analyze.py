"""``edgeprune analyze``: the cost report of a reference model or a saved model at an input size, and what the
command prints (with a latency prediction when given a profile)."""

import json
from collections.abc import Sequence

from edgeprune.graph.cost import CostReport, model_cost, parse_dtype, zero_kernels
from edgeprune.core.modelio import resolve_model
from edgeprune.core.sizes import check_multiple


def analyze(model, input_size: Sequence[int] | None = None, dtype: str = "fp32") -> CostReport:
    """Cost report of ``model`` (a keras.Model, a reference name or a .keras path) at ``input_size=(H, W)``.

    Without ``input_size``, reference models use the paper's evaluation size and saved models their own static
    input shape.
    """
    return _analyzed(model, input_size, dtype)[1]


def _analyzed(model, input_size, dtype):
    """(the resolved keras.Model, its cost report): the model is resolved (loaded) once."""
    parse_dtype(dtype)
    resolved = resolve_model(model)
    size = tuple(input_size) if input_size is not None else resolved.default_input_size
    if size is not None:
        check_multiple(size, resolved.input_multiple, resolved.name)
    return resolved.model, model_cost(resolved.model, size, dtype, name=resolved.name)


def analyze_command(model, input_size: Sequence[int] | None = None, dtype: str = "fp32", as_json: bool = False,
                    all_layers: bool = False, latency_profile=None) -> str:
    """:func:`analyze`, with per-layer and total latency predicted from ``latency_profile`` (a path from
    ``edgeprune calibrate``) when given; returns what the command prints: one JSON object, or the cost table (every
    layer with ``all_layers``) followed by the latency table."""
    from edgeprune.commands.render import cost_table, latency_table, zero_kernel_note

    keras_model, report = _analyzed(model, input_size, dtype)
    sparsity = zero_kernels(keras_model, report)
    latency = None
    if latency_profile:
        from edgeprune.graph.latency_profile import LatencyProfile, predict_report

        latency = predict_report(LatencyProfile.load(latency_profile), report)
    if as_json:
        return json.dumps(report.to_dict() | ({"latency": latency} if latency else {}) |
                          ({"zero_kernels": sparsity} if sparsity["zero_kernels"] else {}))
    text = cost_table(report, all_layers=all_layers) + zero_kernel_note(sparsity)
    return f"{text}\n\n{latency_table(latency, all_layers=all_layers)}" if latency else text
