"""TFLite export: conversions verified against Keras and the cost model; broken conversions are caught."""

import json
import shutil

import numpy as np
import pytest

from edgeprune.core.runtime import keras, tf
from edgeprune.graph.cost import model_cost
from edgeprune.data.photos import builtin_photo_paths, photo_input
from edgeprune.core.errors import ExportError, InvalidArgumentError, ShapeError
from edgeprune.data.photos import fit_to, load_rgb
from edgeprune.data.unprocess import packed_raw
from edgeprune.deploy.export import (Tolerance, _calibration_samples, convert, export_tflite, fixed_shape_model,
                                     report_path, run_tflite, tensor_census, verify)
from edgeprune.core.modelio import save_model
from edgeprune.deploy.tflite_reader import TfliteGraph
from keras_models import build_edsr, build_sid
from test_surgery import tiny_zoo


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("calib")
    for p in builtin_photo_paths()[:3]:
        shutil.copy(p, d)
    (d / "broken.png").write_bytes(b"not an image")
    return d


@pytest.mark.parametrize("quantize", ["none", "fp16", "dynamic", "int8"])
def test_tiny_edsr_exports_and_verifies_in_every_mode(tmp_path, calib_dir, quantize):
    model = build_edsr(num_blocks=2, num_features=8)
    out = tmp_path / "m.tflite"
    result = export_tflite(model, out, (24, 16), quantize, calib_dir if quantize == "int8" else None)
    assert out.is_file() and json.loads(report_path(out).read_text())["passed"]
    assert result["input_shape"] == [1, 24, 16, 3] and result["ops"]["CONV_2D"] == 8
    assert result["census"]["conv_weights_tflite"] == model_cost(model, (24, 16)).totals.weights
    assert result["census"]["mac_tflite"] == model_cost(model, (24, 16)).totals.mac
    assert result["numeric"]["passed"] and result["numeric"]["input"].startswith("photo")
    if quantize == "int8":
        assert result["ops"]["QUANTIZE"] == 1 and result["ops"]["DEQUANTIZE"] == 1


def test_sid_and_every_conv_type_match_the_cost_model_exactly(tmp_path):
    result = export_tflite(build_sid(features=(4, 5, 6, 7, 8)), tmp_path / "sid.tflite", (32, 32))
    assert result["ops"]["TRANSPOSE_CONV"] == 4 and result["census"]["mismatches"] == []
    zoo = tiny_zoo()  # depthwise, separable (2 TFLite ops), transposed, dense, BN, PReLU
    result = export_tflite(zoo, tmp_path / "zoo.tflite")
    c = result["census"]
    assert c["passed"] and c["layers_checked"] == 7 and c["conv_ops"] == 8
    assert c["conv_weights_tflite"] == model_cost(zoo).totals.weights and c["mac_tflite"] == model_cost(zoo).totals.mac


def test_verification_catches_a_wrong_input_size():
    model = build_edsr(num_blocks=1, num_features=4)
    content = convert(fixed_shape_model(model, (32, 32)))
    small = fixed_shape_model(model, (16, 16))
    x, desc = photo_input(16, 16, 3)
    with pytest.raises(ExportError, match=r"TFLite model's input is \[1, 32, 32, 3\].*wrong input size"):
        verify(content, small, x, Tolerance.for_mode("none"), desc)
    census = tensor_census(TfliteGraph(content), model_cost(small))
    assert not census["passed"] and "head: input [1, 32, 32, 3] in TFLite, [1, 16, 16, 3] in the cost model" in \
        census["mismatches"]


def test_verification_catches_a_quantised_model_at_fp32_tolerance(tmp_path, calib_dir):
    model = build_edsr(num_blocks=1, num_features=4)
    with pytest.raises(ExportError, match=r"verification of the int8 export failed: PSNR .* < 80.0 dB"):
        export_tflite(model, tmp_path / "q.tflite", (16, 16), "int8", calib_dir, tolerance=Tolerance.for_mode("none"))
    assert list(tmp_path.iterdir()) == []


def test_census_catches_a_model_that_is_not_the_one_exported():
    content = convert(fixed_shape_model(build_edsr(num_blocks=1, num_features=4), (8, 8)))
    other = fixed_shape_model(build_edsr(num_blocks=1, num_features=5), (8, 8))
    census = tensor_census(TfliteGraph(content), model_cost(other))
    assert any(m.startswith("conv weights:") for m in census["mismatches"])
    assert any(m.startswith("MAC:") for m in census["mismatches"])


def test_census_counts_the_two_ops_the_layer_table_gives_a_separable_conv():
    inputs = keras.Input((8, 8, 3), batch_size=1)
    x = keras.layers.SeparableConv2D(6, 3, padding="same", name="sep")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(4, 1, name="pw")(x))
    census = tensor_census(TfliteGraph(convert(model)), model_cost(model))
    assert census["passed"], census["mismatches"]
    assert (census["conv_ops"], census["layers_checked"]) == (3, 2)


