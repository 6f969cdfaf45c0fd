"""Training pools and validation sets of (input, target) pairs for the two tasks, with aligned random patches.

A pool holds whole (input, target) images where the target is ``factor`` times larger than the input (EDSR: the
scale; SID: 2, packed raw -> RGB). Patches are cut at matching positions and get the same flip and 90-degree
rotation (as in EDSR's and SID's own training code).

Built-in default (no ``--data``), documented in docs/commands.md ("Training"):
- training: generated dead-leaves images (never a photograph); for SID turned into noisy short-exposure raw by
  unprocessing. The quick preset uses one fixed sensor (one camera, one noise level) at ratio 100; the full preset
  draws camera, noise and ratio (100, 250, 300 as in the SID Sony set) per image;
- validation: the real photographs that ship in the scikit-image wheel (held out, never trained on), centre-cropped;
  for SID turned into raw the same way with a fixed seed, so every evaluation sees the same noisy inputs.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeprune.core.checks import integer_at_least
from edgeprune.core.errors import InvalidArgumentError

SID_RATIOS = (100.0, 250.0, 300.0)
FIXED_SHOT_NOISE = 1e-4


@dataclass
class PairSet:
    inputs: list
    targets: list
    factor: int
    description: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.inputs)


def random_crops(pool: PairSet, patch: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` aligned (input patch, target patch) pairs; ``patch`` is the input-side size."""
    f = pool.factor
    xs, ys = [], []
    for _ in range(count):
        i = int(rng.integers(len(pool)))
        x, y = pool.inputs[i], pool.targets[i]
        if min(x.shape[:2]) < patch:
            raise InvalidArgumentError(f"a training image of {x.shape[0]}x{x.shape[1]} is smaller than the "
                                       f"{patch}-pixel patch")
        r, c = int(rng.integers(x.shape[0] - patch + 1)), int(rng.integers(x.shape[1] - patch + 1))
        px, py = x[r:r + patch, c:c + patch], y[r * f:(r + patch) * f, c * f:(c + patch) * f]
        if rng.random() < 0.5:
            px, py = px[:, ::-1], py[:, ::-1]
        k = int(rng.integers(4))
        xs.append(np.rot90(px, k))
        ys.append(np.rot90(py, k))
    return np.ascontiguousarray(np.stack(xs)), np.ascontiguousarray(np.stack(ys))


def builtin_sr(scale: int, train_images: int, train_size: int, val_side: int, seed: int = 0) -> tuple[PairSet, PairSet]:
    from edgeprune.data.deadleaves import dead_leaves
    from edgeprune.data.photos import builtin_photo_paths, load_rgb
    from edgeprune.data.sr import downscale, validation_pairs

    rng = np.random.default_rng(seed)
    train = [downscale(dead_leaves(train_size, rng), scale) for _ in range(train_images)]
    photos = builtin_photo_paths()
    val = validation_pairs([load_rgb(p) for p in photos], scale, max_side=val_side)
    return (PairSet([t[0] for t in train], [t[1] for t in train], scale,
                    {"kind": "dead leaves (generated)", "images": train_images, "size": train_size, "seed": seed}),
            PairSet([v[0] for v in val], [v[1] for v in val], scale,
                    {"kind": "real photos from scikit-image (held out)", "files": [p.name for p in photos],
                     "max_side": val_side}))


