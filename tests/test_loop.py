"""The quality-gated loop: rollback on a broken tolerance, monotone pruning, the level -> threshold mapping, the
stopping rules, and resume after a kill without losing an accepted iteration."""

import json

import numpy as np
import pytest

from edgeprune.graph.coupling import Coupling
from edgeprune.data.pairs import PairSet
from edgeprune.core.errors import FileFormatError, InvalidArgumentError
from edgeprune.graph.model_graph import TensorRef
from edgeprune.prune.criteria import IMPORTANCE
from edgeprune.prune.importance import layer_means, mac_per_unit, unit_scores
from edgeprune.graph.cost import model_cost
from edgeprune.prune.loop import LoopSettings, Tolerance, check_target, load_state, propose_keep, prune_loop
from edgeprune.prune.level import LevelPolicy
from edgeprune.train.fit import TrainConfig
from keras_models import build_edsr

BASE = {"psnr": 30.0, "ssim": 0.9}


def _tiny():
    return build_edsr(scale=2, num_blocks=2, num_features=8)


def _pool(count=3, size=16, seed=0):
    rng = np.random.default_rng(seed)
    hr = [rng.random((2 * size, 2 * size, 3), dtype=np.float32) for _ in range(count)]
    lr = [h[::2, ::2] for h in hr]
    return PairSet(lr, hr, 2, {"kind": "random"})


def _settings(**kw):
    defaults = dict(method="A", target_mac=None, finetune=TrainConfig(steps=2, batch_size=2, patch=8),
                    policy=LevelPolicy(initial_step=0.2, min_step=0.05, max_iterations=3))
    return LoopSettings(**{**defaults, **kw})


class ScriptedQuality:
    """Stands in for the validation measurement: returns the scripted qualities in order, and records the masked
    model each one was asked about."""

    def __init__(self, qualities):
        self.qualities = list(qualities)
        self.models = []

    def __call__(self, model, val):
        self.models.append(model)
        return {**self.qualities.pop(0), "images": 1}


def test_tolerance_and_fractions():
    tol = Tolerance(0.05, 0.002)
    assert tol.holds({"psnr": 29.95, "ssim": 0.898}, BASE)
    assert not tol.holds({"psnr": 29.94, "ssim": 0.9}, BASE)
    assert not tol.holds({"psnr": 31.0, "ssim": 0.8979}, BASE)
    for bad in (0, 1, 1.5, -0.2, float("nan"), True, "0.5"):
        with pytest.raises(InvalidArgumentError, match="must be strictly between 0 and 1"):
            check_target(bad)
    with pytest.raises(InvalidArgumentError, match="PSNR tolerance must be a number >= 0"):
        Tolerance(-0.1, 0.002)
    with pytest.raises(InvalidArgumentError, match="method must be one of A, B, C, D"):
        _settings(method="E")


def test_a_step_that_breaks_the_tolerance_is_rolled_back(tmp_path, monkeypatch):
    model = _tiny()
    quality = ScriptedQuality([{"psnr": 30.0, "ssim": 0.9},  # level 0.2: holds
                               {"psnr": 29.9, "ssim": 0.9},  # level 0.4: -0.1 dB breaks 0.05
                               {"psnr": 29.97, "ssim": 0.9}])  # level 0.3 (smaller step): holds
    monkeypatch.setattr("edgeprune.prune.loop.validate", quality)
    records = []
    result = prune_loop(model, _pool(), None, _settings(), BASE, (16, 16), tmp_path, progress=records.append,
                        verbose=0)
    assert [r["accepted"] for r in records] == [True, False, True]
    assert [round(r["level"], 3) for r in records] == [0.2, 0.4, 0.3]
    assert [r["step"] for r in records] == pytest.approx([0.2, 0.2, 0.1])
    assert [r["mac"] for r in records][0] > records[2]["mac"] > records[1]["mac"]
    # the rolled-back state was not kept: the final plan is the third proposal, which prunes less than the second
    kept_final = sum(map(len, result.plan.keep.values()))
    assert kept_final == records[2]["kept_units"] > records[1]["kept_units"]
    assert result.state.lineage_steps == 4 and result.state.spent_steps == 6
    assert result.state.quality == {"psnr": 29.97, "ssim": 0.9}


