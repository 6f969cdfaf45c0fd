"""Loading and saving models, and resolving what the user names on the command line.

A model is either a registered reference name (``edsr``, ``sid``, ...: built with random weights, for cost and
speed work) or a path to a ``.keras`` (or legacy ``.h5``) file saved by tf_keras. Both formats load in Keras' safe
mode: a Lambda layer holding Python bytecode is refused, not run (tf_keras passes ``safe_mode`` only to its
``.keras`` loader, so the legacy ``.h5`` loader runs inside Keras' safe-mode scope). Saving is atomic (no
half-written file on failure).
"""

import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from edgeprune.core.atomic import atomic_path, settle
from edgeprune.core.runtime import keras
from edgeprune.core.errors import InvalidArgumentError, ModelLoadError, UnsupportedModelError
from edgeprune.core.text import one_line

MODEL_SUFFIXES = (".keras", ".h5")


# What tf_keras and h5py (whose errors are OSError or KeyError) raise for a file that is not a loadable model: a bad
# config, a missing or misshapen weight, a truncated archive. Anything else is a fault of the program, not of the file.
_LOAD_ERRORS = (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)


def _safe_mode_scope():
    """Keras' safe-mode scope: a Lambda layer holding Python bytecode raises ValueError instead of being loaded,
    whichever loader tf_keras picks (its legacy HDF5 loader takes no ``safe_mode`` argument, only the scope)."""
    from tf_keras.src.saving.serialization_lib import SafeModeScope

    return SafeModeScope(True)


@dataclass(frozen=True)
class ResolvedModel:
    model: keras.Model
    name: str
    default_input_size: tuple[int, int] | None = None
    input_multiple: int = 1


def _keras_version_of_archive(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("metadata.json")).get("keras_version")
    except (KeyError, ValueError, zipfile.BadZipFile, OSError):
        return None


def load_model(path: str | os.PathLike) -> keras.Model:
    """Safely loads a functional tf_keras model, or raises ModelLoadError saying what is wrong."""
    import keras_models  # noqa: F401  registers our custom layers for deserialisation

    path = Path(path)
    settle(path.parent)  # a set of outputs that a kill left half moved into this folder is completed first
    if not path.exists():
        raise ModelLoadError(f"model file '{path}' does not exist")
    if path.is_dir():
        raise ModelLoadError(f"'{path}' is a directory: give a .keras file saved by tf_keras")
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelLoadError(f"'{path}' is not a model file: expected a .keras (or .h5) file saved by tf_keras")
    if path.suffix.lower() == ".keras":
        if not zipfile.is_zipfile(path):
            raise ModelLoadError(f"'{path}' is not a valid .keras archive (not a zip file): is it truncated?")
        version = _keras_version_of_archive(path)
        if version and not version.startswith("2."):
            raise ModelLoadError(f"'{path}' was saved by Keras {version}; edgeprune uses tf_keras (Keras 2): "
                                 "re-save it with tf_keras")
    try:
        with _safe_mode_scope():
            model = keras.models.load_model(path, custom_objects=keras_models.CUSTOM_OBJECTS, compile=False,
                                            safe_mode=True)
    except _LOAD_ERRORS as exc:  # Keras raises several types for a bad file; all mean the same to a user
        if "deserialization of a Lambda layer" in str(exc):
            raise ModelLoadError(f"cannot load '{path}': it holds a Lambda layer with Python code, which edgeprune "
                                 "never runs (it could do anything); replace the Lambda with a built-in Keras layer "
                                 "and save the model again") from exc
        reason = one_line(str(exc), 300) or type(exc).__name__
        raise ModelLoadError(f"cannot load '{path}' as a tf_keras model: {reason}") from exc
    if not getattr(model, "_is_graph_network", False):
        raise UnsupportedModelError(f"'{path}' holds a subclassed model; edgeprune needs a functional model")
    return model


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """Saves to ``path`` (.keras) atomically: a failure leaves no file behind."""
    path = Path(path)
    if path.suffix.lower() != ".keras":
        raise ModelLoadError(f"output '{path}' must end in .keras")
    with atomic_path(path, suffix=".partial.keras") as tmp:  # tf_keras picks the format from the suffix
        model.save(tmp, save_format="keras")
    return path


def rebuilt(model: keras.Model, edit_config=None, weights=None) -> keras.Model:
    """A new functional model from ``model``'s config (changed in place by ``edit_config(config)`` first, when
    given), every layer with weights getting ``weights(layer)``, or by default a copy of that layer's weights.
    ``model`` is not changed."""
    import keras_models

    config = model.get_config()
    if edit_config is not None:
        edit_config(config)
    copy = model.__class__.from_config(config, custom_objects=keras_models.CUSTOM_OBJECTS)
    for layer in model.layers:
        if layer.weights:
            copy.get_layer(layer.name).set_weights(weights(layer) if weights else layer.get_weights())
    return copy


def build_reference(name: str, **build_kwargs) -> keras.Model:
    """:func:`keras_models.build_reference`, with a bad argument reported as our InvalidArgumentError (one line)."""
    import keras_models

    try:
        return keras_models.build_reference(name, **build_kwargs)
    except keras_models.ModelConfigError as exc:
        raise InvalidArgumentError(str(exc)) from exc


def resolve_model(spec, **build_kwargs) -> ResolvedModel:
    """A keras.Model, a reference name or a path, as a :class:`ResolvedModel`."""
    from keras_models import REFERENCE_MODELS

    if isinstance(spec, keras.Model):
        return ResolvedModel(spec, spec.name)
    text = str(spec)
    if text in REFERENCE_MODELS:
        ref = REFERENCE_MODELS[text]
        return ResolvedModel(build_reference(text, **build_kwargs), text, ref.default_input_size, ref.input_multiple)
    path = Path(text)
    if not path.exists() and path.suffix.lower() not in MODEL_SUFFIXES and os.sep not in text:
        raise ModelLoadError(f"unknown model '{text}': use one of {', '.join(REFERENCE_MODELS)} or a path to a "
                             ".keras file")
    return ResolvedModel(load_model(path), text)


def load_shipped(name: str, weights_dir=None):
    """The trained weights shipped for reference model ``name`` (``keras_models/weights/``), loaded after their
    SHA-256 is checked against the manifest: ``(model, keras_models.shipped.ShippedWeights)``. A missing, damaged or
    replaced file raises ModelLoadError (one line, saying to reinstall)."""
    from keras_models.shipped import ShippedWeightsError, verified_weights

    try:
        shipped = verified_weights(name, weights_dir)
    except ShippedWeightsError as exc:
        raise ModelLoadError(str(exc)) from None
    return load_model(shipped.path), shipped
