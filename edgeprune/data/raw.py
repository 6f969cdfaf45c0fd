"""Camera raw through rawpy (LibRaw), and the SID Sony dataset layout.

A raw file becomes SID's input the way the paper's code does it: subtract the black level, divide by
``white - black``, pack the Bayer mosaic into 4 channels (R, G1, G2, B, whatever the sensor's CFA phase), multiply by
the exposure ratio (capped at 300) and clip to 1. The long-exposure target is rendered by LibRaw with the camera's
white balance, no auto-brightening, 16 bits, as in SID.

SID Sony layout: ``DIR/short/*.ARW`` and ``DIR/long/*.ARW`` named ``<scene>_<index>_<exposure>s.ARW`` (for example
``00001_00_0.04s.ARW`` and ``00001_00_10s.ARW``); a short exposure pairs with the long one of its scene, and the
ratio is their exposure quotient. Scenes whose id starts with 0 are for training and with 2 for validation (the
paper's split; 1 is its test set, unused here).
"""

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeprune.core.errors import InvalidArgumentError

log = logging.getLogger(__name__)
MAX_RATIO = 300.0
_SID_NAME = re.compile(r"^(?P<scene>\d{5})_(?P<index>\d{2})_(?P<exposure>[\d.]+)s\.\w+$")


@dataclass(frozen=True)
class RawImage:
    mosaic: np.ndarray  # H x W float32 in [0, 1] after black/white levels
    channel_at: tuple  # colour index ("R", "G", "B") at (0,0), (0,1), (1,0), (1,1)


def read_raw(path) -> RawImage:
    """The normalised Bayer mosaic of a raw file (2x2 CFA: RGGB, BGGR, GRBG or GBRG)."""
    import rawpy

    try:
        with rawpy.imread(str(path)) as raw:
            mosaic = raw.raw_image_visible.astype(np.float32)
            black = np.array(raw.black_level_per_channel, np.float32)
            pattern = raw.raw_pattern
            desc = raw.color_desc.decode()
            white = float(raw.white_level)
    except (rawpy.LibRawError, OSError) as exc:
        raise InvalidArgumentError(f"'{path}' is not a raw file LibRaw can read ({type(exc).__name__})") from exc
    if pattern is None or pattern.shape != (2, 2):
        raise InvalidArgumentError(f"'{path}' does not have a 2x2 Bayer mosaic (X-Trans and others are not supported)")
    h, w = (mosaic.shape[0] // 2) * 2, (mosaic.shape[1] // 2) * 2
    mosaic = mosaic[:h, :w]
    black_map = black[pattern]  # the black level of each CFA position
    tiled = np.tile(black_map, (h // 2, w // 2))
    normalised = np.clip((mosaic - tiled) / (white - black_map.max()), 0.0, 1.0)
    channel_at = tuple(desc[pattern[i, j]] for i in (0, 1) for j in (0, 1))
    if sorted(channel_at) != ["B", "G", "G", "R"]:
        raise InvalidArgumentError(f"'{path}' has an unsupported colour filter {channel_at}")
    return RawImage(normalised.astype(np.float32), channel_at)


def pack(raw: RawImage) -> np.ndarray:
    """H/2 x W/2 x 4 in the order R, G1, G2, B (G1 shares R's row)."""
    planes = {(i, j): raw.mosaic[i::2, j::2] for i in (0, 1) for j in (0, 1)}
    positions = [(i, j) for i in (0, 1) for j in (0, 1)]
    r = next(p for p, c in zip(positions, raw.channel_at) if c == "R")
    b = next(p for p, c in zip(positions, raw.channel_at) if c == "B")
    g1 = (r[0], 1 - r[1])  # the green on the red row
    g2 = (b[0], 1 - b[1])
    return np.stack([planes[r], planes[g1], planes[g2], planes[b]], axis=-1)


def sid_input(raw: RawImage, ratio: float) -> np.ndarray:
    """SID's network input: packed, times the exposure ratio (at most 300), clipped to 1."""
    return np.minimum(pack(raw) * min(float(ratio), MAX_RATIO), 1.0).astype(np.float32)


def render_long(path) -> np.ndarray:
    """The long-exposure target: LibRaw's rendering with camera white balance, float32 sRGB in [0, 1]."""
    import rawpy

    try:
        with rawpy.imread(str(path)) as raw:
            rgb = raw.postprocess(use_camera_wb=True, half_size=False, no_auto_bright=True, output_bps=16)
    except (rawpy.LibRawError, OSError) as exc:
        raise InvalidArgumentError(f"'{path}' is not a raw file LibRaw can render ({type(exc).__name__})") from exc
    return rgb.astype(np.float32) / 65535.0


@dataclass(frozen=True)
class SidPair:
    short: Path
    long: Path
    ratio: float
    scene: str


def sid_pairs(root) -> tuple[list[SidPair], list[SidPair]]:
    """(training pairs, validation pairs) of a SID Sony folder."""
    root = Path(root)
    short_dir, long_dir = root / "short", root / "long"
    if not short_dir.is_dir() or not long_dir.is_dir():
        raise InvalidArgumentError(f"'{root}' is not in the SID Sony layout: it needs short/ and long/ folders of raw "
                                   "files named like 00001_00_0.04s.ARW")
    longs = {}
    for p in sorted(long_dir.iterdir()):
        m = _SID_NAME.match(p.name)
        if m:
            longs[m["scene"]] = (p, float(m["exposure"]))
    train, val, unmatched = [], [], 0
    for p in sorted(short_dir.iterdir()):
        m = _SID_NAME.match(p.name)
        if not m or m["scene"] not in longs:
            unmatched += 1
            continue
        long_path, long_exposure = longs[m["scene"]]
        pair = SidPair(p, long_path, min(long_exposure / float(m["exposure"]), MAX_RATIO), m["scene"])
        if m["scene"].startswith("0"):
            train.append(pair)
        elif m["scene"].startswith("2"):
            val.append(pair)
    if unmatched:
        log.warning("%d short-exposure files in %s have no long exposure of their scene and are skipped", unmatched,
                    short_dir)
    if not train or not val:
        raise InvalidArgumentError(f"'{root}' needs training scenes (ids 0xxxx) and validation scenes (ids 2xxxx); "
                                   f"found {len(train)} and {len(val)} pairs")
    return train, val
