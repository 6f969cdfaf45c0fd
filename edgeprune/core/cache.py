"""edgeprune's cache folder (``$EDGEPRUNE_CACHE_DIR``, default ``~/.cache/edgeprune``) and content keys for what is
kept there: the host's latency profiles (``latency/``) and the equal-budget controls of prune runs (``controls/``).

A key is the SHA-256 of what decides a cached result, so a result is reused only for the very same inputs: arrays
(model weights, training and validation images) by their bytes, settings by their JSON.
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np

CACHE_ENV = "EDGEPRUNE_CACHE_DIR"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "edgeprune")


def content_key(*parts) -> str:
    """16 hex digits of the SHA-256 over ``parts``: numpy arrays (shape, dtype and bytes), lists/tuples of them, or
    JSON-serialisable values."""
    digest = hashlib.sha256()

    def add(part):
        if isinstance(part, np.ndarray):
            digest.update(f"array{part.shape}{part.dtype}".encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, (list, tuple)) and any(isinstance(p, np.ndarray) for p in part):
            digest.update(f"seq{len(part)}".encode())
            for p in part:
                add(p)
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())

    for part in parts:
        add(part)
    return digest.hexdigest()[:16]
