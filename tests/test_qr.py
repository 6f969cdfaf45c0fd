"""Pivoted-QR channel selection with least-squares reconstruction (Zhang et al., arXiv 1908.03266): patches are the
conv, pivoting ranks redundant and dead channels last, the re-fit is exact when nothing is removed and beats dropping
channels by L1 norm, and the pruned copy slims to the same outputs on a residual trunk and on concatenations."""

import numpy as np
import pytest

from edgeprune.data.pairs import PairSet
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.graph.coupling import Coupling
from edgeprune.prune.masking import ChannelMasks
from edgeprune.prune.oneshot import l1_plan
from edgeprune.prune.plan import PruningPlan, fingerprint
from edgeprune.prune.qr import (_output_positions, _sampled_patches, conv_patches, pivot_order, qr_batches,
                                qr_importance, qr_reconstruct, qr_rows, refit)
from edgeprune.prune.surgery import slim
from edgeprune.core.runtime import keras
from edgeprune.train.fit import plain_copy
from keras_models import build_edsr, build_sid


def _batches(shape, count, seed):
    rng = np.random.default_rng(seed)
    return [(rng.random(shape, dtype=np.float32), None) for _ in range(count)]


def _error(model, reference, batches):
    """||model - reference|| / ||reference|| over the batches' outputs."""
    diff = sum(float(np.sum((model(x).numpy() - reference(x).numpy()) ** 2)) for x, _ in batches)
    return np.sqrt(diff / sum(float(np.sum(reference(x).numpy() ** 2)) for x, _ in batches))


def _plan(coupling, keep, name="m"):
    return PruningPlan(name, fingerprint(coupling), {n: g.size for n, g in coupling.groups.items()}, keep)


