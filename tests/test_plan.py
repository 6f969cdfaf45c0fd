import json

import pytest

from edgeprune.graph.coupling import Coupling
from edgeprune.core.errors import PlanError
from edgeprune.prune.plan import PLAN_FORMAT, PruningPlan, fingerprint
from keras_models import build_edsr, build_sid


@pytest.fixture
def edsr_coupling():
    return Coupling(build_edsr(num_blocks=2, num_features=4))


def test_round_trip_through_json(tmp_path, edsr_coupling):
    plan = PruningPlan.keep_all(edsr_coupling, "tiny")
    plan.keep["head"] = [3, 0]
    path = plan.save(tmp_path / "plan.json")
    data = json.loads(path.read_text())
    assert data["format"] == PLAN_FORMAT and data["version"] == 1 and data["model"] == "tiny"
    assert data["groups"]["head"] == {"size": 4, "keep": [0, 3]}
    loaded = PruningPlan.load(path)
    loaded.validate(edsr_coupling)
    assert loaded.kept_units("head") == [0, 3] and loaded.kept_units("up0_conv") == [0, 1, 2, 3]
    assert loaded.pruned_fraction()["head"] == 0.5


def test_plan_for_another_model_is_refused(edsr_coupling):
    plan = PruningPlan.keep_all(Coupling(build_sid(features=(2, 2, 2, 2, 2))), "sid")
    with pytest.raises(PlanError, match="this plan was made for model 'sid' .* but the given model has structure"):
        plan.validate(edsr_coupling)
    wider = Coupling(build_edsr(num_blocks=2, num_features=5))
    assert fingerprint(wider) != fingerprint(edsr_coupling)


@pytest.mark.parametrize("keep, message", [
    ([0, 9], r"group 'head' has out-of-range indices \[9\]: valid indices are 0..3"),
    ([-1], r"out-of-range indices \[-1\]"),
    ([1, 1, 2], r"group 'head' lists indices \[1\] more than once"),
    ([], "group 'head' keeps no channels: keep at least 1"),
    ([0.5], "non-integer index"),
])
def test_bad_indices(edsr_coupling, keep, message):
    plan = PruningPlan.keep_all(edsr_coupling, "tiny")
    plan.keep["head"] = keep
    with pytest.raises(PlanError, match=message):
        plan.validate(edsr_coupling)


def test_unknown_group(edsr_coupling):
    plan = PruningPlan.keep_all(edsr_coupling, "tiny")
    plan.keep["nope"] = [0]
    with pytest.raises(PlanError, match="plan names group 'nope', which the model does not have"):
        plan.validate(edsr_coupling)


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    ('{"format": "other"}', "not an edgeprune plan"),
    ('{"format": "edgeprune.plan", "version": 7}', "plan version 7 is not supported"),
    ('{"format": "edgeprune.plan", "version": 1, "model": "x"}', "malformed plan"),
    ('{"format": "edgeprune.plan", "version": 1, "model": "x", "fingerprint": "f", "groups": {"head": {"size": 4, '
     '"ke', "is not valid JSON"),  # truncated
    ('[{"format": "edgeprune.plan"}]', "holds a JSON list, not a JSON object"),
    ('{"format": "edgeprune.plan", "version": 1, "model": "x", "fingerprint": "f", "groups": [1]}', "malformed plan"),
    ('{"format": "edgeprune.plan", "version": 1, "model": "x", "fingerprint": "f", "groups": {"g": 3}}',
     "malformed plan"),
])
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(PlanError, match=message):
        PruningPlan.load(path)
    with pytest.raises(PlanError, match="does not exist"):
        PruningPlan.load(tmp_path / "missing.json")


def test_unreadable_plan_files(tmp_path):
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PlanError, match=r"^plan file '.*binary.json' cannot be read \(UnicodeDecodeError"):
        PruningPlan.load(tmp_path / "binary.json")
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(PlanError, match=r"^plan file '.*folder.json' cannot be read"):
        PruningPlan.load(tmp_path / "folder.json")
