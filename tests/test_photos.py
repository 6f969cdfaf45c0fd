import numpy as np

from edgeprune.data.photos import builtin_photo_paths, fit_to, pack_bayer_rggb, photo_input


def test_real_photos_ship_offline():
    paths = builtin_photo_paths()
    assert len(paths) >= 6 and all(p.is_file() for p in paths)


def test_fit_to_crops_to_aspect_and_scales_to_unit_range():
    image = np.zeros((100, 300, 3), np.uint8)
    image[:, 100:200] = 255  # only the centre third is white
    out = fit_to(image, 20, 20)
    assert out.shape == (20, 20, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1 and out[5:15, 5:15].min() > 0.99


def test_pack_bayer_rggb_layout():
    rgb = np.arange(4 * 4 * 3, dtype=np.float32).reshape(4, 4, 3)
    packed = pack_bayer_rggb(rgb)
    assert packed.shape == (2, 2, 4)
    np.testing.assert_array_equal(packed[1, 0], [rgb[2, 0, 0], rgb[2, 1, 1], rgb[3, 0, 1], rgb[3, 1, 2]])


def test_photo_input_for_rgb_and_packed_raw():
    x, desc = photo_input(16, 24, 3)
    assert x.shape == (1, 16, 24, 3) and "photo" in desc
    x, desc = photo_input(16, 24, 4)
    assert x.shape == (1, 16, 24, 4) and "RGGB" in desc