def test_rolled_back_weights_are_discarded(tmp_path, monkeypatch):
    model = _tiny()
    quality = ScriptedQuality([{"psnr": 20.0, "ssim": 0.1}] * 3)  # every step breaks the tolerance
    monkeypatch.setattr("edgeprune.prune.loop.validate", quality)
    result = prune_loop(model, _pool(), None, _settings(), BASE, (16, 16), tmp_path, verbose=0)
    assert not any(r["accepted"] for r in result.state.iterations)
    for a, b in zip(result.model.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)  # still the baseline, bit for bit
    assert all(len(k) == 8 for k in result.plan.keep.values()) and result.state.lineage_steps == 0
    # the fine-tuned, masked candidates really were different models
    assert not np.array_equal(quality.models[0].get_weights()[0], model.get_weights()[0])


def test_pruning_is_monotone_and_the_threshold_is_a_baseline_quantile(tmp_path):
    model = _tiny()
    coupling = Coupling(model)
    means = layer_means(coupling)
    settings = _settings()
    full = {n: list(range(g.size)) for n, g in coupling.groups.items()}
    scores = np.sort(np.concatenate(list(unit_scores(coupling, "A", None, means).values())))
    keep = propose_keep(coupling, settings, float(np.quantile(scores, 0.5)), full, means, None)
    pruned = sum(len(full[n]) - len(keep[n]) for n in full)
    assert abs(pruned - scores.size / 2) <= 1  # the median prunes half of the units (ties aside)
    # a pruned unit whose filter grows back above the threshold stays pruned
    name = next(n for n in keep if len(keep[n]) < len(full[n]))
    gone = sorted(set(full[name]) - set(keep[name]))[0]
    layer = model.get_layer(coupling.groups[name].producers[0])
    kernel, *rest = layer.get_weights()
    kernel[..., gone] *= 100
    layer.set_weights([kernel, *rest])
    again = propose_keep(coupling, settings, float(np.quantile(scores, 0.5)), keep, means, None)
    assert gone not in again[name] and all(set(again[n]) <= set(keep[n]) for n in keep)


def test_target_stops_the_loop_and_no_op_levels_cost_nothing(tmp_path, monkeypatch):
    model = _tiny()
    quality = ScriptedQuality([{"psnr": 30.0, "ssim": 0.9}] * 5)
    monkeypatch.setattr("edgeprune.prune.loop.validate", quality)
    settings = _settings(target_mac=0.9, policy=LevelPolicy(initial_step=0.3, min_step=0.05, max_iterations=9))
    result = prune_loop(model, _pool(), None, settings, BASE, (16, 16), tmp_path, verbose=0)
    assert result.state.level.target_met and result.state.mac <= 0.9
    assert len(result.state.iterations) == 1 and len(quality.models) == 1


def test_resume_after_a_kill_loses_no_accepted_iteration(tmp_path, monkeypatch):
    model = _tiny()
    monkeypatch.setattr("edgeprune.prune.loop.validate", ScriptedQuality([{"psnr": 30.0, "ssim": 0.9}] * 9))

    def kill_after_two(record):
        if record["iteration"] == 2:
            raise KeyboardInterrupt

    settings = _settings(policy=LevelPolicy(initial_step=0.2, min_step=0.05, max_iterations=4))
    with pytest.raises(KeyboardInterrupt):
        prune_loop(model, _pool(), None, settings, BASE, (16, 16), tmp_path, progress=kill_after_two, verbose=0)
    saved = load_state(tmp_path)
    assert [r["iteration"] for r in saved.iterations] == [1, 2] and saved.weights
    checkpoint = _tiny()
    checkpoint.load_weights(str(tmp_path / saved.weights))
    result = prune_loop(model, _pool(), None, settings, BASE, (16, 16), tmp_path, resume=True, verbose=0)
    assert [r["iteration"] for r in result.state.iterations] == [1, 2, 3, 4]
    assert result.state.iterations[:2] == saved.iterations
    assert json.loads((tmp_path / "loop.json").read_text())["threshold"]["iteration"] == 4
    # iteration 3 pruned from the checkpointed weights, not from the baseline's: units the checkpoint had pruned
    # stay pruned
    assert all(set(result.plan.keep[n]) <= set(saved.keep[n]) for n in saved.keep)
    assert not np.array_equal(checkpoint.get_weights()[0], model.get_weights()[0])