def test_flex_ops_are_detected():
    inputs = keras.Input((4, 4), batch_size=1)
    model = keras.Model(inputs, tf.linalg.det(inputs))  # no TFLite builtin: needs Select TF ops
    with pytest.raises(ExportError, match="TFLite conversion failed"):
        convert(model)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    graph = TfliteGraph(converter.convert())
    assert graph.flex_ops() == ["FlexMatrixDeterminant"]
    x = np.eye(4, dtype=np.float32)[None]
    with pytest.raises(ExportError, match=r"contains Flex \(Select TF\) ops \['FlexMatrixDeterminant'\]"):
        verify(converter.convert(), model, x, Tolerance.for_mode("none"), "eye")
    with pytest.raises(ExportError, match="LiteRT could not run the converted model: .*Select TensorFlow op") as info:
        run_tflite(converter.convert(), x)  # LiteRT's RuntimeError, as one line
    assert "\n" not in str(info.value)


def test_bad_inputs(tmp_path, calib_dir):
    model = build_edsr(num_blocks=1, num_features=4)
    with pytest.raises(InvalidArgumentError, match="int8 quantisation needs calibration data"):
        export_tflite(model, tmp_path / "a.tflite", (8, 8), "int8")
    with pytest.raises(InvalidArgumentError, match="must end in .tflite"):
        export_tflite(model, tmp_path / "a.keras", (8, 8))
    dynamic = save_model(model, tmp_path / "dyn.keras")
    with pytest.raises(ShapeError, match="dynamic: give --input-size"):
        export_tflite(str(dynamic), tmp_path / "a.tflite")
    with pytest.raises(ShapeError, match="fixed at 8x8; it cannot be exported at 9x9"):
        export_tflite(build_edsr(num_blocks=1, num_features=4, input_size=(8, 8)), tmp_path / "a.tflite", (9, 9))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidArgumentError, match="no usable calibration sample"):
        export_tflite(model, tmp_path / "a.tflite", (8, 8), "int8", empty)
    with pytest.raises(InvalidArgumentError, match="calibration data folder .* does not exist"):
        export_tflite(model, tmp_path / "a.tflite", (8, 8), "int8", tmp_path / "nope")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dyn.keras", "empty"]


def test_npy_calibration_for_any_channel_count(tmp_path):
    inputs = keras.Input((None, None, 5))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same")(inputs))
    d = tmp_path / "npy"
    d.mkdir()
    for i in range(3):
        np.save(d / f"{i}.npy", np.random.rand(10, 10, 5).astype(np.float32))
    result = export_tflite(model, tmp_path / "m.tflite", (8, 8), "int8", d)
    assert result["numeric"]["input"] == "random uniform [0, 1)" and result["passed"]


def test_raw_calibration_samples_undo_the_srgb_curve(calib_dir):
    samples = _calibration_samples(calib_dir, (1, 8, 12, 4))
    first = sorted(p for p in calib_dir.iterdir() if p.name != "broken.png")[0]
    assert len(samples) == 3
    np.testing.assert_array_equal(samples[0], packed_raw(fit_to(load_rgb(first), 16, 24))[None])


def test_the_tflite_and_its_report_appear_together_even_across_a_kill(tmp_path, monkeypatch):
    """A kill after the first of the two renames: the pair is committed, and the next reader or writer of the
    folder completes it; a failure before the commit leaves neither file."""
    import os

    from edgeprune.core import atomic

    model = build_edsr(num_blocks=1, num_features=4)
    out = tmp_path / "m.tflite"
    real, calls = os.replace, []

    def killed_on_the_second_publish(src, dst):
        if os.path.dirname(dst) == str(tmp_path):
            calls.append(dst)
            if len(calls) == 2:
                raise KeyboardInterrupt("killed")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", killed_on_the_second_publish)
    with pytest.raises(KeyboardInterrupt):
        export_tflite(model, out, (16, 16))
    monkeypatch.undo()
    assert sorted(atomic.settle(tmp_path)) == ["m.tflite", "m.tflite.json"]
    assert json.loads(report_path(out).read_text())["size_bytes"] == out.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite", "m.tflite.json"]


def test_a_fault_of_the_program_during_conversion_is_not_called_a_failed_conversion(monkeypatch):
    def broken(self):
        raise AttributeError("'NoneType' object has no attribute 'graph_def'")

    model = build_edsr(num_blocks=1, num_features=2)
    monkeypatch.setattr(type(tf.lite.TFLiteConverter.from_keras_model(model)), "convert", broken)
    with pytest.raises(AttributeError, match="no attribute 'graph_def'"):
        convert(model)


def test_an_int8_model_with_integer_input_and_output_has_no_conversions():
    inputs = keras.Input((8, 8, 4), batch_size=1)
    model = keras.Model(inputs, keras.layers.Conv2D(8, 3, padding="same")(inputs))
    samples = [np.random.default_rng(seed).random((1, 8, 8, 4), dtype=np.float32) for seed in range(4)]
    float_io = TfliteGraph(convert(model, "int8", samples))
    assert float_io.op_counts() == {"CONV_2D": 1, "DEQUANTIZE": 1, "QUANTIZE": 1}
    integer_io = TfliteGraph(convert(model, "int8", samples, integer_io=True))
    assert integer_io.op_counts() == {"CONV_2D": 1}
    conv = integer_io.ops[0]
    assert conv.input_types[0] == conv.output_types[0] == "INT8"
    with pytest.raises(InvalidArgumentError, match="integer input and output are for int8 models, not quantize='none'"):
        convert(model, "none", integer_io=True)
