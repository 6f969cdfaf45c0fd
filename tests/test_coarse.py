"""Coarse pruning: the least-adversarial search over random feature-map and kernel masks, the MAC counted with pruned
kernels skipped against the dense MAC, what of a kernel mask the exported model can exploit, and the strategy inside
the quality-gated loop (records, checkpoint, resume)."""

import json

import numpy as np
import pytest

from edgeprune.data.pairs import PairSet
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.graph.cost import model_cost
from edgeprune.graph.coupling import Coupling
from edgeprune.graph.model_graph import TensorRef
from edgeprune.prune.criteria import PoolBatches
from edgeprune.prune.coarse import (CoarseMasks, CoarseSearch, KernelCosts, check_search, exploitable_keep,
                                    full_kernels, kernel_convs, kernels_from_json, kernels_to_json,
                                    pruned_kernel_fraction, sparse_mac)
from edgeprune.prune.level import LevelPolicy
from edgeprune.prune.loop import LoopSettings, load_state, prune_loop
from edgeprune.prune.masking import wrap
from edgeprune.prune.oracle import CostOracle
from edgeprune.prune.plan import PruningPlan
from edgeprune.prune.surgery import slim
from edgeprune.train.fit import TrainConfig, fit
from keras_models import build_sid
from test_loop import BASE, _pool, _tiny

SIZE = (16, 16)


def _parts(model):
    coupling = Coupling(model)
    base = model_cost(coupling.graph, SIZE)
    return coupling, CostOracle(coupling, SIZE, base), base


def _search(model, granularity="both", candidates=4):
    coupling, oracle, base = _parts(model)
    return CoarseSearch(model, coupling, oracle, base, PoolBatches(_pool(), 8, 2), granularity=granularity,
                        candidates=candidates)


def _full_keep(coupling):
    return {n: list(range(g.size)) for n, g in coupling.groups.items()}


def _masked_output(model, coupling, keep, kernels, x):
    wrapped = wrap(model)
    plan = PruningPlan.keep_all(coupling, model.name)
    CoarseMasks(coupling, PruningPlan(plan.model, plan.fingerprint, plan.sizes, keep), kernels).impose(wrapped, model)
    return wrapped(x, training=False).numpy()


def test_every_plain_conv_has_a_full_kernel_mask():
    model = _tiny()
    coupling = Coupling(model)
    kernels = full_kernels(coupling)
    assert list(kernels) == kernel_convs(coupling) == [l.name for l in model.layers if type(l).__name__ == "Conv2D"]
    for name, mask in kernels.items():
        layer = model.get_layer(name)
        assert mask.shape == layer.kernel.shape[2:] and mask.all()


def test_sparse_mac_skips_exactly_the_pruned_kernels_between_kept_channels():
    model = _tiny()
    coupling, oracle, base = _parts(model)
    costs = KernelCosts.of(coupling, base)
    keep = _full_keep(coupling)
    kernels = full_kernels(coupling)
    name = kernel_convs(coupling)[2]  # a block's first conv: 8 -> 8 channels, 3x3, at 16x16
    assert costs.per_kernel[name] == 3 * 3 * 16 * 16
    kernels[name][0, :5] = False  # 5 kernels from input channel 0
    expected = (base.totals.mac - 5 * 9 * 256) / base.totals.mac
    assert sparse_mac(coupling, oracle, costs, keep, kernels) == pytest.approx(expected, rel=1e-12)
    assert sparse_mac(coupling, oracle, costs, keep, None) == oracle.mac_ratio(keep) == 1.0
    # a pruned kernel of a channel the plan removes anyway is not counted twice
    group = next(n for n, g in coupling.groups.items() if name in g.consumers and g.size == 8 and len(g.producers) == 1)
    unit = int(np.flatnonzero(coupling.groups[group].index_maps[coupling.graph.node(name).inputs[0]][:, 0] == 0)[0])
    without = {**keep, group: [u for u in keep[group] if u != unit]}
    assert sparse_mac(coupling, oracle, costs, without, kernels) == pytest.approx(oracle.mac_ratio(without))