def test_c_ranks_by_mac_per_producer_channel():
    model = _tiny()
    coupling = Coupling(model)
    macs = mac_per_unit(coupling, model_cost(model, (16, 16)))
    a = unit_scores(coupling, "A", macs)
    c = unit_scores(coupling, "C", macs)
    per_layer = {n: macs[n] / sum(g.channels_per_unit(TensorRef(p, 0)) for p in g.producers)
                 for n, g in coupling.groups.items()}
    mean = np.mean(list(per_layer.values()))
    for name in a:
        np.testing.assert_allclose(c[name], a[name] * mean / per_layer[name], rtol=1e-6)  # float32 scores


def test_taylor_importance_ranks_the_units_at_every_iteration_on_the_accepted_weights(tmp_path, monkeypatch):
    model = _tiny()
    coupling = Coupling(model)
    rng = np.random.default_rng(0)
    rows = {n: rng.random((len(g.producers), g.size)) + 0.5 for n, g in coupling.groups.items()}
    calls = []

    class Scripted:
        name, needs_data = "taylor", True

        def rows(self, current, coupling_, batches, seed, sample_seed=0):
            calls.append((seed, [w.copy() for w in current.get_weights()]))
            return rows

    monkeypatch.setitem(IMPORTANCE, "taylor", Scripted())
    monkeypatch.setattr("edgeprune.prune.loop.validate", ScriptedQuality([{"psnr": 30.0, "ssim": 0.9}] * 3))
    settings = _settings(importance="taylor", policy=LevelPolicy(initial_step=0.2, min_step=0.05,
                                                                     max_iterations=2))
    result = prune_loop(model, _pool(), None, settings, BASE, (16, 16), tmp_path, verbose=0)
    assert [seed for seed, _ in calls] == [1, 2]
    np.testing.assert_array_equal(calls[0][1][0], model.get_weights()[0])  # iteration 1 scores the baseline
    assert not np.array_equal(calls[1][1][0], model.get_weights()[0])  # iteration 2 the fine-tuned weights
    # method A keeps exactly the units whose max over producers is at least the reported threshold (or, when none
    # is, the best one)
    threshold = result.state.iterations[-1]["threshold"]
    for name, r in rows.items():
        expected = np.flatnonzero(r.max(axis=0) >= threshold).tolist() or [int(np.argmax(r.max(axis=0)))]
        assert result.plan.keep[name] == expected
    assert settings.to_dict()["importance"] == "taylor"
    with pytest.raises(InvalidArgumentError, match="importance must be one of magnitude, taylor"):
        _settings(importance="gradient")


@pytest.mark.parametrize("content, message", [
    ('{"format": "edgeprune.loop/1", "threshold": {"accep', "is not valid JSON"),  # truncated by a full disk
    ("\x00\x01garbage", "is not valid JSON"),
    ('[1, 2]', "holds a JSON list, not a JSON object"),
    ('{"format": "edgeprune.plan", "version": 1}', "is not an edgeprune loop checkpoint of this version"),
    ('{"format": "edgeprune.loop/1", "threshold": {"accepted": 0.1}}', "is malformed"),
    ('{"format": "edgeprune.loop/1", "threshold": 3, "keep": {}, "iterations": [], "lineage_steps": 0, '
     '"spent_steps": 0, "weights": null, "quality": null, "mac": 1.0}', "is malformed"),
])
def test_a_corrupt_or_foreign_checkpoint_is_a_clear_error(tmp_path, content, message):
    (tmp_path / "loop.json").write_text(content)
    with pytest.raises(FileFormatError, match=message):
        load_state(tmp_path)
    assert load_state(tmp_path / "none") is None


def test_a_checkpoint_keeps_the_level_under_its_old_key():
    from edgeprune.prune.level import LevelState
    from edgeprune.prune.loop import LoopState

    state = LoopState(LevelState(accepted=0.2, step=0.1, iteration=2), {"head": [0, 1]})
    data = state.to_dict()
    assert data["threshold"] == {"accepted": 0.2, "step": 0.1, "iteration": 2, "target_met": False}
    assert LoopState.from_dict(data) == state


