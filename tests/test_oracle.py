"""The cost oracle: predicted MAC and latency of a plan, without building the slim model, and the time a unit
saves."""

import pytest

from edgeprune.graph.cost import model_cost
from edgeprune.graph.coupling import Coupling
from edgeprune.graph.latency_profile import LatencyProfile, predict_report
from edgeprune.prune.oracle import CostOracle
from edgeprune.prune.plan import PruningPlan
from edgeprune.prune.surgery import slim
from edgeprune.prune.widths import WidthRule
from keras_models import build_edsr

PROFILE = LatencyProfile("host", "ai_edge_litert test", 1,
                         default={"mac_per_s": 1e10, "bytes_per_s": 2e10, "overhead_us": 3.0},
                         ops={"CONV_2D": {"mac_per_s": 4e10, "bytes_per_s": 1e10, "overhead_us": 8.0}},
                         channel_tile=8, small_channel_tile=8)


def _plan(coupling):
    keep = {n: list(range(g.size)) for n, g in coupling.groups.items()}
    keep["block00_conv1"] = keep["block00_conv1"][:8]
    keep["head"] = keep["head"][:8]
    return keep


def test_predicted_latency_of_a_plan_is_that_of_the_slim_model():
    model = build_edsr(scale=2, num_blocks=2, num_features=16)
    coupling = Coupling(model)
    oracle = CostOracle(coupling, (32, 32), profile=PROFILE, latency_size=(24, 20))
    keep = _plan(coupling)
    full = PruningPlan.keep_all(coupling, model.name)
    slim_model = slim(model, PruningPlan(model.name, full.fingerprint, full.sizes, keep), coupling)
    assert oracle.base_us == pytest.approx(predict_report(PROFILE, model_cost(model, (24, 20)))["total_us"])
    slim_us = predict_report(PROFILE, model_cost(slim_model, (24, 20)))["total_us"]
    assert oracle.latency_us(keep) == pytest.approx(slim_us, rel=1e-12)
    assert oracle.latency_ratio(keep) == pytest.approx(slim_us / oracle.base_us)
    assert oracle.mac_ratio(keep) == pytest.approx(
        model_cost(slim_model, (32, 32)).totals.mac / model_cost(model, (32, 32)).totals.mac)
    assert oracle.ratio(keep, "mac") == oracle.mac_ratio(keep) and oracle.ratio(keep, "latency") < 1
    with pytest.raises(ValueError, match="need a latency profile"):
        CostOracle(coupling, (32, 32)).latency_us(keep)


def test_time_per_unit_is_the_saving_of_the_next_block():
    model = build_edsr(scale=2, num_blocks=2, num_features=16)
    coupling = Coupling(model)
    oracle = CostOracle(coupling, (32, 32), profile=PROFILE)
    keep = {n: list(range(g.size)) for n, g in coupling.groups.items()}
    rule = WidthRule.from_profile(PROFILE)
    per_unit = oracle.time_per_unit(keep, rule)
    now = oracle.latency_us(keep)
    narrower = {**keep, "block01_conv1": keep["block01_conv1"][:8]}
    assert per_unit["block01_conv1"] == pytest.approx((now - oracle.latency_us(narrower)) / 8)
    # the trunk feeds and is fed by every block: a unit of it saves more than a unit inside one block
    assert per_unit["head"] > per_unit["block01_conv1"] > 0
    # at its narrowest allowed width a group is priced by one unit's removal
    at_floor = {**keep, "block01_conv1": keep["block01_conv1"][:8]}
    assert oracle.time_per_unit(at_floor, rule)["block01_conv1"] >= 0
