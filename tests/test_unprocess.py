import numpy as np
import pytest

from edgeprune.data.unprocess import (CameraParams, NoiseModel, linear_to_srgb, low_light_pair, noise_at,
                                      pack_bayer_rggb, packed_raw, random_camera, random_noise, sony_a7s_camera,
                                      srgb_to_linear, unprocess)


def test_srgb_gamma_round_trip():
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-6)
    assert srgb_to_linear(np.float32(0.5)) == pytest.approx(0.2140, abs=1e-4)


def test_pack_bayer_rggb_layout():
    rgb = np.arange(4 * 4 * 3, dtype=np.float32).reshape(4, 4, 3)
    packed = pack_bayer_rggb(rgb)
    assert packed.shape == (2, 2, 4)
    np.testing.assert_array_equal(packed[1, 0], [rgb[2, 0, 0], rgb[2, 1, 1], rgb[3, 0, 1], rgb[3, 1, 2]])


def test_packed_raw_is_unprocess_with_an_ideal_camera():
    srgb = np.random.default_rng(3).random((4, 6, 3), dtype=np.float32)
    ideal = CameraParams(np.eye(3, dtype=np.float32), 1.0, 1.0)
    np.testing.assert_array_equal(packed_raw(srgb), unprocess(srgb, ideal))
    np.testing.assert_array_equal(packed_raw(srgb), pack_bayer_rggb(srgb_to_linear(srgb)))


def test_unprocess_with_identity_camera_is_a_linear_mosaic():
    camera = CameraParams(np.eye(3, dtype=np.float32), 2.0, 1.5)
    srgb = np.random.default_rng(0).random((4, 6, 3), dtype=np.float32)
    raw = unprocess(srgb, camera)
    lin = srgb_to_linear(srgb)
    assert raw.shape == (2, 3, 4)
    np.testing.assert_allclose(raw[..., 0], lin[0::2, 0::2, 0] / 2.0, rtol=1e-6)  # R, divided by the red gain
    np.testing.assert_allclose(raw[..., 1], lin[0::2, 1::2, 1], rtol=1e-6)
    np.testing.assert_allclose(raw[..., 3], lin[1::2, 1::2, 2] / 1.5, rtol=1e-6)


def test_random_camera_matrices_preserve_white():
    cam = random_camera(np.random.default_rng(1))
    np.testing.assert_allclose(cam.rgb_to_cam.sum(axis=1), 1.0, rtol=1e-5)
    assert 1.9 <= cam.red_gain <= 2.4 and 1.5 <= cam.blue_gain <= 1.9


def test_low_light_noise_has_the_modelled_variance():
    rng = np.random.default_rng(2)
    srgb = np.full((256, 256, 3), 0.5, np.float32)
    camera = CameraParams(np.eye(3, dtype=np.float32), 1.0, 1.0)
    noise = NoiseModel(shot=1e-4, read=1e-7)  # std ~ mean / 3.8: the clip at 0 is negligible
    x, target = low_light_pair(srgb, 100.0, rng, camera, noise)
    clean = srgb_to_linear(np.float32(0.5)) / 100.0
    # input = (clean + n) * ratio with var(n) = shot * clean + read
    expected_std = np.sqrt(noise.shot * clean + noise.read) * 100.0
    assert x.shape == (128, 128, 4) and target.shape == (256, 256, 3)
    assert x.mean() == pytest.approx(clean * 100, rel=0.01)
    assert x.std() == pytest.approx(expected_std, rel=0.03)
    with pytest.raises(ValueError, match="exposure ratio must be in \\[1, 300\\]"):
        low_light_pair(srgb, 500, rng)


def test_noise_levels_span_brooks_range():
    rng = np.random.default_rng(0)
    shots = [random_noise(rng).shot for _ in range(200)]
    assert 1e-4 <= min(shots) and max(shots) <= 1.2e-2


def test_fixed_sensor_is_one_camera_and_one_noise_level():
    cam = sony_a7s_camera()
    np.testing.assert_allclose(cam.rgb_to_cam.sum(axis=1), 1.0, rtol=1e-5)
    assert (cam.red_gain, cam.blue_gain) == (2.15, 1.7)
    noise = noise_at(1e-3)
    assert noise.shot == 1e-3 and noise.read == pytest.approx(np.exp(2.18 * np.log(1e-3) + 1.2))
    with pytest.raises(ValueError, match="shot noise must be in"):
        noise_at(0.5)