def test_the_search_never_keeps_a_mask_worse_than_its_first_draw():
    model = _tiny()
    coupling = Coupling(model)
    for granularity in ("channel", "kernel", "both"):
        search = _search(model, granularity, candidates=5)
        best, losses, chosen = search.propose(0.3, _full_keep(coupling), None, seed=3)
        assert len(losses) == 5 and chosen == int(np.argmin(losses))
        assert best.loss == losses[chosen] <= losses[0]
        assert len(set(losses)) > 1  # the candidates really differ
        # the reported loss is the chosen masks' loss on the same batch, re-measured
        again, again_losses, _ = search.propose(0.3, _full_keep(coupling), None, seed=3)
        assert again_losses == losses and again.keep == best.keep


def test_candidates_meet_the_level_on_their_measure():
    model = _tiny()
    coupling, oracle, base = _parts(model)
    costs = KernelCosts.of(coupling, base)
    keep = _full_keep(coupling)
    rng = np.random.default_rng(0)
    channel_keep, channel_kernels = _search(model, "channel").draw(0.3, keep, None, rng)
    assert channel_kernels is None and oracle.mac_ratio(channel_keep) <= 0.7
    kernel_keep, kernels = _search(model, "kernel").draw(0.3, keep, None, rng)
    assert kernel_keep == keep and oracle.mac_ratio(kernel_keep) == 1.0  # dense: nothing executed is saved
    assert 0.69 <= sparse_mac(coupling, oracle, costs, kernel_keep, kernels) <= 0.7
    both_keep, both_kernels = _search(model, "both").draw(0.3, keep, None, rng)
    assert oracle.mac_ratio(both_keep) <= 0.85 + 1e-9  # feature maps take half of the level
    assert sparse_mac(coupling, oracle, costs, both_keep, both_kernels) <= 0.7
    # monotone: a second step only prunes among what the first kept
    more_keep, more_kernels = _search(model, "both").draw(0.5, both_keep, both_kernels, rng)
    assert all(set(more_keep[n]) <= set(both_keep[n]) for n in keep)
    assert all(not (m & ~both_kernels[n]).any() for n, m in more_kernels.items())


def test_units_left_without_kernels_are_removed_and_the_slim_model_computes_the_same():
    model = _tiny()
    coupling = Coupling(model)
    keep = _full_keep(coupling)
    kernels = full_kernels(coupling)
    # an internal group of a residual block (one producer, one consumer)
    name, group = next((n, g) for n, g in coupling.groups.items() if len(g.producers) == 1 and len(g.consumers) == 1)
    producer, consumer = group.producers[0], group.consumers[0]
    read_unit, written_unit = 1, 5
    kernels[consumer][group.index_maps[coupling.graph.node(consumer).inputs[0]][read_unit], :] = False  # never read
    kernels[producer][:, group.index_maps[TensorRef(producer, 0)][written_unit]] = False  # never written
    kernels[consumer][3, 2] = False  # a lone kernel: stays as a zero in the dense kernel
    exploited = exploitable_keep(coupling, keep, kernels)
    assert exploited[name] == [u for u in range(group.size) if u not in (read_unit, written_unit)]
    assert all(exploited[n] == keep[n] for n in keep if n != name)
    x = np.random.default_rng(1).random((1, *SIZE, 3), dtype=np.float32)
    # give the never-written channel a bias: the mask must zero it, or removing the channel would change the output
    layer = model.get_layer(producer)
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, bias + 0.5])
    masked = _masked_output(model, coupling, keep, kernels, x)
    wrapped = wrap(model)
    masks = CoarseMasks(coupling, PruningPlan.keep_all(coupling, model.name), kernels)
    masks.impose(wrapped, model)
    from edgeprune.prune.masking import unwrap

    zeroed = unwrap(wrapped, model)
    full = PruningPlan.keep_all(coupling, model.name)
    slim_model = slim(zeroed, PruningPlan(full.model, full.fingerprint, full.sizes, exploited), coupling)
    np.testing.assert_allclose(slim_model(x).numpy(), masked, atol=1e-5)
    assert zeroed.get_layer(producer).get_weights()[1][group.index_maps[TensorRef(producer, 0)][written_unit]] == 0
    assert slim_model.get_layer(consumer).kernel.shape[2] == group.size - 2


