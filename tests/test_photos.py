import numpy as np

from edgeprune.data.photos import builtin_photo, builtin_photo_paths, fit_to, photo_input
from edgeprune.data.unprocess import pack_bayer_rggb, srgb_to_linear


def test_real_photos_ship_offline():
    paths = builtin_photo_paths()
    assert len(paths) >= 6 and all(p.is_file() for p in paths)


def test_fit_to_crops_to_aspect_and_scales_to_unit_range():
    image = np.zeros((100, 300, 3), np.uint8)
    image[:, 100:200] = 255  # only the centre third is white
    out = fit_to(image, 20, 20)
    assert out.shape == (20, 20, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1 and out[5:15, 5:15].min() > 0.99


def test_photo_input_for_rgb_and_packed_raw():
    x, desc = photo_input(16, 24, 3)
    assert x.shape == (1, 16, 24, 3) and "photo" in desc
    x, desc = photo_input(16, 24, 4)
    assert x.shape == (1, 16, 24, 4) and "RGGB" in desc


def test_packed_raw_input_undoes_the_srgb_curve():
    """One way from a photo to raw: the sRGB inverse curve of unprocess (not a 2.2 power)."""
    x, desc = photo_input(16, 24, 4)
    srgb = fit_to(builtin_photo(), 32, 48)
    np.testing.assert_array_equal(x[0], pack_bayer_rggb(srgb_to_linear(srgb)))
    assert not np.allclose(x[0], pack_bayer_rggb(srgb ** 2.2), atol=1e-3)
    assert desc == "photo coffee.png as packed RGGB raw (sRGB curve undone)"
