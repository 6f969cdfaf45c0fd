"""edgeprune.prune.control: the CLI's control is the baseline fine-tuned chunk after chunk, as the loop fine-tunes
the pruned model (one more chunk per budget asked, every chunk cached, clear errors); the public control trains a
copy of the user's model forward with the user's training."""

from dataclasses import replace

import numpy as np
import pytest

from edgeprune.core.errors import FileFormatError, InvalidArgumentError
from edgeprune.prune.control import SEED_OFFSET, ControlChain, EqualBudgetControl
from edgeprune.train import fit as fit_module
from edgeprune.train.fit import TrainConfig, fit, validate
from keras_models import build_edsr
from test_fit import tiny_pool

CHUNK = TrainConfig(steps=3, steps_per_epoch=3, batch_size=2, patch=8, learning_rate=1e-3, seed=5)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "controls"


@pytest.fixture
def counted_fits(monkeypatch):
    seeds = []
    real = fit_module.fit
    monkeypatch.setattr(fit_module, "fit", lambda m, p, c, **k: seeds.append(c.seed) or real(m, p, c, **k))
    return seeds


def _baseline():
    return build_edsr(num_blocks=1, num_features=8)


def test_the_control_at_n_chunks_is_the_baseline_fine_tuned_chunk_after_chunk_with_the_chains_seeds(cache):
    baseline, pool, val = _baseline(), tiny_pool(), tiny_pool(n=2)
    got = ControlChain(baseline, pool, val, CHUNK)(6)
    by_hand = baseline
    for j in (1, 2):  # a fresh fit (fresh Adam) per chunk, from the last chunk's weights
        by_hand, _ = fit(by_hand, pool, replace(CHUNK, seed=CHUNK.seed + SEED_OFFSET + j), verbose=0)
    expected = validate(by_hand, val)
    assert got["steps"] == 6 and got["chunks"] == 2 and "cached" not in got
    assert got["psnr"] == pytest.approx(expected["psnr"], abs=1e-4)
    assert got["ssim"] == pytest.approx(expected["ssim"], abs=1e-5)
    assert sorted(p.name.split("-")[-1] for p in cache.glob("chain-*.weights.h5")) == ["1.weights.h5",
                                                                                      "2.weights.h5"]


def test_each_larger_budget_trains_one_chunk_more_and_another_run_reuses_the_cache(cache, counted_fits):
    baseline, pool, val = _baseline(), tiny_pool(), tiny_pool(n=2)
    chain = ControlChain(baseline, pool, val, CHUNK)
    for steps in (3, 6, 9):  # what the gate asks as the loop accepts iteration after iteration
        chain(steps)
    assert chain.trained == 3 and counted_fits == [CHUNK.seed + SEED_OFFSET + j for j in (1, 2, 3)]
    again = chain(6)  # a rolled-back step asks the same budget again: no training
    assert again["cached"].endswith("-2.json") and chain.trained == 3
    lines = []
    other = ControlChain(baseline, pool, val, CHUNK, echo=lines.append)  # another row on the same baseline and seed
    assert other(9)["cached"] and other.trained == 0
    other(12)  # continues from the cached third chunk's weights
    assert other.trained == 1 and counted_fits[-1] == CHUNK.seed + SEED_OFFSET + 4
    assert any("after 9 steps from the cache" in line for line in lines)
    assert any("chunk 4 of 4 (3 steps from step 9" in line for line in lines)


def test_another_seed_or_baseline_is_another_chain(cache):
    baseline, pool, val = _baseline(), tiny_pool(), tiny_pool(n=2)
    keys = {ControlChain(baseline, pool, val, CHUNK).key, ControlChain(baseline, pool, val, replace(CHUNK, seed=6)).key}
    other = _baseline()
    other.set_weights([w * 0.5 for w in other.get_weights()])
    keys.add(ControlChain(other, pool, val, CHUNK).key)
    assert len(keys) == 3


def test_zero_steps_is_the_baseline_and_a_part_chunk_is_refused(cache):
    baseline, pool, val = _baseline(), tiny_pool(), tiny_pool(n=2)
    chain = ControlChain(baseline, pool, val, CHUNK)
    zero = chain(0)
    assert zero["steps"] == 0 and zero["psnr"] == pytest.approx(validate(baseline, val)["psnr"])
    with pytest.raises(InvalidArgumentError, match="chunks of 3 steps .* 4 steps is not a whole number of chunks"):
        chain(4)
    assert not cache.exists() or not list(cache.iterdir())


def test_unreadable_cached_weights_are_a_clear_error(cache):
    baseline, pool, val = _baseline(), tiny_pool(), tiny_pool(n=2)
    chain = ControlChain(baseline, pool, val, CHUNK)
    cache.mkdir(parents=True)
    chain.weights_path(1).write_bytes(b"not hdf5")
    with pytest.raises(FileFormatError, match=r"cached control weights '.*-1\.weights\.h5' are unreadable "
                                              r"\(OSError\): delete them and run again"):
        chain(6)
    assert np.isfinite(chain(0)["psnr"])


def test_a_fault_of_the_program_while_loading_cached_weights_surfaces(cache, monkeypatch):
    baseline = _baseline()
    chain = ControlChain(baseline, tiny_pool(), tiny_pool(n=2), CHUNK)
    cache.mkdir(parents=True)
    chain.weights_path(1).write_bytes(b"not hdf5")

    def broken(self, path, *args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'weights'")

    monkeypatch.setattr(type(baseline), "load_weights", broken)
    with pytest.raises(AttributeError, match="no attribute 'weights'"):
        chain(3)


def test_the_public_control_trains_a_copy_forward_and_answers_each_budget_once():
    baseline = _baseline()
    before = [w.copy() for w in baseline.get_weights()]
    trained = []

    def train(model, steps):
        trained.append(steps)
        model.set_weights([w + 0.01 * steps for w in model.get_weights()])

    control = EqualBudgetControl(baseline, lambda m: {"psnr": float(m.get_weights()[0].sum())}, train=train)
    first, again, later = control(4), control(4), control(10)
    assert trained == [4, 6] and first == again and later["psnr"] > first["psnr"]
    assert all(np.array_equal(a, b) for a, b in zip(baseline.get_weights(), before))  # the user's model untouched
    with pytest.raises(InvalidArgumentError, match="trains forward only: it cannot answer for 6"):
        control(6)
    with pytest.raises(InvalidArgumentError, match="train=callable.*or data="):
        EqualBudgetControl(baseline, lambda m: {})
