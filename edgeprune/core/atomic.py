"""Atomic file output: write to a temporary file beside the target, then rename it into place.

A failure (or a kill) mid-write never leaves a half-written file under the target's name.
"""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".partial"):
    """Yields a temporary path to write; on success it replaces ``path`` with normal permissions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json_atomic(path: str | os.PathLike, data) -> Path:
    """``data`` as indented JSON at ``path``, written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
    return Path(path)


@contextlib.contextmanager
def staged_files(out_dir: str | os.PathLike, names):
    """Yields a staging folder inside ``out_dir``; when the block succeeds, moves every one of ``names`` from it into
    ``out_dir``, so a set of output files appears together or not at all. The staging folder is always removed."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".edgeprune-", dir=out_dir))
    try:
        yield stage
        for name in names:
            os.replace(stage / name, out_dir / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
