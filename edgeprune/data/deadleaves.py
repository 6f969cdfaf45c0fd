"""Dead-leaves images: a generated stand-in for natural photographs, used as built-in training data.

The dead-leaves model (Matheron; Lee, Mumford and Huang 2001) stacks opaque shapes whose radii follow a power law
``p(r) ~ r^-3`` between ``r_min`` and ``r_max``; the result has the scale invariance, occlusion edges and
flat regions of natural images. As in "Synthetic images as a regularity prior for image restoration neural networks"
(Achddou, Gousseau, Ladjal 2021), shapes get random colours (luminance skewed dark, modest chroma, as in photos),
a mild texture, and the image a random defocus blur.
Shapes are placed front to back and only uncovered pixels are painted, so generation stops once the image is covered.
"""

import numpy as np
from PIL import Image, ImageFilter


def _radius(rng, r_min: float, r_max: float) -> float:
    """One sample of p(r) ~ r^-3 on [r_min, r_max] by inverting its distribution function."""
    u = rng.random()
    return 1.0 / np.sqrt(1.0 / r_min ** 2 - u * (1.0 / r_min ** 2 - 1.0 / r_max ** 2))


def dead_leaves(size: int | tuple[int, int], rng: np.random.Generator, r_min: float = 1.5, r_max: float | None = None,
                texture: float = 0.04, max_blur: float = 1.2, max_shapes: int = 20000) -> np.ndarray:
    """One RGB dead-leaves image, float32 in [0, 1], shape (H, W, 3)."""
    h, w = (size, size) if isinstance(size, int) else size
    r_max = r_max or 0.5 * max(h, w)
    image = np.zeros((h, w, 3), np.float32)
    uncovered = np.ones((h, w), bool)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(max_shapes):
        r = _radius(rng, r_min, r_max)
        cy, cx = rng.uniform(-r, h + r), rng.uniform(-r, w + r)
        y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, h)
        x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, w)
        if y0 >= y1 or x0 >= x1:
            continue
        sy, sx = yy[y0:y1, x0:x1], xx[y0:y1, x0:x1]
        if rng.random() < 0.7:
            inside = (sy - cy) ** 2 + (sx - cx) ** 2 <= r * r
        else:  # a rotated rectangle
            a = rng.uniform(0, np.pi)
            u = (sx - cx) * np.cos(a) + (sy - cy) * np.sin(a)
            v = -(sx - cx) * np.sin(a) + (sy - cy) * np.cos(a)
            inside = (np.abs(u) <= r) & (np.abs(v) <= r * rng.uniform(0.3, 1.0))
        paint = inside & uncovered[y0:y1, x0:x1]
        if not paint.any():
            continue
        # natural-image-like colours: luminance skewed dark, modest chroma
        color = np.clip(rng.beta(1.6, 2.2) + rng.normal(0.0, 0.12, 3), 0.0, 1.0).astype(np.float32)
        region = image[y0:y1, x0:x1]
        region[paint] = color + texture * rng.standard_normal((int(paint.sum()), 3)).astype(np.float32)
        uncovered[y0:y1, x0:x1] &= ~paint
        if not uncovered.any():
            break
    image = np.clip(image, 0.0, 1.0)
    sigma = rng.uniform(0.0, max_blur)
    if sigma > 0.05:
        pil = Image.fromarray((image * 255 + 0.5).astype(np.uint8)).filter(ImageFilter.GaussianBlur(sigma))
        image = np.asarray(pil, np.float32) / 255.0
    return image
