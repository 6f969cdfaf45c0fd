"""Image quality: PSNR and SSIM with tf.image, on images in [0, 1], optionally with a border cropped (the SR
convention: ``scale`` pixels), averaged over a set of images."""

import numpy as np

from edgeprune.core.runtime import tf


def crop_border(image, border: int):
    return image if border <= 0 else image[..., border:-border, border:-border, :]


def psnr_ssim(prediction, target, border: int = 0) -> tuple[float, float]:
    """PSNR (dB) and SSIM of one image or a batch (mean over the batch), after clipping the prediction to [0, 1]."""
    p = tf.clip_by_value(tf.convert_to_tensor(prediction, tf.float32), 0.0, 1.0)
    t = tf.convert_to_tensor(target, tf.float32)
    if p.shape != t.shape:
        raise ValueError(f"prediction {tuple(p.shape)} and target {tuple(t.shape)} differ in shape")
    p, t = crop_border(p, border), crop_border(t, border)
    window = int(min(11, p.shape[-3], p.shape[-2]))  # tf.image.ssim's 11x11 window, smaller for tiny images
    ssim = tf.image.ssim(p, t, 1.0, filter_size=window)
    return float(tf.reduce_mean(tf.image.psnr(p, t, max_val=1.0))), float(tf.reduce_mean(ssim))


def evaluate(model, pairs, border: int = 0) -> dict:
    """Mean PSNR/SSIM of ``model`` over (input, target) pairs of whole images (each run alone, batch 1)."""
    psnrs, ssims = [], []
    for x, y in pairs:
        pred = model(np.asarray(x)[None], training=False)
        psnr, ssim = psnr_ssim(pred, np.asarray(y)[None], border)
        psnrs.append(psnr)
        ssims.append(ssim)
    if not psnrs:
        raise ValueError("no validation images")
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)), "images": len(psnrs)}