def _finished_checkpoint(tmp_path, model, **fields):
    """A loop.json of a run that has used all its iterations (so resuming it trains nothing), with ``fields``."""
    from edgeprune.prune.level import LevelState
    from edgeprune.prune.loop import LoopState
    from edgeprune.prune.plan import PruningPlan

    keep = dict(PruningPlan.keep_all(Coupling(model), model.name).keep)
    state = LoopState(LevelState(accepted=0.2, step=0.2, iteration=3), keep, quality=dict(BASE))
    (tmp_path / "loop.json").write_text(json.dumps({**state.to_dict(), **fields}))


@pytest.mark.parametrize("fields, files, message", [
    ({"weights": "accepted-002.weights.h5"}, {}, "weights file '.*accepted-002.weights.h5' does not exist"),
    ({"weights": "accepted-002.weights.h5"}, {"accepted-002.weights.h5": b"\x89HDF\x00cut"}, "is unreadable"),
    ({"weights": "../../baseline.weights.h5"}, {}, "weights '../../baseline.weights.h5' are not a file this loop"),
    ({"keep": {"conv_9": [0, 1]}}, {}, "its channel groups are not this model's"),
])
def test_a_checkpoint_that_does_not_fit_is_refused_on_resume(tmp_path, fields, files, message):
    model = _tiny()
    _finished_checkpoint(tmp_path, model, **fields)
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    with pytest.raises(FileFormatError, match=message + r".*delete the run folder's \.work and run again without "
                                              "--resume") as err:
        prune_loop(model, _pool(), None, _settings(), BASE, (16, 16), tmp_path, resume=True, verbose=0)
    assert "\n" not in str(err.value)


def test_a_fitting_finished_checkpoint_resumes_without_training(tmp_path):
    model = _tiny()
    _finished_checkpoint(tmp_path, model)
    result = prune_loop(model, _pool(), None, _settings(), BASE, (16, 16), tmp_path, resume=True, verbose=0)
    assert result.state.level.iteration == 3 and result.state.quality == BASE


@pytest.mark.parametrize("fields, message", [
    ({"quality": {"psnr": "30.0", "ssim": 0.9}}, "'quality' is .*, not numeric PSNR and SSIM"),
    ({"quality": {"psnr": 30.0}}, "'quality' is .*, not numeric PSNR and SSIM"),
    ({"keep": {"head": ["0"]}}, "'keep' is .*, not a map of group names to unit indices"),
    ({"weights": 7}, "'weights' is 7, not a file name"),
])
def test_a_checkpoint_with_foreign_fields_is_malformed(tmp_path, fields, message):
    _finished_checkpoint(tmp_path, _tiny(), **fields)
    with pytest.raises(FileFormatError, match="is malformed .*" + message):
        load_state(tmp_path)


# -- pruning for a device: aligned widths, the level on predicted latency, ranking by time saved --

def _device_profile(tile):
    from edgeprune.graph.latency_profile import LatencyProfile

    return LatencyProfile("device", "benchmark_model on a test phone", 1,
                          default={"mac_per_s": 1e10, "bytes_per_s": 2e10, "overhead_us": 3.0},
                          ops={"CONV_2D": {"mac_per_s": 4e10, "bytes_per_s": 1e10, "overhead_us": 8.0}},
                          channel_tile=tile, small_channel_tile=tile)


