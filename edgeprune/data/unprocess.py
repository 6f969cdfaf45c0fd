"""Synthetic camera raw from RGB images, for low-light (SID) training without a raw dataset.

Follows "Unprocessing Images for Learned Raw Denoising" (Brooks et al., CVPR 2019): undo the sRGB gamma, undo a
colour-correction matrix and white-balance gains, mosaic with an RGGB Bayer pattern; then simulate a short exposure
(divide by the exposure ratio) with shot and read noise, and apply SID's pre-processing (multiply by the ratio, clip
to 1). The target is the original sRGB image at full resolution, which is what SID learns to produce.
"""

from dataclasses import dataclass

import numpy as np

# camera-to-XYZ matrices of a few Sony cameras (from dcraw's adobe_coeff, the SID dataset's cameras among them)
_SONY_XYZ_TO_CAM = (
    np.array([[5271, -712, -347], [-6153, 13653, 2763], [-1601, 2366, 7242]]) / 10000.0,  # ILCE-7S
    np.array([[5838, -1430, -246], [-3497, 11477, 2297], [-748, 1885, 5778]]) / 10000.0,  # ILCE-7RM2
)
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


def pack_bayer_rggb(linear_rgb: np.ndarray) -> np.ndarray:
    """Mosaics linear RGB (2H x 2W x 3) with an RGGB pattern and packs it to H x W x 4 (R, G1, G2, B), the input
    layout of SID."""
    if linear_rgb.shape[0] % 2 or linear_rgb.shape[1] % 2:
        raise ValueError("height and width must be even to pack a Bayer mosaic")
    return np.stack([linear_rgb[0::2, 0::2, 0], linear_rgb[0::2, 1::2, 1],
                     linear_rgb[1::2, 0::2, 1], linear_rgb[1::2, 1::2, 2]], axis=-1).astype(np.float32)


def packed_raw(srgb: np.ndarray) -> np.ndarray:
    """sRGB (2H x 2W x 3, [0, 1]) as an ideal sensor would record it: the sRGB curve undone, mosaicked RGGB and
    packed (H x W x 4), with no colour matrix, white balance or noise. The one way edgeprune turns a photo into
    SID's input layout outside training (export's verification and calibration inputs)."""
    return pack_bayer_rggb(srgb_to_linear(srgb))


@dataclass(frozen=True)
class CameraParams:
    rgb_to_cam: np.ndarray  # 3x3, rows sum to 1
    red_gain: float
    blue_gain: float


def random_camera(rng: np.random.Generator) -> CameraParams:
    """A random colour matrix (convex mix of Sony matrices) and white-balance gains, as in Brooks et al."""
    weights = rng.random(len(_SONY_XYZ_TO_CAM))
    xyz_to_cam = sum(w * m for w, m in zip(weights, _SONY_XYZ_TO_CAM)) / weights.sum()
    return CameraParams(_rgb_to_cam(xyz_to_cam), float(rng.uniform(1.9, 2.4)), float(rng.uniform(1.5, 1.9)))


def _rgb_to_cam(xyz_to_cam: np.ndarray) -> np.ndarray:
    """sRGB-linear to camera matrix, rows normalised to 1 so white stays white."""
    rgb_to_cam = xyz_to_cam @ _RGB_TO_XYZ
    return (rgb_to_cam / rgb_to_cam.sum(axis=1, keepdims=True)).astype(np.float32)


def unprocess(srgb: np.ndarray, camera: CameraParams) -> np.ndarray:
    """sRGB (2H x 2W x 3, [0, 1]) -> linear camera raw, packed RGGB (H x W x 4)."""
    linear = srgb_to_linear(srgb)
    cam = np.clip(linear @ camera.rgb_to_cam.T, 0.0, 1.0)
    gains = np.array([1.0 / camera.red_gain, 1.0, 1.0 / camera.blue_gain], np.float32)
    return pack_bayer_rggb(cam * gains)


def sony_a7s_camera() -> CameraParams:
    """One fixed camera: the ILCE-7S colour matrix (the SID Sony set's camera) and mid-range white-balance gains."""
    return CameraParams(_rgb_to_cam(_SONY_XYZ_TO_CAM[0]), 2.15, 1.7)


@dataclass(frozen=True)
class NoiseModel:
    """Shot noise variance ``shot * x`` and read noise variance ``read`` on [0, 1] raw values."""

    shot: float
    read: float


def random_noise(rng: np.random.Generator) -> NoiseModel:
    """Log-uniform shot noise and the read noise that goes with it (Brooks et al.'s fit, in [0, 1] units)."""
    log_shot = rng.uniform(np.log(1e-4), np.log(1.2e-2))
    return NoiseModel(float(np.exp(log_shot)), float(np.exp(_log_read(log_shot) + rng.normal(0, 0.26))))


def _log_read(log_shot: float) -> float:
    """Brooks et al.'s fit of log read-noise variance against log shot-noise gain."""
    return 2.18 * log_shot + 1.2


def noise_at(shot: float) -> NoiseModel:
    """The noise of one sensor setting: shot noise ``shot`` and the read noise Brooks et al.'s fit gives it."""
    if not 1e-4 <= shot <= 1.2e-2:
        raise ValueError(f"shot noise must be in Brooks et al.'s range [1e-4, 1.2e-2], got {shot}")
    return NoiseModel(float(shot), float(np.exp(_log_read(np.log(shot)))))


def low_light_pair(srgb: np.ndarray, ratio: float, rng: np.random.Generator, camera: CameraParams | None = None,
                   noise: NoiseModel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(SID input: packed noisy short exposure x ratio, clipped to 1; target: the sRGB image)."""
    if not 1 <= ratio <= 300:
        raise ValueError(f"exposure ratio must be in [1, 300], got {ratio}")
    camera = camera or random_camera(rng)
    noise = noise or random_noise(rng)
    raw = unprocess(srgb, camera) / ratio
    variance = noise.shot * raw + noise.read
    short = raw + rng.standard_normal(raw.shape).astype(np.float32) * np.sqrt(variance).astype(np.float32)
    return np.clip(short * ratio, 0.0, 1.0).astype(np.float32), srgb.astype(np.float32)
