import json
import warnings
import zipfile

import numpy as np
import pytest

from edgeprune.core.runtime import keras
from edgeprune.core.errors import ModelLoadError
from edgeprune.core.modelio import load_model, resolve_model, save_model
from keras_models import build_edsr


def test_missing_directory_and_wrong_suffix(tmp_path):
    with pytest.raises(ModelLoadError, match="model file '.*nope.keras' does not exist"):
        load_model(tmp_path / "nope.keras")
    with pytest.raises(ModelLoadError, match="is a directory: give a .keras file"):
        load_model(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ModelLoadError, match="is not a model file: expected a .keras"):
        load_model(text)


def test_not_a_zip_truncated_and_garbage_archives(tmp_path):
    fake = tmp_path / "fake.keras"
    fake.write_text("this is not a model")
    with pytest.raises(ModelLoadError, match=r"not a valid .keras archive \(not a zip file\)"):
        load_model(fake)
    good = save_model(build_edsr(num_blocks=1, num_features=2), tmp_path / "good.keras")
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="truncated|cannot load"):
        load_model(truncated)
    garbage = tmp_path / "garbage.keras"
    with zipfile.ZipFile(garbage, "w") as z:
        z.writestr("config.json", "{not json")
    with pytest.raises(ModelLoadError, match="cannot load '.*garbage.keras' as a tf_keras model"):
        load_model(garbage)


def test_keras3_archive_is_named_as_such(tmp_path):
    k3 = tmp_path / "k3.keras"
    with zipfile.ZipFile(k3, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", "{}")
    with pytest.raises(ModelLoadError, match="saved by Keras 3.15.1; edgeprune uses tf_keras"):
        load_model(k3)


def test_lambda_layers_are_refused_by_safe_loading(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(ModelLoadError) as info:
        load_model(path)
    assert str(info.value) == LAMBDA_REFUSED.format(path=path)


def test_save_is_atomic_and_needs_the_keras_suffix(tmp_path, monkeypatch):
    model = build_edsr(num_blocks=1, num_features=2)
    with pytest.raises(ModelLoadError, match="must end in .keras"):
        save_model(model, tmp_path / "m.h5")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(model), "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, tmp_path / "out" / "m.keras")
    assert list((tmp_path / "out").iterdir()) == []


def test_resolve_reference_path_and_unknown_names(tmp_path):
    ref = resolve_model("sid")
    assert (ref.name, ref.default_input_size, ref.input_multiple) == ("sid", (1424, 2128), 16)
    path = save_model(build_edsr(num_blocks=1, num_features=2), tmp_path / "m.keras")
    loaded = resolve_model(str(path))
    assert loaded.name == str(path) and loaded.default_input_size is None
    x = np.zeros((1, 4, 4, 3), np.float32)
    assert loaded.model(x).shape == (1, 8, 8, 3)
    with pytest.raises(ModelLoadError, match="unknown model 'edsr2': use one of edsr, edsr_x3, edsr_x4, sid"):
        resolve_model("edsr2")


def test_a_bad_builder_argument_is_our_one_line_error():
    from edgeprune.core.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match=r"^scale 5 is not supported\. Supported scales: 2\^n and 3$"):
        resolve_model("edsr", scale=5)


LAMBDA_REFUSED = ("cannot load '{path}': it holds a Lambda layer with Python code, which edgeprune never runs (it "
                  "could do anything); replace the Lambda with a built-in Keras layer and save the model again")


def _lambda_h5(tmp_path):
    """A legacy .h5 model holding a Conv2D and a Lambda whose function writes ``marker`` when the layer runs."""
    marker = tmp_path / "written-by-the-lambda"
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.Lambda(lambda t, p=str(marker): (open(p, "w").close(), t)[1])(x)
    path = tmp_path / "lam.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tf_keras' note that HDF5 is a legacy format: that is the point
        keras.Model(inputs, x).save(path, save_format="h5")
    marker.unlink()  # building the model above ran the function once
    return path, marker


def test_a_legacy_h5_lambda_is_refused_without_running_its_code(tmp_path):
    path, marker = _lambda_h5(tmp_path)
    with pytest.raises(ModelLoadError) as info:
        load_model(path)
    assert str(info.value) == LAMBDA_REFUSED.format(path=path)
    assert not marker.exists()


@pytest.mark.parametrize("command", [["analyze"], ["export", "--tflite"]])
def test_the_cli_refuses_a_legacy_h5_lambda_in_one_line(tmp_path, command):
    from click.testing import CliRunner

    from edgeprune.cli import cli

    path, marker = _lambda_h5(tmp_path)
    out = ["--out", str(tmp_path / "x.tflite")] if command[0] == "export" else []
    result = CliRunner().invoke(cli, [*command, str(path), *out], prog_name="edgeprune")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines == ["Error: " + LAMBDA_REFUSED.format(path=path)]
    assert not marker.exists() and not (tmp_path / "x.tflite").exists()


def test_a_fault_of_the_program_is_not_reported_as_a_bad_file(tmp_path, monkeypatch):
    path = save_model(build_edsr(num_blocks=1, num_features=2), tmp_path / "m.keras")

    def broken(*args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'layers'")

    monkeypatch.setattr(keras.models, "load_model", broken)
    with pytest.raises(AttributeError, match="has no attribute 'layers'"):
        load_model(path)