def test_with_a_profile_every_kept_width_is_a_whole_number_of_tiles(tmp_path, monkeypatch):
    from edgeprune.prune.widths import WidthRule

    model = build_edsr(scale=2, num_blocks=2, num_features=16)
    monkeypatch.setattr("edgeprune.prune.loop.validate", ScriptedQuality([{"psnr": 30.0, "ssim": 0.9}] * 3))
    profile = _device_profile(4)
    settings = _settings(method="D", profile=profile, widths=WidthRule.from_profile(profile), target_latency=0.5,
                         policy=LevelPolicy(initial_step=0.2, min_step=0.05, max_iterations=3))
    records = []
    result = prune_loop(model, _pool(), None, settings, BASE, (16, 16), tmp_path, verbose=0,
                        progress=records.append, latency_size=(12, 12))
    coupling = Coupling(model)
    channels = coupling.kept_channels(result.plan.keep)
    widths = {ref: len(kept) for ref, kept in channels.items()}
    assert any(w < 16 for w in widths.values())
    for group in coupling.groups.values():
        for producer in group.producers:
            width = widths[TensorRef(producer, 0)]
            full = group.size * group.channels_per_unit(TensorRef(producer, 0))
            assert width % 4 == 0 or width == full, (producer, width)
    # the level steps on the predicted latency; both ratios are recorded and the accepted one is checkpointed
    assert [round(r["level"], 3) for r in records] == [0.2, 0.4, 0.6]
    assert all(r["latency"] <= 1 - r["level"] + 1e-9 for r in records[:2])  # the third is left at the floors
    assert records[0]["latency"] > records[1]["latency"] > records[2]["latency"] > 0.5  # target not reached
    assert all(0 < r["mac"] < r["latency"] for r in records) and not result.state.level.target_met
    assert result.state.latency == records[-1]["latency"]
    assert json.loads((tmp_path / "loop.json").read_text())["latency"] == result.state.latency


def test_latency_aware_ranking_prefers_the_cut_that_saves_the_most_time_per_unit_of_importance():
    from edgeprune.prune.loop import threshold_for_level
    from edgeprune.prune.oracle import CostOracle
    from edgeprune.prune.widths import WidthRule
    from edgeprune.core.runtime import keras

    inputs = keras.Input((32, 32, 8))
    x = keras.layers.Conv2D(16, 3, padding="same", name="full_res")(inputs)  # every unit costs 32x32 pixels
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="half_res")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, name="out")(x))
    coupling = Coupling(model)
    profile = _device_profile(8)
    rule = WidthRule.from_profile(profile)
    oracle = CostOracle(coupling, (32, 32), profile=profile)
    full = {n: list(range(g.size)) for n, g in coupling.groups.items()}
    saved = oracle.time_per_unit(full, rule)
    assert saved["full_res"] > 2 * saved["half_res"]  # so a unit of it is worth removing though twice as important
    rows = {"full_res": np.full((1, 16), 2.0), "half_res": np.full((1, 16), 1.0)}  # importance per unit
    means = layer_means(coupling)
    macs = mac_per_unit(coupling, model_cost(model, (32, 32)))
    latency_aware = _settings(method="C", profile=profile, widths=rule)
    _, keep, ratio = threshold_for_level(coupling, latency_aware, 0.05, full, means, macs, oracle, rows, step=1.0)
    assert (len(keep["full_res"]), len(keep["half_res"])) == (8, 16) and ratio <= 0.95
    # without the time it saves, the less important group goes first
    unaware = _settings(method="B", widths=rule)
    _, keep, _ = threshold_for_level(coupling, unaware, 0.05, full, means, macs, CostOracle(coupling, (32, 32)),
                                     rows, step=1.0)
    assert len(keep["half_res"]) == 8 and len(keep["full_res"]) == 16


def test_a_latency_target_needs_a_profile_and_both_targets_must_hold():
    with pytest.raises(InvalidArgumentError, match="--target-latency needs a latency profile"):
        _settings(target_latency=0.7)
    with pytest.raises(InvalidArgumentError, match="target latency must be strictly between 0 and 1"):
        _settings(target_latency=1.0, profile=_device_profile(4))
    both = _settings(target_mac=0.8, target_latency=0.7, profile=_device_profile(4))
    assert both.target_met(0.75, 0.65) and not both.target_met(0.75, 0.72) and not both.target_met(0.85, 0.6)
    assert _settings(target_mac=None).target_met(0.1, None) is False  # no target: the loop runs its iterations
    assert both.to_dict()["latency_profile"]["channel_tile"] == 4 and both.to_dict()["measure"] == "latency"


