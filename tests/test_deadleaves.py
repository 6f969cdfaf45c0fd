import numpy as np

from edgeprune.data.deadleaves import _radius, dead_leaves


def test_shape_range_and_reproducibility():
    a = dead_leaves((40, 56), np.random.default_rng(3))
    b = dead_leaves((40, 56), np.random.default_rng(3))
    assert a.shape == (40, 56, 3) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, dead_leaves((40, 56), np.random.default_rng(4)))


def test_covers_the_image_with_many_flat_regions_and_edges():
    img = dead_leaves(64, np.random.default_rng(0), texture=0.0, max_blur=0.0)
    colours = {tuple(c) for c in img.reshape(-1, 3).round(4)}
    assert len(colours) > 20  # many shapes
    assert (img.sum(axis=2) > 0).mean() > 0.99  # covered: no background left
    dx = np.abs(np.diff(img, axis=1)).sum(axis=2)
    assert 0.02 < (dx > 1e-6).mean() < 0.6  # mostly flat, with occlusion edges


def test_radius_distribution_follows_r_to_the_minus_3():
    rng = np.random.default_rng(0)
    r = np.array([_radius(rng, 1.0, 100.0) for _ in range(20000)])
    assert r.min() >= 1.0 and r.max() <= 100.0
    # for p(r) ~ r^-3 on [1, inf), P(r > 2) = 1/4
    assert abs((r > 2).mean() - 0.25) < 0.015
