"""``edgeprune import``: a checkpoint of another framework in, a verified tf_keras model and its record out.

The order is the guarantee: read and check the checkpoint, build our architecture with its weights, run the original
network in its own framework and ours on a real photo (:mod:`verify`, at most 1e-5 relative difference), save the
model, load the saved file back with ``safe_mode=True`` and check it reproduces the in-memory model exactly, and
only then move the model and its record (``MODEL.import.json``) into place together. Any failure writes nothing.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeprune.core.atomic import staged_files, write_json_atomic
from edgeprune.core.errors import ImportVerificationError, InvalidArgumentError
from edgeprune.core.modelio import load_model, save_model
from keras_models.shipped import file_sha256

RECORD_FORMAT = "edgeprune-import"


@dataclass(frozen=True)
class Importer:
    """One importable architecture: what it reads, and the module that converts it (imported when used, so torch
    and TensorFlow load only for the format that needs them)."""

    architecture: str
    reads: str
    module: str

    def converter(self):
        import importlib

        return importlib.import_module(self.module)


IMPORTERS = {i.architecture: i for i in (
    Importer("edsr", "an EDSR-PyTorch state dict (.pt/.pth through torch's weights-only loading, or .safetensors)",
             "edgeprune.checkpoints.edsr_torch"),
    Importer("sid", "the original Learning-to-See-in-the-Dark TF1 checkpoint (prefix, .index or folder)",
             "edgeprune.checkpoints.sid_tf1"),
)}


def record_path(out) -> Path:
    """Where the record of an import to ``out`` (a .keras path) is written: ``MODEL.import.json`` beside it."""
    out = Path(out)
    return out.with_name(out.stem + ".import.json")


def _check_out(out) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".keras":
        raise InvalidArgumentError(f"--out '{out}' must end in .keras")
    if out.is_dir():
        raise InvalidArgumentError(f"--out '{out}' is a directory: give a file name ending in .keras")
    if out.parent.exists() and not out.parent.is_dir():
        raise InvalidArgumentError(f"--out '{out}': '{out.parent}' is not a directory")
    return out


def _saved_reproduces(model, saved_path: Path, x: np.ndarray) -> None:
    again = load_model(saved_path)
    if not np.array_equal(model(x, training=False).numpy(), again(x, training=False).numpy()):
        raise ImportVerificationError(f"the saved model '{saved_path.name}' does not reproduce the converted one "
                                      f"exactly after loading; nothing was written")


def import_checkpoint(architecture: str, source, out, **options) -> dict:
    """Imports ``source`` as ``architecture`` (a key of :data:`IMPORTERS`) into ``out`` (.keras) and returns the
    record written beside it: source files and SHA-256, the configuration, the conversions, the numeric check.
    ``options`` go to the format's ``convert`` (e.g. ``scale``, ``res_scale``, ``rgb_range`` for EDSR)."""
    from edgeprune.checkpoints.verify import verify
    from edgeprune.data.photos import photo_input

    if architecture not in IMPORTERS:
        raise InvalidArgumentError(f"cannot import {architecture!r}: edgeprune imports {', '.join(IMPORTERS)}")
    out = _check_out(out)
    module = IMPORTERS[architecture].converter()
    files = module.source_files(source)
    converted = module.convert(source, **options)
    try:
        check = verify(converted)
    finally:
        converted.release()
    record = {
        "format": RECORD_FORMAT, "version": 1, "architecture": architecture, "model": out.name,
        "source": str(source),
        "files": [{"path": str(f), "bytes": f.stat().st_size, "sha256": file_sha256(f)} for f in files],
        "config": converted.config, "conversions": converted.conversions, "ignored": converted.ignored,
        "verification": check,
    }
    records = record_path(out)
    with staged_files(out.parent, [out.name, records.name]) as stage:
        save_model(converted.model, stage / out.name)
        x, _ = photo_input(*converted.verify_size, int(converted.model.input_shape[-1]))
        _saved_reproduces(converted.model, stage / out.name, x)
        write_json_atomic(stage / records.name, record)
    return record