def test_the_control_gate_rejects_a_step_that_holds_against_the_baseline_but_not_against_the_control(tmp_path,
                                                                                                      monkeypatch):
    quality = ScriptedQuality([{"psnr": 30.3, "ssim": 0.9},  # level 0.2: +0.3 dB over the baseline, -0.2 vs control
                               {"psnr": 29.0, "ssim": 0.9},  # level 0.1 (smaller step): breaks the baseline
                               {"psnr": 30.46, "ssim": 0.9}])  # level 0.05: within 0.05 of the control at 2 steps
    monkeypatch.setattr("edgeprune.prune.loop.validate", quality)
    asked = []

    def control(steps):
        asked.append(steps)
        return {"psnr": 30.5, "ssim": 0.9}

    records = []
    settings = _settings(gate="control", policy=LevelPolicy(initial_step=0.2, min_step=0.05, max_iterations=3))
    prune_loop(_tiny(), _pool(), None, settings, BASE, (16, 16), tmp_path, progress=records.append, verbose=0,
               control=control)
    assert [r["accepted"] for r in records] == [False, False, True]
    # the control was asked for each candidate that held against the baseline, at the candidate's own steps
    assert asked == [2, 2] and [bool(r.get("control")) for r in records] == [True, False, True]
    assert records[0]["control"] == {"steps": 2, "psnr": 30.5, "ssim": 0.9}
    assert settings.to_dict()["gate"] == "control" and "gate" not in _settings().to_dict()  # old run keys stand
    with pytest.raises(InvalidArgumentError, match="the control gate needs the control's quality"):
        prune_loop(_tiny(), _pool(), None, settings, BASE, (16, 16), tmp_path / "x", verbose=0)
    with pytest.raises(InvalidArgumentError, match="--gate must be one of baseline, control, got 'best'"):
        _settings(gate="best")


def test_each_iteration_trains_what_a_fresh_masked_fit_from_the_accepted_weights_trains(tmp_path, monkeypatch):
    """One fit with the gate computes, chunk by chunk, what a fresh masked fit per iteration computes (a fresh Adam,
    iteration k's patches from seed + k), a rolled-back chunk starting over from the accepted weights."""
    from dataclasses import replace

    from edgeprune.prune.masking import ChannelMasks
    from edgeprune.prune.plan import PruningPlan
    from edgeprune.prune.pruner import Pruner
    from edgeprune.train.fit import fit

    model = _tiny()
    quality = ScriptedQuality([{"psnr": 30.0, "ssim": 0.9}, {"psnr": 29.0, "ssim": 0.9}, {"psnr": 30.0, "ssim": 0.9}])
    monkeypatch.setattr("edgeprune.prune.loop.validate", quality)
    proposals, propose = [], Pruner.propose

    def recording(self):
        proposal = propose(self)
        proposals.append(proposal)
        return proposal

    monkeypatch.setattr(Pruner, "propose", recording)
    settings = _settings(finetune=TrainConfig(steps=4, batch_size=2, patch=8, learning_rate=1e-3, seed=7))
    prune_loop(model, _pool(), None, settings, BASE, (16, 16), tmp_path, verbose=0)
    coupling = Coupling(model)
    full = PruningPlan.keep_all(coupling, model.name)
    start = model
    for k, (proposal, tuned, accepted) in enumerate(zip(proposals, quality.models, [True, False, True]), 1):
        masks = ChannelMasks(coupling, PruningPlan(full.model, full.fingerprint, full.sizes, proposal.keep))
        fresh, _ = fit(start, _pool(), replace(settings.finetune, seed=7 + k), masks=masks, verbose=0)
        for a, b in zip(tuned.get_weights(), fresh.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
        if accepted:
            start = tuned


def test_a_fault_of_the_program_while_loading_the_checkpoint_is_not_called_an_unreadable_file(tmp_path, monkeypatch):
    model = _tiny()
    _finished_checkpoint(tmp_path, model, weights="accepted-002.weights.h5")
    (tmp_path / "accepted-002.weights.h5").write_bytes(b"\x89HDF")

    def broken(self, path, *args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'weights'")

    monkeypatch.setattr(type(model), "load_weights", broken)
    with pytest.raises(AttributeError, match="no attribute 'weights'"):
        prune_loop(model, _pool(), None, _settings(), BASE, (16, 16), tmp_path, resume=True, verbose=0)