def builtin_sid(train_images: int, train_size: int, val_side: int, seed: int = 0, ratios=SID_RATIOS,
                sensor: str = "random") -> tuple[PairSet, PairSet]:
    """SID pairs: input = packed raw (size/2), target = sRGB (size).

    ``sensor="random"``: every image gets its own colour matrix, white balance and noise level (Brooks et al.'s
    ranges) and training ratios are drawn from ``ratios``. ``sensor="fixed"``: one camera (ILCE-7S matrix, fixed
    white balance) at one noise level (shot 1e-4, the low end of Brooks et al.'s range), as a single phone camera
    at one ISO would be. Validation is always at ratio 100.
    """
    from edgeprune.data.deadleaves import dead_leaves
    from edgeprune.data.photos import builtin_photo_paths, fit_to, load_rgb
    from edgeprune.data.unprocess import low_light_pair, noise_at, sony_a7s_camera

    if train_size % 32 or val_side % 32:
        raise InvalidArgumentError("SID image sizes must be multiples of 32 (16 on the packed input)")
    if sensor not in ("random", "fixed"):
        raise InvalidArgumentError(f"sensor must be 'random' or 'fixed', got {sensor!r}")
    ratios = [float(r) for r in ratios]
    if not ratios or not all(1 <= r <= 300 for r in ratios):
        raise InvalidArgumentError(f"exposure ratios must be in [1, 300], got {ratios}")
    camera, noise = (sony_a7s_camera(), noise_at(FIXED_SHOT_NOISE)) if sensor == "fixed" else (None, None)
    rng = np.random.default_rng(seed)
    train = [low_light_pair(dead_leaves(train_size, rng), float(rng.choice(ratios)), rng, camera, noise)
             for _ in range(train_images)]
    val_rng = np.random.default_rng(10_000 + seed)
    photos = builtin_photo_paths()
    val = [low_light_pair(fit_to(load_rgb(p), val_side, val_side), 100.0, val_rng, camera, noise) for p in photos]
    sensor_text = (f"one camera (ILCE-7S matrix, WB gains 2.15/1.7), shot noise {FIXED_SHOT_NOISE:g}"
                   if sensor == "fixed" else "random camera and noise per image")
    return (PairSet([t[0] for t in train], [t[1] for t in train], 2,
                    {"kind": "dead leaves (generated), unprocessed to noisy raw", "images": train_images,
                     "size": train_size, "ratios": ratios, "sensor": sensor_text, "seed": seed}),
            PairSet([v[0] for v in val], [v[1] for v in val], 2,
                    {"kind": "real photos from scikit-image (held out), unprocessed to noisy raw at ratio 100",
                     "files": [p.name for p in photos], "side": val_side, "sensor": sensor_text}))


def sid_rgb_folder(root, val_side: int, seed: int = 0, ratios=SID_RATIOS, sensor: str = "random",
                   draws: int = 8) -> tuple[PairSet, PairSet]:
    """SID pairs from a folder of sRGB photos (``root/train/``, as ``tools/registry_photos.py`` writes it),
    unprocessed to noisy low-light raw as :func:`builtin_sid` does dead leaves: every training photo (cropped to a
    multiple of 32 pixels) ``draws`` times, each draw its own noise (and, with ``sensor="random"``, its own camera
    and ratio), so the network sees the noise vary on the same scene. Validation is :func:`builtin_sid`'s: the
    held-out scikit-image photos at ratio 100, so the two are measured on the same images."""
    from pathlib import Path

    from edgeprune.data.photos import load_rgb
    from edgeprune.data.unprocess import low_light_pair, noise_at, sony_a7s_camera

    folder = Path(root) / "train"
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")) \
        if folder.is_dir() else []
    if not files:
        raise InvalidArgumentError(f"'{root}' has no train/ folder of PNG or JPEG photos: give a folder made by "
                                   "tools/registry_photos.py, or the SID Sony layout (short/ and long/ raw files)")
    integer_at_least("draws", draws)
    _, val = builtin_sid(1, 32, val_side, seed, ratios, sensor)
    camera, noise = (sony_a7s_camera(), noise_at(FIXED_SHOT_NOISE)) if sensor == "fixed" else (None, None)
    rng = np.random.default_rng(seed)
    inputs, targets = [], []
    for path in files:
        image = load_rgb(path)
        h, w = image.shape[0] // 32 * 32, image.shape[1] // 32 * 32
        srgb = image[:h, :w].astype(np.float32) / 255.0
        for _ in range(draws):
            x, y = low_light_pair(srgb, float(rng.choice(ratios)), rng, camera, noise)
            inputs.append(x)
            targets.append(y)
    train = PairSet(inputs, targets, 2, {"kind": "sRGB photos unprocessed to noisy raw", "root": str(root),
                                         "images": len(files), "draws": draws, "ratios": [float(r) for r in ratios],
                                         "sensor": sensor, "seed": seed})
    return train, val


