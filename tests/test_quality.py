import numpy as np
import pytest

from edgeprune.core.runtime import keras
from edgeprune.train.quality import crop_border, evaluate, psnr_ssim


def test_psnr_of_a_known_error():
    target = np.full((1, 16, 16, 3), 0.5, np.float32)
    pred = target + 0.01  # MSE 1e-4 -> 40 dB
    psnr, ssim = psnr_ssim(pred, target)
    assert psnr == pytest.approx(40.0, abs=1e-3)
    assert 0.9 < ssim <= 1.0
    assert psnr_ssim(target, target)[1] == pytest.approx(1.0)


def test_border_crop_and_clipping():
    target = np.zeros((1, 20, 20, 3), np.float32)
    pred = target.copy()
    pred[:, :2] = 1.0  # errors only in the border
    assert psnr_ssim(pred, target, border=2)[0] == float("inf") or psnr_ssim(pred, target, border=2)[0] > 100
    assert crop_border(target, 2).shape == (1, 16, 16, 3)
    assert psnr_ssim(np.full_like(target, 5.0), np.ones_like(target))[0] > 100  # clipped to [0, 1]
    with pytest.raises(ValueError, match="differ in shape"):
        psnr_ssim(target, target[:, :10])


def test_evaluate_runs_the_model_on_each_image():
    inputs = keras.Input((None, None, 3))
    identity = keras.Model(inputs, keras.layers.Activation("linear")(inputs))
    rng = np.random.default_rng(0)
    pairs = [(img, img) for img in (rng.random((8, 12, 3), dtype=np.float32), rng.random((10, 6, 3), dtype=np.float32))]
    result = evaluate(identity, pairs)
    assert result["images"] == 2 and result["ssim"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no validation images"):
        evaluate(identity, [])
