"""Real photographs that ship inside the scikit-image wheel (no download), and fitting images to a model input.

These photos are held out for validation and verification; edgeprune never trains on them.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from edgeprune.data.unprocess import packed_raw

BUILTIN_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                  "motorcycle_right.png", "hubble_deep_field.jpg", "ihc.png")


def _skimage_data_dir() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent


def builtin_photo_paths() -> list[Path]:
    root = _skimage_data_dir()
    return [root / name for name in BUILTIN_PHOTOS if (root / name).is_file()]


def load_rgb(path) -> np.ndarray:
    """An image file as uint8 HxWx3 (grey is replicated, alpha dropped)."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def builtin_photo(name: str = "coffee.png") -> np.ndarray:
    return load_rgb(_skimage_data_dir() / name)


def fit_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crops ``image`` to the aspect ratio ``height:width``, resizes it (bicubic, antialiased) and returns
    float32 in [0, 1]."""
    h, w = image.shape[:2]
    scale = min(h / height, w / width)
    ch, cw = int(round(height * scale)), int(round(width * scale))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = Image.fromarray(image[top:top + ch, left:left + cw])
    resized = crop.resize((width, height), Image.Resampling.BICUBIC, reducing_gap=None)
    return np.asarray(resized, dtype=np.float32) / 255.0


def photo_input(height: int, width: int, channels: int, name: str = "coffee.png") -> tuple[np.ndarray, str]:
    """A real photo shaped for a model input: RGB for 3 channels, a packed Bayer mosaic (``unprocess.packed_raw``:
    the sRGB curve undone) for 4. Returns (1 x H x W x C float32, description)."""
    photo = builtin_photo(name)
    if channels == 3:
        return fit_to(photo, height, width)[None], f"photo {name} (RGB)"
    if channels == 4:
        raw = packed_raw(fit_to(photo, 2 * height, 2 * width))
        return raw[None], f"photo {name} as packed RGGB raw (sRGB curve undone)"
    raise ValueError(f"no photo layout for {channels} input channels")
