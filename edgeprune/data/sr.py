"""Super-resolution data: HR images -> (LR, HR) pairs, LR made by bicubic downscaling with antialiasing.

A user folder follows DIV2K: HR images (PNG/JPEG/...) either in ``train/`` and ``val/`` (or ``valid/``)
subfolders, or all together, in which case every 10th file (sorted by name) is held out for validation. Unreadable
files and images smaller than a training patch are skipped with a warning and counted; a folder with no usable image
is an error. Training cuts aligned random patches, flipped and rotated by 90 degrees, from the downscaled pairs
(:func:`edgeprune.data.pairs.random_crops`); validation uses whole images (the border of ``scale`` pixels is cropped
when PSNR/SSIM are measured, see :mod:`edgeprune.train.quality`).
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeprune.core.errors import InvalidArgumentError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class ImageSet:
    images: list  # uint8 HxWx3 arrays
    names: list
    skipped: dict = field(default_factory=dict)  # reason -> count


def load_images(paths, min_size: int = 0) -> ImageSet:
    from edgeprune.data.photos import load_rgb

    out = ImageSet([], [], {"unreadable": 0, "smaller than a patch": 0})
    for path in paths:
        try:
            image = load_rgb(path)
        except (OSError, ValueError, SyntaxError) as exc:
            log.warning("skipping %s: not a readable image (%s)", path, exc)
            out.skipped["unreadable"] += 1
            continue
        if min(image.shape[:2]) < min_size:
            log.warning("skipping %s: %dx%d is smaller than a %d-pixel patch", path, *image.shape[:2], min_size)
            out.skipped["smaller than a patch"] += 1
            continue
        out.images.append(image)
        out.names.append(str(path))
    return out


def _image_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as exc:
        raise InvalidArgumentError(f"data folder '{folder}' cannot be read ({exc.strerror or exc}): check its "
                                   "permissions") from exc


VALIDATION_DIRS = ("val", "valid", "validation")  # the names a DIV2K-style folder's held-out subfolder goes by


def validation_folder(root) -> Path | None:
    """``root``'s validation subfolder (one of VALIDATION_DIRS), or None."""
    return next((Path(root) / n for n in VALIDATION_DIRS if (Path(root) / n).is_dir()), None)


def split_folder(root) -> tuple[list[Path], list[Path]]:
    """(train files, validation files) of a DIV2K-style folder."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise InvalidArgumentError(f"data folder '{root}' is a file: give a folder of HR images")
    if not root.is_dir():
        raise InvalidArgumentError(f"data folder '{root}' does not exist")
    val_dir = validation_folder(root)
    if (root / "train").is_dir() and val_dir is not None:
        train, val = _image_files(root / "train"), _image_files(val_dir)
    else:
        files = _image_files(root)
        val = files[::10]
        train = [f for f in files if f not in set(val)]
    if not train or not val:
        raise InvalidArgumentError(f"data folder '{root}' has no images to train on and validate with: put HR images "
                                   "(PNG/JPEG) in it, or in train/ and val/ subfolders")
    return train, val


def load_folder(root, patch: int) -> tuple[ImageSet, ImageSet]:
    train_files, val_files = split_folder(root)
    train, val = load_images(train_files, patch), load_images(val_files, 0)
    if not train.images:
        raise InvalidArgumentError(f"no usable training image in '{root}' ({train.skipped['unreadable']} unreadable, "
                                   f"{train.skipped['smaller than a patch']} smaller than a {patch}-pixel patch)")
    if not val.images:
        raise InvalidArgumentError(f"no usable validation image in '{root}' ({val.skipped['unreadable']} unreadable)")
    return train, val


def downscale(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) in [0, 1]: HR cropped to a multiple of ``scale``, LR by bicubic resizing with antialiasing."""
    from edgeprune.core.runtime import tf

    hr = np.asarray(hr)
    hr = hr.astype(np.float32) / 255.0 if np.issubdtype(hr.dtype, np.integer) else hr.astype(np.float32)
    h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
    if h == 0 or w == 0:
        raise InvalidArgumentError(f"image of {hr.shape[0]}x{hr.shape[1]} is too small for scale {scale}")
    hr = hr[:h, :w]
    lr = tf.image.resize(hr[None], (h // scale, w // scale), method="bicubic", antialias=True)[0]
    return np.clip(lr.numpy(), 0.0, 1.0).astype(np.float32), hr.astype(np.float32)


def validation_pairs(images: list, scale: int, max_side: int | None = None) -> list:
    """Whole-image (LR, HR) pairs; ``max_side`` centre-crops large images to bound evaluation time."""
    pairs = []
    for image in images:
        if max_side:
            h, w = image.shape[:2]
            th, tw = min(h, max_side), min(w, max_side)
            image = image[(h - th) // 2:(h - th) // 2 + th, (w - tw) // 2:(w - tw) // 2 + tw]
        pairs.append(downscale(image, scale))
    return pairs
