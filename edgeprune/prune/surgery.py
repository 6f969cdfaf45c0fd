"""Surgery: from a model and a plan, build a physically slimmer functional model with sliced weights.

The new model has the same layers and names; convolutions, dense layers and reshapes get their new widths, and every
weight is sliced on both axes (a layer's output channels and, through every coupling, the next layers' input
channels), including biases, BatchNormalization statistics and transposed-conv kernels.
"""

from edgeprune.core.runtime import keras
from edgeprune.graph.cost import model_cost
from edgeprune.graph.coupling import Coupling
from edgeprune.graph.model_graph import TensorRef
from edgeprune.graph.layer_table import resized_config, slice_weights
from edgeprune.core.modelio import rebuilt, resolve_model, save_model
from edgeprune.prune.plan import PruningPlan


def slim(model: keras.Model, plan: PruningPlan, coupling: Coupling | None = None) -> keras.Model:
    """A new model without the channels ``plan`` removes; ``model`` is not changed."""
    coupling = coupling or Coupling(model)
    plan.validate(coupling)
    kept = coupling.kept_channels({n: plan.kept_units(n) for n in coupling.groups})
    graph = coupling.graph
    changed_layers = {}
    for node in graph:
        if node.is_input:
            continue
        keep_out = kept[TensorRef(node.id, 0)]
        keep_in = kept[node.inputs[0]] if node.inputs else None
        in_changed = keep_in is not None and len(keep_in) != coupling.channels[node.inputs[0]]
        out_changed = len(keep_out) != coupling.channels[TensorRef(node.id, 0)]
        if in_changed or out_changed:
            changed_layers[node.layer.name] = (keep_in, keep_out)

    def resize(config):
        for entry in config["layers"]:
            name = entry["config"]["name"]
            if name in changed_layers:
                entry["config"] = resized_config(model.get_layer(name), entry["config"], changed_layers[name][1])

    def sliced(layer):
        if layer.name not in changed_layers:
            return layer.get_weights()
        keep_in, keep_out = changed_layers[layer.name]
        return slice_weights(layer, layer.get_weights(), keep_in, keep_out)

    return rebuilt(model, resize, sliced)


def slim_file(model, plan_path, out_path, input_size=None) -> dict:
    """Applies the plan in ``plan_path`` to ``model`` (name, path or keras.Model) and saves the slim model to
    ``out_path`` (.keras). Returns both models' cost totals at ``input_size`` (or the model's default size)."""
    plan = PruningPlan.load(plan_path)
    resolved = resolve_model(model)
    slim_model = slim(resolved.model, plan)
    size = tuple(input_size) if input_size else resolved.default_input_size
    original = model_cost(resolved.model, size, name=resolved.name)
    pruned = model_cost(slim_model, size, name=resolved.name)
    save_model(slim_model, out_path)
    return {"model": resolved.name, "out": str(out_path), "input_size": list(original.input_size or []),
            "original": {"totals": original.totals.to_dict()}, "pruned": {"totals": pruned.totals.to_dict()}}