def test_a_constant_writing_path_is_not_taken_for_a_dead_channel():
    # SID's convs end in LeakyReLU (keeps zero); a channel written as zeros through batch norm would become a
    # constant, so only the read rule may remove it
    from edgeprune.graph.layer_table import keeps_zero
    from edgeprune.core.runtime import keras

    assert keeps_zero(keras.layers.LeakyReLU()) and keeps_zero(keras.layers.Add())
    assert not keeps_zero(keras.layers.BatchNormalization())
    assert not keeps_zero(keras.layers.Activation("sigmoid")) and keeps_zero(keras.layers.Activation("relu"))
    assert keeps_zero(keras.layers.Conv2D(4, 3, activation="relu"))
    assert not keeps_zero(keras.layers.Conv2D(4, 3, activation="sigmoid"))
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = keras.layers.BatchNormalization(name="bn")(a)
    out = keras.layers.Conv2D(3, 3, padding="same", name="c")(b)
    model = keras.Model(inputs, out)
    coupling = Coupling(model)
    kernels = full_kernels(coupling)
    kernels["a"][:, 0] = False
    (name,) = coupling.groups
    assert exploitable_keep(coupling, {name: [0, 1, 2, 3]}, kernels)[name] == [0, 1, 2, 3]
    kernels["c"][0, :] = False
    assert exploitable_keep(coupling, {name: [0, 1, 2, 3]}, kernels)[name] == [1, 2, 3]


def test_masked_fine_tuning_keeps_pruned_kernels_and_dead_biases_at_zero():
    model = _tiny()
    coupling = Coupling(model)
    kernels = full_kernels(coupling)
    conv = kernel_convs(coupling)[2]
    kernels[conv][:, 4] = False  # output channel 4 loses every kernel: its bias is masked too
    kernels[conv][2, 1] = False
    masks = CoarseMasks(coupling, PruningPlan.keep_all(coupling, model.name), kernels)
    trained, _ = fit(model, _pool(), TrainConfig(steps=4, batch_size=2, patch=8, learning_rate=1e-2), masks=masks,
                     verbose=0)
    kernel, bias = trained.get_layer(conv).get_weights()
    assert not kernel[:, :, :, 4].any() and not kernel[:, :, 2, 1].any() and bias[4] == 0
    assert kernel[:, :, 2, 0].any() and not np.array_equal(kernel, model.get_layer(conv).get_weights()[0])


def test_kernel_masks_round_trip_as_json_and_foreign_ones_are_refused():
    coupling = Coupling(_tiny())
    kernels = full_kernels(coupling)
    name = kernel_convs(coupling)[1]
    kernels[name][0, 3] = kernels[name][7, 0] = False
    data = kernels_to_json(kernels)
    assert data[name] == [3, 56] and all(v == [] for n, v in data.items() if n != name)
    back = kernels_from_json(coupling, json.loads(json.dumps(data)))
    assert all(np.array_equal(back[n], kernels[n]) for n in kernels)
    assert pruned_kernel_fraction(kernels) == pytest.approx(2 / sum(m.size for m in kernels.values()))
    with pytest.raises(ValueError, match="not a conv of this model"):
        kernels_from_json(coupling, {"nope": [1]})
    with pytest.raises(ValueError, match="indices outside its"):
        kernels_from_json(coupling, {name: [10 ** 6]})
    for granularity, candidates, message in (("rows", 4, "granularity must be one of channel, kernel, both"),
                                             ("both", 0, "candidate masks must be an integer >= 1")):
        with pytest.raises(InvalidArgumentError, match=message):
            check_search(granularity, candidates)


