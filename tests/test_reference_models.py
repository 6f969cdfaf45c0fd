"""Every registered reference model, at tiny widths, and every shipped trained model, at its real widths, through the
whole data path (timm's model-wide test): build or load -> one-shot prune -> slim -> masked equals slim -> TFLite
export -> LiteRT run -> the .tflite's cost equals the cost model's."""

import numpy as np
import pytest

from edgeprune.deploy.export import export_tflite
from edgeprune.graph.cost import model_cost, predicted_cost
from edgeprune.graph.coupling import Coupling
from edgeprune.prune.masking import masked_model
from edgeprune.prune.oneshot import equivalence, l1_plan
from edgeprune.prune.surgery import slim
from edgeprune.core.modelio import load_shipped
from keras_models import REFERENCE_MODELS, build_reference
from keras_models.shipped import shipped_names

TINY = {  # every registered name must have a tiny configuration here (the first test checks)
    "edsr": ({"num_blocks": 2, "num_features": 8}, (12, 10)),
    "edsr_x3": ({"num_blocks": 2, "num_features": 8}, (12, 10)),
    "edsr_x4": ({"num_blocks": 2, "num_features": 8}, (12, 10)),
    "sid": ({"features": (4, 6, 8, 10, 12)}, (32, 48)),
}


def test_every_registered_model_is_covered():
    assert sorted(TINY) == sorted(REFERENCE_MODELS)


@pytest.mark.parametrize("name", sorted(TINY))
def test_build_prune_slim_export_run_and_cost(name, tmp_path):
    kwargs, size = TINY[name]
    _prune_slim_export_run_and_cost(build_reference(name, **kwargs), name, size, tmp_path)


@pytest.mark.parametrize("name", shipped_names())
def test_the_shipped_trained_models_at_their_real_widths(name, tmp_path):
    model, shipped = load_shipped(name)
    reference = build_reference(name)  # the registered configuration's widths, layer by layer
    assert [(l.name, getattr(l, "filters", None)) for l in model.layers] == \
        [(l.name, getattr(l, "filters", None)) for l in reference.layers]
    assert model.count_params() == reference.count_params() == shipped.manifest["architecture"]["parameters"]
    _prune_slim_export_run_and_cost(model, name, {"edsr": (24, 20), "sid": (32, 48)}[name], tmp_path)


def _prune_slim_export_run_and_cost(model, name, size, tmp_path):
    coupling = Coupling(model)
    assert coupling.groups, f"{name} has no prunable group"
    plan = l1_plan(coupling, 0.5, name)
    slim_model = slim(model, plan, coupling)
    masked = masked_model(model, plan, coupling)

    # the slim model is really smaller, by exactly what the plan predicts
    before, after = model_cost(model, size), model_cost(slim_model, size)
    kept = coupling.kept_channels({n: plan.kept_units(n) for n in coupling.groups})
    assert predicted_cost(model, {r: len(k) for r, k in kept.items()}, size).totals == after.totals
    assert after.totals.mac < before.totals.mac and after.totals.weights < before.totals.weights

    # masked (tfmot wrappers, full width) computes what the slim model computes
    eq = equivalence(masked, slim_model, (1, *size, model.inputs[0].shape[-1]))
    assert eq["max_rel_diff"] < 1e-5

    # exported to TFLite, run by LiteRT on a photo, verified numerically and against the cost model
    result = export_tflite(slim_model, tmp_path / f"{name}.tflite", size)
    assert result["passed"] and result["numeric"]["passed"] and result["census"]["mismatches"] == []
    assert result["census"]["mac_tflite"] == after.totals.mac
    assert result["census"]["conv_weights_tflite"] == after.totals.weights
    scale = {"edsr": 2, "edsr_x3": 3, "edsr_x4": 4, "sid": 2}[name]
    out = slim_model(np.zeros((1, *size, model.inputs[0].shape[-1]), np.float32)).shape
    assert tuple(out[1:3]) == (size[0] * scale, size[1] * scale)
