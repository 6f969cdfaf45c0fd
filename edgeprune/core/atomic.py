"""Atomic file output: one file through a temporary file renamed into place, a set of files through a staging folder
committed before any of them is moved.

A failure (or a kill) mid-write never leaves a half-written file under the target's name. For a set of files
(:func:`staged_files`) the commit point is one rename inside the staging folder: before it, the old set stays; after
it, the new set is complete on disk, and a kill while the files are being moved leaves the staging folder behind,
which the next :func:`settle` of that folder (every writer calls it, and so do the readers of models and plans)
finishes. Data and folder entries are flushed to the disk (fsync) before each rename that publishes them.
"""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

STAGE_PREFIX = ".edgeprune-stage-"
COMMIT_FILE = "COMMITTED"


def _fsync(path: str | os.PathLike) -> None:
    """Flushes a file's data, or a folder's entries, to the disk."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if os.path.isdir(path) else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json_atomic(path: str | os.PathLike, data) -> Path:
    """``data`` as indented JSON at ``path``, written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
    return Path(path)


def _commit(stage: Path, names, remove=()) -> None:
    """The commit point of a staged set: every file flushed, then the list of what to move (and remove) renamed into
    the staging folder as one file."""
    missing = [n for n in names if not (stage / n).is_file()]
    if missing:
        raise FileNotFoundError(f"staged output {missing[0]} was not written")
    for name in names:
        _fsync(stage / name)
    record = stage / f".{COMMIT_FILE}.partial"
    record.write_text(json.dumps({"move": list(names), "remove": list(remove)}))
    _fsync(record)
    os.replace(record, stage / COMMIT_FILE)
    _fsync(stage)
    _fsync(stage.parent)


def _roll_forward(stage: Path, out_dir: Path) -> list[str]:
    """Moves a committed stage's files into ``out_dir``, removes what it names for removal, then the stage."""
    record = json.loads((stage / COMMIT_FILE).read_text())
    for name in record["move"]:
        try:
            os.replace(stage / name, out_dir / name)
        except FileNotFoundError:  # moved already (by the writer before a kill, or by another reader)
            if not (out_dir / name).exists():
                raise
    for name in record["remove"]:
        (out_dir / name).unlink(missing_ok=True)
    _fsync(out_dir)
    (stage / COMMIT_FILE).unlink(missing_ok=True)
    shutil.rmtree(stage, ignore_errors=True)
    return list(record["move"])


def _writer_alive(stage: Path) -> bool:
    pid = stage.name[len(STAGE_PREFIX):].split("-", 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def settle(folder: str | os.PathLike) -> list[str]:
    """Finishes what a kill interrupted in ``folder``: a committed set of files is moved into place, an uncommitted
    stage whose writer is gone is removed. Returns the names of the sets completed (empty when there was nothing)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    completed = []
    for stage in sorted(folder.glob(f"{STAGE_PREFIX}*")):
        if not stage.is_dir():
            continue
        if (stage / COMMIT_FILE).is_file():
            completed += _roll_forward(stage, folder)
        elif not _writer_alive(stage):
            shutil.rmtree(stage, ignore_errors=True)
    return completed


@contextlib.contextmanager
def staged_files(out_dir: str | os.PathLike, names, remove=()):
    """Yields a staging folder inside ``out_dir``; when the block succeeds, every one of ``names`` is moved from it
    into ``out_dir`` (and each of ``remove`` is deleted there) as one commit, so the set of output files appears
    together or not at all, even across a kill (see :func:`settle`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settle(out_dir)
    stage = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=out_dir))
    committed = False
    try:
        yield stage
        _commit(stage, names, remove)
        committed = True
        _roll_forward(stage, out_dir)
    finally:
        if not committed:
            shutil.rmtree(stage, ignore_errors=True)
