"""What the examples share, standing in for a user's own training code: photos, a tf.data pipeline of aligned
random crops, a loss edgeprune does not define, and held-out validation pairs.

Nothing here is edgeprune's: a user brings their own (DIV2K and a perceptual loss, say)."""

import argparse
from pathlib import Path

import numpy as np
import tensorflow as tf
from skimage import data as photos

SCALE = 2


def _photo(name: str) -> np.ndarray:
    return getattr(photos, name)()[..., :3].astype(np.float32) / 255.0


def training_photos() -> list[np.ndarray]:
    return [_photo(n) for n in ("coffee", "chelsea", "rocket")]


def validation_pairs(side: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
    """Two held-out (low-resolution, high-resolution) pairs, centre crops of two other photos."""
    pairs = []
    for name in ("astronaut", "immunohistochemistry"):
        hr = _photo(name)
        top, left = (hr.shape[0] - 2 * side) // 2, (hr.shape[1] - 2 * side) // 2
        hr = hr[top:top + 2 * side, left:left + 2 * side]
        pairs.append((downscale(hr[None]).numpy()[0], hr))
    return pairs


def downscale(hr):
    """Bicubic (antialiased) x2 downscaling of a batch."""
    h, w = hr.shape[1] // SCALE, hr.shape[2] // SCALE
    return tf.clip_by_value(tf.image.resize(hr, (h, w), method="bicubic", antialias=True), 0.0, 1.0)


def dataset(patch: int, batch: int, seed: int = 0) -> tf.data.Dataset:
    """Endless batches of (low-resolution patch, high-resolution patch), random crops of the training photos."""
    images = training_photos()
    rng = np.random.default_rng(seed)
    side = patch * SCALE

    def crops():
        while True:
            image = images[rng.integers(len(images))]
            top, left = rng.integers(image.shape[0] - side), rng.integers(image.shape[1] - side)
            yield image[top:top + side, left:left + side]

    hr = tf.data.Dataset.from_generator(crops, output_signature=tf.TensorSpec((side, side, 3), tf.float32))
    return hr.batch(batch, drop_remainder=True).map(lambda b: (downscale(b), b)).prefetch(2)


def l1_and_gradient_loss(y, p):
    """L1 plus an image-gradient term (sharper edges than L1 alone)."""
    def dy(t):
        return t[:, 1:] - t[:, :-1]

    def dx(t):
        return t[:, :, 1:] - t[:, :, :-1]

    return (tf.reduce_mean(tf.abs(y - p)) + 0.5 * tf.reduce_mean(tf.abs(dy(y) - dy(p)))
            + 0.5 * tf.reduce_mean(tf.abs(dx(y) - dx(p))))


def arguments(doc: str) -> argparse.ArgumentParser:
    """The examples' shared options: the output folder, the network's widths, the data and the pruning budget."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--patch", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--pretrain", type=int, default=300, help="steps of training before pruning")
    parser.add_argument("--target-mac", type=float, default=0.7)
    parser.add_argument("--steps-per-check", type=int, default=100)
    parser.add_argument("--max-iterations", type=int, default=6)
    return parser
