"""Trained weights shipped with the package: ``keras_models/weights/NAME.keras`` and its manifest ``NAME.json``.

A manifest records what the weights are and how they were made: the reference configuration and its widths, the
training data (each file's SHA-256), the recipe (steps, patch, batch, learning rate), the hours and the CPU it took,
the library versions, the validation curve, and the quality on the eight held-out photos next to bicubic upscaling
(EDSR) and the quick preset's briefly trained baseline. :func:`verified_weights` checks the weight file's SHA-256
against the manifest before anyone loads it, so a damaged or replaced file is refused, never pruned. ``tools/
train_reference.py --ship`` writes both files.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from keras_models.errors import ModelConfigError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
# centre crops (JPEG) of the photos the shipped models learnt from: what pruning them fine-tunes on by default, so
# the fine-tuning sees the images the weights were trained for (PHOTOS_DIR/manifest.json: each crop's source file)
PHOTOS_DIR = WEIGHTS_DIR / "photos"
MANIFEST_FORMAT = 1
# reference name -> the stem of its files in WEIGHTS_DIR
SHIPPED = {"edsr": "edsr_x2", "sid": "sid"}
MANIFEST_FIELDS = ("format", "model", "file", "sha256", "architecture", "data", "recipe", "training", "quality")


class ShippedWeightsError(ModelConfigError):
    """Shipped weights are missing, their manifest is unreadable, or the file does not match the manifest."""


@dataclass(frozen=True)
class ShippedWeights:
    """One verified weight file and its manifest (the dict written by ``tools/train_reference.py --ship``)."""

    name: str
    path: Path
    manifest: dict

    @property
    def sha256(self) -> str:
        return self.manifest["sha256"]

    def summary(self) -> str:
        """One line for a report: which weights, how trained, how good."""
        m, quality = self.manifest, self.manifest["quality"]
        steps, hours = m["recipe"]["steps"], m["training"]["hours"]
        photos = len(m["data"]["files"])
        return (f"shipped {m['architecture']['description']} weights ({self.path.name}, SHA-256 {self.sha256[:12]}): "
                f"{steps} steps on {photos} photos, {hours:.1f} h; PSNR {quality['psnr']:.2f} dB on the held-out "
                "photos")


def shipped_names() -> list[str]:
    """Reference names that have shipped weights."""
    return list(SHIPPED)


def has_shipped(name: str) -> bool:
    return name in SHIPPED


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_weights(name: str, weights_dir: Path | None = None) -> ShippedWeights:
    """The shipped weights of reference model ``name``, after checking the file's SHA-256 against its manifest.

    Raises :class:`ShippedWeightsError` (one line saying what to do) when ``name`` has none, a file is missing, the
    manifest is unreadable or belongs to another model, or the digest differs."""
    if name not in SHIPPED:
        raise ShippedWeightsError(f"no shipped weights for {name!r} (there are for: {', '.join(SHIPPED)}): train a "
                                  "baseline with --baseline train or give your own --baseline FILE.keras")
    folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    path, manifest_path = folder / f"{SHIPPED[name]}.keras", folder / f"{SHIPPED[name]}.json"
    reinstall = "reinstall edgeprune (or check out keras_models/weights/ again)"
    for p in (path, manifest_path):
        if not p.is_file():
            raise ShippedWeightsError(f"the shipped weights file '{p}' is missing: {reinstall}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShippedWeightsError(f"the manifest '{manifest_path}' is unreadable ({exc}): {reinstall}") from None
    missing = [k for k in MANIFEST_FIELDS if not isinstance(manifest, dict) or k not in manifest]
    if missing:
        raise ShippedWeightsError(f"the manifest '{manifest_path}' lacks {', '.join(missing)}: {reinstall}")
    if manifest["format"] != MANIFEST_FORMAT or manifest["model"] != name or manifest["file"] != path.name:
        raise ShippedWeightsError(f"the manifest '{manifest_path}' is not format {MANIFEST_FORMAT} for {name!r} and "
                                  f"'{path.name}': {reinstall}")
    actual = file_sha256(path)
    if actual != manifest["sha256"]:
        raise ShippedWeightsError(f"'{path}' does not match its manifest (SHA-256 {actual[:16]}..., the manifest "
                                  f"says {str(manifest['sha256'])[:16]}...): it was modified or damaged; {reinstall}")
    return ShippedWeights(name, path, manifest)