def test_the_coarse_strategy_in_the_loop_records_both_macs_and_resumes_with_its_kernels(tmp_path, monkeypatch):
    model = _tiny()
    monkeypatch.setattr("edgeprune.prune.loop.validate", lambda m, v: {"psnr": 30.0, "ssim": 0.9})
    settings = LoopSettings(method="B", target_mac=None, strategy="coarse", granularity="both", candidates=3,
                            finetune=TrainConfig(steps=2, batch_size=2, patch=8),
                            policy=LevelPolicy(initial_step=0.2, min_step=0.05, max_iterations=3))

    def kill_after_two(record):
        if record["iteration"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prune_loop(model, _pool(), None, settings, BASE, SIZE, tmp_path, progress=kill_after_two, verbose=0)
    saved = load_state(tmp_path)
    assert saved.kernels and sum(map(len, saved.kernels.values())) > 0
    result = prune_loop(model, _pool(), None, settings, BASE, SIZE, tmp_path, resume=True, verbose=0)
    records = result.state.iterations
    assert [r["iteration"] for r in records] == [1, 2, 3] and records[:2] == saved.iterations
    for r in records:
        assert r["threshold"] is None and len(r["search"]["candidate_losses"]) == 3
        assert r["mac"] <= 1 - r["level"] + 1e-9 and r["mac"] <= r["executed_mac"]
    assert [round(r["level"], 3) for r in records] == [0.2, 0.4, 0.6]
    assert records[-1]["pruned_kernels"] > 0  # (on 8-wide groups a first step can be all feature maps)
    # the model holds the kept kernels' zeros; the final plan drops the units left without kernels
    for name, mask in result.kernels.items():
        kernel = result.model.get_layer(name).get_weights()[0]
        assert not kernel[:, :, ~mask].any()
    assert all(set(result.plan.keep[n]) <= set(result.state.keep[n]) for n in result.plan.keep)
    x = np.random.default_rng(2).random((1, *SIZE, 3), dtype=np.float32)
    np.testing.assert_allclose(slim(result.model, result.plan, result.coupling)(x).numpy(),
                               result.model(x).numpy(), atol=1e-5)


def test_coarse_settings_refuse_a_latency_target_and_prune_on_the_mac():
    with pytest.raises(InvalidArgumentError, match="use --target-mac with --strategy coarse"):
        LoopSettings(strategy="coarse", target_latency=0.5, profile=object())
    with pytest.raises(InvalidArgumentError, match="the prune loop runs the strategies threshold, coarse"):
        LoopSettings(strategy="qr")
    assert LoopSettings(strategy="coarse", profile=object()).measure == "mac"
    assert LoopSettings(strategy="threshold", profile=object()).measure == "latency"


def test_sid_concatenations_take_kernel_masks_and_stay_exact():
    model = build_sid(features=(4, 4, 4, 4, 4))
    coupling, oracle, base = _parts(model)
    search = CoarseSearch(model, coupling, oracle, base, PoolBatches(PairSet(
        [np.random.default_rng(0).random((32, 32, 4), dtype=np.float32)],
        [np.random.default_rng(1).random((64, 64, 3), dtype=np.float32)], 2), patch=16, batch_size=1),
        granularity="both", candidates=2)
    best, _, _ = search.propose(0.4, _full_keep(coupling), None, seed=0)
    exploited = exploitable_keep(coupling, best.keep, best.kernels)
    wrapped = wrap(model)
    full = PruningPlan.keep_all(coupling, model.name)
    CoarseMasks(coupling, PruningPlan(full.model, full.fingerprint, full.sizes, best.keep),
                best.kernels).impose(wrapped, model)
    from edgeprune.prune.masking import unwrap

    zeroed = unwrap(wrapped, model)
    x = np.random.default_rng(3).random((1, 32, 32, 4), dtype=np.float32)
    slim_model = slim(zeroed, PruningPlan(full.model, full.fingerprint, full.sizes, exploited), coupling)
    np.testing.assert_allclose(slim_model(x).numpy(), zeroed(x).numpy(), atol=1e-5)