def sr_folder(root, scale: int, patch: int, val_side: int | None = None) -> tuple[PairSet, PairSet]:
    from edgeprune.data.sr import downscale, load_folder, validation_pairs

    train, val = load_folder(root, patch * scale)
    train_pairs = [downscale(img, scale) for img in train.images]
    val_pairs = validation_pairs(val.images, scale, max_side=val_side)
    return (PairSet([t[0] for t in train_pairs], [t[1] for t in train_pairs], scale,
                    {"kind": "HR folder", "root": str(root), "images": len(train.images), "skipped": train.skipped}),
            PairSet([v[0] for v in val_pairs], [v[1] for v in val_pairs], scale,
                    {"kind": "HR folder (held out)", "root": str(root), "images": len(val.images),
                     "skipped": val.skipped}))


def sr_train_folder(root, scale: int, patch: int, val_side: int | None = None) -> tuple[PairSet, PairSet]:
    """SR pairs from a folder of training photos alone (``root/train/``, no validation folder): validation is
    :func:`builtin_sr`'s, the held-out scikit-image photos, so the figures compare with every built-in run's. The
    photos the shipped models learnt from (``keras_models/weights/photos/``) are such a folder."""
    from edgeprune.data.sr import downscale, load_images

    files = sorted(p for p in (Path(root) / "train").glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    train = load_images(files, patch * scale)
    if not train.images:
        raise InvalidArgumentError(f"no usable training image in '{root}/train' ({train.skipped['unreadable']} "
                                   f"unreadable, {train.skipped['smaller than a patch']} smaller than a "
                                   f"{patch * scale}-pixel patch)")
    _, val = builtin_sr(scale, 0, patch * scale, val_side)
    pairs = [downscale(image, scale) for image in train.images]
    return (PairSet([p[0] for p in pairs], [p[1] for p in pairs], scale,
                    {"kind": "photos folder", "root": str(root), "images": len(train.images),
                     "skipped": train.skipped}), val)


def sid_folder(root, train_images: int, val_side: int) -> tuple[PairSet, PairSet]:
    """SID pairs from a Sony-layout folder (:mod:`edgeprune.data.raw`): packed, amplified short exposures and the
    rendered long exposures, cropped to a common size (LibRaw may render a few pixels fewer than the mosaic).
    At most ``train_images`` training pairs are loaded; validation inputs are centre-cropped to ``val_side``/2."""
    from edgeprune.data.raw import read_raw, render_long, sid_input, sid_pairs

    train_pairs, val_pairs = sid_pairs(root)

    def load(pair, side=None):
        x, y = sid_input(read_raw(pair.short), pair.ratio), render_long(pair.long)
        h, w = min(x.shape[0], y.shape[0] // 2) // 16 * 16, min(x.shape[1], y.shape[1] // 2) // 16 * 16
        if side:
            h, w = min(h, side // 2), min(w, side // 2)
        top, left = (x.shape[0] - h) // 2, (x.shape[1] - w) // 2
        return x[top:top + h, left:left + w], y[2 * top:2 * (top + h), 2 * left:2 * (left + w)]

    train = [load(p) for p in train_pairs[:train_images]]
    val = [load(p, val_side) for p in val_pairs]
    return (PairSet([t[0] for t in train], [t[1] for t in train], 2,
                    {"kind": "SID Sony layout", "root": str(root), "pairs": len(train),
                     "scenes": sorted({p.scene for p in train_pairs[:train_images]})}),
            PairSet([v[0] for v in val], [v[1] for v in val], 2,
                    {"kind": "SID Sony layout (validation scenes 2xxxx)", "root": str(root), "pairs": len(val)}))
