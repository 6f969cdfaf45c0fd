import numpy as np
import pytest

from edgeprune.data.pairs import PairSet, builtin_sid, random_crops
from edgeprune.core.errors import InvalidArgumentError


@pytest.mark.parametrize("factor, channels", [(2, 3), (3, 3), (2, 4)])
def test_crops_stay_aligned_through_flips_and_rotations(factor, channels):
    rng = np.random.default_rng(0)
    inputs = [rng.random((20, 24, channels), dtype=np.float32) for _ in range(3)]
    # target = nearest-neighbour upsampling of the input, so target[::f, ::f] must equal the input everywhere
    targets = [np.repeat(np.repeat(x[..., :3], factor, 0), factor, 1) for x in inputs]
    x, y = random_crops(PairSet(inputs, targets, factor), 8, 64, rng)
    assert x.shape == (64, 8, 8, channels) and y.shape == (64, 8 * factor, 8 * factor, 3)
    # rotations/flips of the nearest-upsampled target keep the block structure: each f x f block is constant
    blocks = y.reshape(64, 8, factor, 8, factor, 3)
    np.testing.assert_array_equal(blocks.min(axis=(2, 4)), blocks.max(axis=(2, 4)))
    np.testing.assert_array_equal(blocks[:, :, 0, :, 0, :], x[..., :3])


def test_crops_draw_all_eight_symmetries_of_the_square():
    """The one patch sampler (data.sr's former augment/random_patches were a second copy of it)."""
    rng = np.random.default_rng(0)
    image = np.arange(6 * 6 * 3, dtype=np.float32).reshape(6, 6, 3)
    pool = PairSet([image], [np.repeat(np.repeat(image, 2, 0), 2, 1)], 2)
    seen = {random_crops(pool, 6, 1, rng)[0].tobytes() for _ in range(200)}
    assert len(seen) == 8
    x, y = random_crops(PairSet([image[:5, :4]], [np.zeros((10, 8, 3), np.float32)], 2), 3, 5, rng)
    assert x.shape == (5, 3, 3, 3) and y.shape == (5, 6, 6, 3) and x.flags.c_contiguous


def test_data_sr_has_no_second_patch_sampler():
    import edgeprune.data.sr as sr

    assert not hasattr(sr, "random_patches") and not hasattr(sr, "augment")


def test_patch_larger_than_an_image_is_refused():
    pool = PairSet([np.zeros((4, 4, 3), np.float32)], [np.zeros((8, 8, 3), np.float32)], 2)
    with pytest.raises(InvalidArgumentError, match="smaller than the 8-pixel patch"):
        random_crops(pool, 8, 1, np.random.default_rng(0))


def test_builtin_sid_pairs_and_size_check():
    train, val = builtin_sid(2, 64, 64)
    assert train.inputs[0].shape == (32, 32, 4) and train.targets[0].shape == (64, 64, 3)
    assert len(val) == 8 and val.description["kind"].startswith("real photos")
    with pytest.raises(InvalidArgumentError, match="multiples of 32"):
        builtin_sid(1, 40, 64)


def test_builtin_sid_fixed_sensor_and_bad_options():
    train, val = builtin_sid(2, 64, 64, ratios=[100], sensor="fixed")
    assert train.description["ratios"] == [100.0] and "ILCE-7S" in train.description["sensor"]
    assert val.description["sensor"] == train.description["sensor"]
    # the documented sensor: the ILCE-7S camera at shot noise 1e-4, validation at ratio 100
    from edgeprune.data.photos import builtin_photo_paths, fit_to, load_rgb
    from edgeprune.data.unprocess import low_light_pair, noise_at, sony_a7s_camera

    photo = fit_to(load_rgb(builtin_photo_paths()[0]), 64, 64)
    x, y = low_light_pair(photo, 100.0, np.random.default_rng(10_000), sony_a7s_camera(), noise_at(1e-4))
    np.testing.assert_array_equal(val.inputs[0], x)
    np.testing.assert_array_equal(val.targets[0], y)
    with pytest.raises(InvalidArgumentError, match="sensor must be 'random' or 'fixed'"):
        builtin_sid(1, 64, 64, sensor="phone")
    with pytest.raises(InvalidArgumentError, match="exposure ratios must be in"):
        builtin_sid(1, 64, 64, ratios=[1000])


def test_sid_pairs_from_a_folder_of_srgb_photos_draw_fresh_noise_and_share_the_builtin_validation(tmp_path):
    from PIL import Image

    from edgeprune.data.pairs import sid_rgb_folder
    from edgeprune.train.fit import load_data
    from edgeprune.train.presets import preset

    (tmp_path / "train").mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a.png": (70, 100), "b.jpg": (64, 64)}.items():
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(tmp_path / "train" / name)
    train, val = sid_rgb_folder(tmp_path, 64, ratios=(100.0,), sensor="fixed", draws=3)
    assert [x.shape for x in train.inputs] == [(32, 48, 4)] * 3 + [(32, 32, 4)] * 3  # cropped to multiples of 32
    assert [y.shape for y in train.targets] == [(64, 96, 3)] * 3 + [(64, 64, 3)] * 3
    assert np.array_equal(train.targets[0], train.targets[2]) and not np.array_equal(train.inputs[0], train.inputs[1])
    _, builtin_val = builtin_sid(4, 64, 64, ratios=(100.0,), sensor="fixed")
    assert all(np.array_equal(a, b) for a, b in zip(val.inputs, builtin_val.inputs))
    # `--data` with such a folder trains SID on it (a Sony raw folder has short/ and long/ instead)
    settings = preset("quick", "sid").with_overrides({"val_side": 64})
    pool, _ = load_data("sid", tmp_path, settings)
    assert pool.description["kind"] == "sRGB photos unprocessed to noisy raw" and len(pool.inputs) == 16
    with pytest.raises(InvalidArgumentError, match="has no train/ folder of PNG or JPEG photos"):
        sid_rgb_folder(tmp_path / "train", 64)