@pytest.mark.parametrize("options", [
    {"kernel_size": 1},
    {"kernel_size": 3, "padding": "same"},
    {"kernel_size": 3, "padding": "valid"},
    {"kernel_size": 3, "padding": "same", "dilation_rate": 2},
    {"kernel_size": 3, "padding": "same", "strides": 2},  # asymmetric SAME padding on the even side
    {"kernel_size": (2, 3), "padding": "valid", "strides": 2},
])
def test_patches_times_the_kernel_are_the_convs_pre_activation_output(options):
    x = np.random.default_rng(0).random((2, 9, 10, 5), dtype=np.float32)
    layer = keras.layers.Conv2D(4, activation="relu", bias_initializer="glorot_uniform", **options)
    y = layer(x).numpy()
    kernel, bias = layer.get_weights()
    patches = conv_patches(x, layer)
    assert patches.shape == (y.size // 4, kernel[..., 0].size)  # N*Ho*Wo x kh*kw*Cin
    pre = patches @ kernel.reshape(-1, 4) + bias
    assert (pre < 0).any()  # the relu matters: these are pre-activations
    np.testing.assert_allclose(np.maximum(pre, 0), y.reshape(-1, 4), atol=2e-6)
    # the re-fit gathers only sampled rows and columns: exactly those of the patches
    rows, cols = np.array([0, 3, patches.shape[0] - 1]), np.array([patches.shape[1] - 1, 0, 2])
    assert _output_positions(x.shape, layer) == patches.shape[0]
    np.testing.assert_array_equal(_sampled_patches(x, layer, rows), patches[rows])
    np.testing.assert_array_equal(_sampled_patches(x, layer, rows, cols), patches[rows][:, cols])


def test_patches_are_refused_for_layers_that_are_not_plain_convs():
    x = np.zeros((1, 4, 4, 2), np.float32)
    for layer in (keras.layers.DepthwiseConv2D(3), keras.layers.Conv2DTranspose(2, 2)):
        layer(x)
        with pytest.raises(InvalidArgumentError, match=f"{type(layer).__name__} '{layer.name}' is not a Conv2D"):
            conv_patches(x, layer)


def test_pivoting_puts_the_largest_column_first_and_a_duplicate_and_a_zero_column_last():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((20, 6))
    a[:, 2] *= 5  # the largest column
    a = np.column_stack([a[:, :4], np.zeros(20), a[:, 4:], a[:, 1]])  # zero column 4, column 7 duplicates 1
    order, diag = pivot_order(a)
    assert order[0] == 2 and sorted(order.tolist()) == list(range(8))
    assert order[-1] == 4 and diag[-1] == 0
    assert order[-2] in (1, 7) and diag[-2] < 1e-12 * diag[0]
    assert (np.diff(diag) <= 1e-12).all() and diag[-3] > 0.1
    np.testing.assert_allclose(diag[0], np.linalg.norm(a[:, 2]))
    wide_order, wide_diag = pivot_order(a[:3])  # fewer rows than units: |R_ii| is zero past the third
    assert sorted(wide_order.tolist()) == list(range(8)) and (wide_diag[:3] > 0).all() and not wide_diag[3:].any()


def test_refit_returns_the_original_weights_when_they_fit_and_least_squares_otherwise():
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal((20, 3))
    for rows in (10, 200):  # fewer rows than columns too (SID's widest level): the ridge keeps it defined
        p = rng.standard_normal((rows, 20))
        w = refit(p, p @ w0, w0)
        assert np.abs(w - w0).max() / np.abs(w0).max() <= 1e-10
    z = rng.standard_normal((200, 3))
    np.testing.assert_allclose(refit(p, z, w0, ridge=1e-12), np.linalg.lstsq(p, z, rcond=None)[0], atol=1e-9)
    lam = 0.5 * np.mean(np.sum(p * p, axis=0))  # the ridge pulls toward w0 with lam = ridge * mean(diag(P^T P))
    np.testing.assert_allclose(refit(p, z, w0, ridge=0.5),
                               np.linalg.solve(p.T @ p + lam * np.eye(20), p.T @ z + lam * w0), rtol=1e-10)
    with pytest.raises(InvalidArgumentError, match=r"refit needs P \(rows x cols\)"):
        refit(p, z[:, :2], w0)


def _two_convs(seed=0, width=8):
    keras.utils.set_random_seed(seed)
    x = keras.Input((12, 12, 3))
    a = keras.layers.Conv2D(width, 3, padding="same", activation="relu", bias_initializer="glorot_uniform",
                            name="a")(x)
    return keras.Model(x, keras.layers.Conv2D(3, 3, padding="same", name="b")(a), name="two")


def test_redundant_channels_are_dropped_and_the_consumer_rebuilt_where_l1_keeps_the_redundant_ones():
    model = _two_convs()
    kernel, bias = model.get_layer("a").get_weights()
    kernel[..., 2:4] *= 0.5
    bias[2:4] *= 0.5
    for copy, source, factor in ((4, 0, 2), (5, 0, 3), (6, 1, 2), (7, 1, 3)):  # relu(f z) = f relu(z)
        kernel[..., copy], bias[copy] = factor * kernel[..., source], factor * bias[source]
    model.get_layer("a").set_weights([kernel, bias])
    coupling = Coupling(model)
    samples, held_out = _batches((2, 12, 12, 3), 4, 0), _batches((2, 12, 12, 3), 2, 1)
    pruned, keep, details = qr_reconstruct(model, coupling, {"a": 4}, samples)
    assert keep == {"a": [2, 3, 5, 7]}  # one of each proportional family, and the two independent channels
    l1 = l1_plan(coupling, 0.5, "two")
    assert l1.keep == {"a": [4, 5, 6, 7]}  # the largest filters span only two directions
    qr_error = _error(pruned, model, held_out)
    l1_error = _error(slim(model, l1, coupling), model, held_out)
    assert qr_error < 1e-3 and l1_error > 0.9  # measured 1.6e-4 and 0.99
    fit = details["a"]["consumers"]["b"]  # on the sampled rows: 0.27 with the kept channels alone, 2e-4 re-fitted
    assert fit["refit"] and fit["error_after"] < 1e-3 and fit["error_before"] > 0.2


def test_on_random_weights_the_reconstruction_beats_dropping_the_l1_smallest_filters_on_held_out_data():
    model = _two_convs(seed=3, width=12)
    coupling = Coupling(model)
    samples, held_out = _batches((2, 12, 12, 3), 4, 2), _batches((2, 12, 12, 3), 2, 3)
    for ratio, count in ((0.25, 9), (0.5, 6), (0.75, 3)):
        pruned, keep, _ = qr_reconstruct(model, coupling, {"a": count}, samples)
        assert len(keep["a"]) == count
        assert _error(pruned, model, held_out) < _error(slim(model, l1_plan(coupling, ratio, "two"), coupling),
                                                        model, held_out)


def test_with_every_unit_kept_the_refits_return_the_original_weights():
    model = build_edsr(num_blocks=2, num_features=8)
    coupling = Coupling(model)
    copy, keep, details = qr_reconstruct(model, coupling, {n: g.size for n, g in coupling.groups.items()},
                                         _batches((2, 10, 10, 3), 2, 4), max_rows_per_batch=64)
    assert keep == {n: list(range(g.size)) for n, g in coupling.groups.items()}
    assert all(c["refit"] for d in details.values() for c in d["consumers"].values())
    for layer in model.layers:
        for w, original in zip(copy.get_layer(layer.name).get_weights(), layer.get_weights()):
            assert np.abs(w - original).max() <= 1e-5 * max(np.abs(original).max(), 1e-12)


@pytest.mark.parametrize("build, shape", [(lambda: build_edsr(num_blocks=2, num_features=8), (2, 10, 10, 3)),
                                          (lambda: build_sid(features=(4, 4, 4, 4, 4)), (1, 32, 32, 4))])
def test_rows_have_the_taylor_layout_and_pruned_units_score_zero(build, shape):
    model = build()
    coupling = Coupling(model)
    batches = _batches(shape, 2, 5)
    rows = qr_rows(model, coupling, batches, max_rows_per_batch=128)
    assert set(rows) == set(coupling.groups)
    for name, group in coupling.groups.items():
        assert rows[name].shape == (len(group.producers), group.size)
        assert (rows[name] == rows[name][0]).all() and (rows[name] > 0).all()
        np.testing.assert_allclose(rows[name][0].mean(), 1.0)
    keep = {n: list(range(1, g.size, 2)) for n, g in coupling.groups.items()}  # odd units kept
    masked = plain_copy(model)
    ChannelMasks(coupling, _plan(coupling, keep)).apply(masked)
    pruned_rows = qr_rows(masked, coupling, batches, max_rows_per_batch=128)
    for name, group in coupling.groups.items():
        row = pruned_rows[name][0]
        assert not row[::2].any() and (row[1::2] > 0).all()
        np.testing.assert_allclose(row[1::2].mean(), 1.0)


@pytest.mark.parametrize("build, shape", [(lambda: build_edsr(num_blocks=2, num_features=8), (2, 10, 10, 3)),
                                          (lambda: build_sid(features=(4, 4, 4, 4, 4)), (1, 32, 32, 4))])
def test_the_pruned_copy_slims_to_the_same_outputs_and_keeps_exactly_the_counts(build, shape):
    model = build()
    coupling = Coupling(model)
    before = [w.copy() for w in model.get_weights()]
    counts = {n: max(1, g.size // 2 - i % 2) for i, (n, g) in enumerate(coupling.groups.items())}
    trunk = max(coupling.groups, key=lambda n: len(coupling.groups[n].producers))
    copy, keep, details = qr_reconstruct(model, coupling, counts, _batches(shape, 2, 6), max_rows_per_batch=128)
    assert {n: len(k) for n, k in keep.items()} == counts
    assert all(k == sorted(set(k)) for k in keep.values())
    assert set(details) == set(counts) and all(details[n]["kept"] == counts[n] for n in counts)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))  # the input is not changed
    slim_model = slim(copy, _plan(coupling, keep, model.name), coupling)
    x = _batches(shape, 1, 7)[0][0]
    out = copy(x).numpy()
    assert np.abs(slim_model(x).numpy() - out).max() <= 1e-5 * max(np.abs(out).max(), 1.0)
    refits = [c for d in details.values() for c in d["consumers"].values() if c["refit"]]
    assert refits and all(c["error_after"] <= c["error_before"] for c in refits)
    if len(coupling.groups[trunk].producers) > 1:  # EDSR: the trunk is selected once, for every block reading it
        assert set(details[trunk]["consumers"]) == set(coupling.groups[trunk].consumers)
    else:  # SID: the transposed convs lose input channels but are not re-fitted
        skipped = {n for d in details.values() for n, c in d["consumers"].items() if not c["refit"]}
        assert skipped == {"up6", "up7", "up8", "up9"}


def test_the_loops_importance_draws_its_batches_reproducibly_from_the_seed():
    rng = np.random.default_rng(8)
    hr = [rng.random((32, 32, 3), dtype=np.float32) for _ in range(3)]
    pool = PairSet([h[::2, ::2] for h in hr], hr, 2)
    batches = qr_batches(pool, batch_size=2, patch=8, seed=3, batches=2)
    assert [(x.shape, y.shape) for x, y in batches] == [((2, 8, 8, 3), (2, 16, 16, 3))] * 2
    model = build_edsr(num_blocks=1, num_features=8)
    coupling = Coupling(model)
    rows = qr_importance(model, coupling, pool, batch_size=2, patch=8, seed=3, batches=2)
    direct = qr_rows(model, coupling, batches)
    other = qr_importance(model, coupling, pool, batch_size=2, patch=8, seed=4, batches=2)
    assert all(np.array_equal(rows[n], direct[n]) for n in coupling.groups)
    assert any(not np.array_equal(rows[n], other[n]) for n in coupling.groups)


def test_bad_counts_and_batches_are_refused_with_what_to_do():
    model = _two_convs()
    coupling = Coupling(model)
    batches = _batches((1, 12, 12, 3), 1, 0)
    for counts, message in (({"a": 0}, r"counts\['a'\] is 0: keep an integer number of units between 1 and 8"),
                            ({"a": 9}, r"counts\['a'\] is 9: keep an integer number of units between 1 and 8"),
                            ({"a": True}, r"counts\['a'\] is True"),
                            ({"a": 2.0}, r"counts\['a'\] is 2.0"),
                            ({"zz": 2}, "counts names group 'zz', which the model does not have: use one of a")):
        with pytest.raises(InvalidArgumentError, match=message):
            qr_reconstruct(model, coupling, counts, batches)
    with pytest.raises(InvalidArgumentError, match="no sample batches: give at least one"):
        qr_reconstruct(model, coupling, {"a": 2}, [])
    with pytest.raises(InvalidArgumentError, match="max_rows_per_batch must be an integer >= 1, got 0"):
        qr_rows(model, coupling, batches, max_rows_per_batch=0)


def test_the_originals_targets_take_one_pass_for_every_consumer_and_a_smaller_budget_only_more(monkeypatch):
    from edgeprune.prune import qr

    model = build_edsr(num_blocks=2, num_features=8)
    coupling = Coupling(model)
    counts = {n: max(1, g.size // 2) for n, g in coupling.groups.items()}
    passes, real = [], qr._Targets.__init__

    def counted(self, *args, **kwargs):
        real(self, *args, **kwargs)
        passes.append(self)

    monkeypatch.setattr(qr._Targets, "__init__", counted)
    batches = _batches((2, 10, 10, 3), 2, 6)
    copy, keep, details = qr_reconstruct(model, coupling, counts, batches, max_rows_per_batch=64)
    refits = sum(c["refit"] for d in details.values() for c in d["consumers"].values())
    assert refits == 7 and passes[-1].passes == 1  # 2 blocks x 2 convs, body end, upsampler, tail: one pass
    monkeypatch.setattr(qr, "TARGET_BYTES", 1)  # one consumer's targets at a time
    small, small_keep, small_details = qr_reconstruct(model, coupling, counts, batches, max_rows_per_batch=64)
    assert passes[-1].passes == refits and small_keep == keep and small_details == details
    assert all(np.array_equal(a, b) for a, b in zip(small.get_weights(), copy.get_weights()))
