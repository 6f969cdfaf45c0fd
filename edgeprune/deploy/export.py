"""TFLite export with verification.

Every export is checked before it is kept:
- numeric agreement with the Keras model on a real photograph (run with ai_edge_litert): max abs error and PSNR,
  with a tolerance per quantisation mode;
- an op census (counts by builtin op; Flex / Select-TF ops are an error);
- a tensor census against the analytical cost model: the conv weights in the flatbuffer equal the model's kernel
  weights exactly, the MAC computed from the flatbuffer's conv shapes equals the cost model's, and every Keras conv
  layer's input/output shapes equal those of its TFLite op(s).
The result is printed and written beside the .tflite as ``<name>.tflite.json``; the two files appear together
(:func:`edgeprune.core.atomic.staged_files`). A failed check leaves no file.
"""

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import warnings

from edgeprune.core.runtime import keras, quiet_native_stderr, tf
from edgeprune.graph.cost import model_cost
from edgeprune.graph.layer_table import kind_named
from edgeprune.core.errors import ExportError, InvalidArgumentError, ShapeError
from edgeprune.core.modelio import rebuilt, resolve_model
from edgeprune.core.atomic import staged_files, write_json_atomic
from edgeprune.core.sizes import check_multiple
from edgeprune.core.text import one_line
from edgeprune.deploy.tflite_reader import TfliteGraph

QUANTIZE_MODES = ("none", "fp16", "dynamic", "int8")


@dataclass(frozen=True)
class Tolerance:
    """Minimum PSNR (dB) of the TFLite output against the Keras output, peak = the Keras output's range."""

    min_psnr_db: float

    @classmethod
    def for_mode(cls, mode: str) -> "Tolerance":
        return cls({"none": 80.0, "fp16": 45.0, "dynamic": 30.0, "int8": 25.0}[mode])


def fixed_shape_model(model: keras.Model, input_size) -> keras.Model:
    """A copy of ``model`` whose input is ``1 x H x W x C`` (static shapes convert to tighter TFLite graphs)."""
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise InvalidArgumentError("export supports models with one NHWC image input")
    h, w = input_size
    static = model.inputs[0].shape
    for want, have in zip((h, w), static[1:3]):
        if have is not None and have != want:
            raise ShapeError(f"the model's input is fixed at {static[1]}x{static[2]}; it cannot be exported at {h}x{w}")

    def fix_input(config):
        for layer in config["layers"]:
            if layer["class_name"] == "InputLayer":
                layer["config"]["batch_input_shape"] = [1, h, w, static[-1]]

    return rebuilt(model, fix_input)


def _calibration_samples(calib_data, input_shape, limit: int = 16) -> list[np.ndarray]:
    from edgeprune.data.photos import fit_to, load_rgb
    from edgeprune.data.unprocess import packed_raw

    root = Path(calib_data)
    if not root.is_dir():
        raise InvalidArgumentError(f"calibration data folder '{root}' does not exist")
    _, h, w, c = input_shape
    samples, skipped = [], 0
    for path in sorted(root.iterdir()):
        if len(samples) >= limit:
            break
        suffix = path.suffix.lower()
        try:
            if suffix == ".npy":
                arr = np.load(path).astype(np.float32)
                if arr.ndim != 3 or arr.shape[2] != c or arr.shape[0] < h or arr.shape[1] < w:
                    raise ValueError(f"shape {arr.shape}")
                top, left = (arr.shape[0] - h) // 2, (arr.shape[1] - w) // 2
                samples.append(arr[top:top + h, left:left + w][None])
            elif suffix in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp") and c in (3, 4):
                rgb = load_rgb(path)
                samples.append(fit_to(rgb, h, w)[None] if c == 3 else packed_raw(fit_to(rgb, 2 * h, 2 * w))[None])
        except (OSError, ValueError):
            skipped += 1
    if not samples:
        raise InvalidArgumentError(f"no usable calibration sample in '{root}' ({skipped} unreadable): give images "
                                   f"(for 3- or 4-channel inputs) or .npy arrays of at least {h}x{w}x{c}")
    return samples


def random_samples(model: keras.Model, count: int = 4, seed: int = 0) -> list[list[np.ndarray]]:
    """``count`` int8 calibration samples of uniform [0, 1) noise, one array per input of a fixed-shape ``model``:
    for timing single layers, whose time does not depend on their values."""
    rng = np.random.default_rng(seed)
    return [[rng.random((1, *tuple(int(d) for d in t.shape[1:])), dtype=np.float32) for t in model.inputs]
            for _ in range(count)]


def convert(model: keras.Model, quantize: str = "none", calib_samples=None, integer_io: bool = False) -> bytes:
    """TFLite flatbuffer bytes of a fixed-shape model, builtin ops only. An int8 model takes and gives float tensors
    (a QUANTIZE after each input, a DEQUANTIZE before each output), or int8 ones with ``integer_io`` (no
    conversions: what a calibration times to price a layer's op alone)."""
    if integer_io and quantize != "int8":
        raise InvalidArgumentError(f"integer input and output are for int8 models, not quantize={quantize!r}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize in ("fp16", "dynamic", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        if not calib_samples:
            raise InvalidArgumentError("int8 quantisation needs calibration data: give --calib-data DIR")
        # a sample is one array (a model of one input) or one array per input
        converter.representative_dataset = lambda: (list(s) if isinstance(s, (list, tuple)) else [s]
                                                     for s in calib_samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if integer_io:
            converter.inference_input_type = converter.inference_output_type = tf.int8
    from tensorflow.lite.python.convert_phase import ConverterError  # what the converter raises for a model

    try:
        with quiet_native_stderr(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the converter's notes on quantisation statistics
            return converter.convert()
    except (ConverterError, ValueError, tf.errors.OpError) as exc:
        reason = one_line(str(exc), 400)
        raise ExportError(f"TFLite conversion failed: {reason}") from exc


def run_tflite(content: bytes, x: np.ndarray, num_threads: int = 1) -> np.ndarray:
    """The first output of the flatbuffer ``content`` run by LiteRT on ``x``; LiteRT's failures (a model it cannot
    load, allocate or run) raise ExportError, one line."""
    from ai_edge_litert.interpreter import Interpreter

    def failed(exc: Exception) -> ExportError:
        reason = one_line(str(exc), 300) or type(exc).__name__
        return ExportError(f"LiteRT could not run the converted model: {reason}")

    try:
        with quiet_native_stderr():
            interpreter = Interpreter(model_content=content, num_threads=num_threads)
            interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        raise failed(exc) from exc
    inp = interpreter.get_input_details()[0]
    if tuple(inp["shape"]) != x.shape:
        raise ExportError(f"the TFLite model's input is {[int(d) for d in inp['shape']]}, but the Keras model takes "
                          f"{list(x.shape)}: the conversion used the wrong input size")
    try:
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
    except (RuntimeError, ValueError) as exc:
        raise failed(exc) from exc
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def numeric_check(reference: np.ndarray, candidate: np.ndarray, tolerance: Tolerance) -> dict:
    if reference.shape != candidate.shape:
        return {"passed": False, "reason": f"output shapes differ: {list(reference.shape)} vs {list(candidate.shape)}"}
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    peak = max(float(reference.max() - reference.min()), 1e-12)
    mse = float((diff ** 2).mean())
    psnr = math.inf if mse == 0 else 10 * math.log10(peak ** 2 / mse)
    return {"max_abs_err": float(diff.max()), "psnr_db": psnr if math.isfinite(psnr) else None, "peak": peak,
            "min_psnr_db": tolerance.min_psnr_db, "passed": psnr >= tolerance.min_psnr_db}


def _ops_per_layer(layer) -> int:
    """How many TFLite conv ops the converter emits for costed layer ``layer`` (a CostReport row), as the layer table
    says; a costed row whose class the table does not name (a subclass of a costed class) counts as one."""
    kind = kind_named(layer.type)
    return kind.tflite_ops if kind.costed else 1


def match_ops(convs, layers) -> dict[str, list]:
    """Keras costed layer name -> its TFLite conv op(s): by the layer name in the op's output tensor name, then the
    remaining layers and ops paired in topological order (the converter may fuse a name away)."""
    matched, claimed = {}, set()
    for layer in layers:
        ops = [op for op in convs if layer.name in op.layer_names() and op.index not in claimed]
        if len(ops) == _ops_per_layer(layer):
            matched[layer.name] = ops
            claimed.update(op.index for op in ops)
    remaining = [op for op in convs if op.index not in claimed]
    for layer in layers:
        if layer.name not in matched:
            n = _ops_per_layer(layer)
            matched[layer.name], remaining = remaining[:n], remaining[n:]
    return matched


def tensor_census(graph: TfliteGraph, report) -> dict:
    """Compares the flatbuffer's conv ops with the cost model ``report`` (a CostReport of the same model/size)."""
    convs = graph.conv_ops()
    layers = [c for c in report.layers if c.costed]
    matched = match_ops(convs, layers)
    mismatches = []
    for layer in layers:
        ops = matched[layer.name]
        if not ops:
            mismatches.append(f"no TFLite conv op left for layer '{layer.name}'")
            continue
        if tuple(ops[0].data_shape) != tuple(layer.input_shapes[0]):
            mismatches.append(f"{layer.name}: input {list(ops[0].data_shape)} in TFLite, "
                              f"{list(layer.input_shapes[0])} in the cost model")
        if tuple(ops[-1].output_shapes[0]) != tuple(layer.output_shapes[0]):
            mismatches.append(f"{layer.name}: output {list(ops[-1].output_shapes[0])} in TFLite, "
                              f"{list(layer.output_shapes[0])} in the cost model")
    expected_ops = sum(_ops_per_layer(layer) for layer in layers)
    if len(convs) != expected_ops:
        mismatches.append(f"{len(convs)} conv ops in TFLite, {expected_ops} expected from the Keras model")
    weights = sum(op.weight_elements for op in convs)
    mac = sum(op.mac for op in convs)
    if weights != report.totals.weights:
        mismatches.append(f"conv weights: {weights:,} in TFLite, {report.totals.weights:,} in the cost model")
    if mac != report.totals.mac:
        mismatches.append(f"MAC: {mac:,} from TFLite shapes, {report.totals.mac:,} in the cost model")
    return {"conv_ops": len(convs), "layers_checked": len(layers), "conv_weights_tflite": weights,
            "conv_weights_model": report.totals.weights, "mac_tflite": mac, "mac_model": report.totals.mac,
            "mismatches": mismatches, "passed": not mismatches}


def verify(content: bytes, keras_model: keras.Model, x: np.ndarray, tolerance: Tolerance, input_desc: str) -> dict:
    """All checks of one exported flatbuffer against the (fixed-shape) Keras model it came from."""
    graph = TfliteGraph(content)
    flex = graph.flex_ops()
    if flex:
        raise ExportError(f"the TFLite graph contains Flex (Select TF) ops {sorted(set(flex))}: they need TensorFlow's "
                          "Flex delegate on the phone; replace those layers with ops TFLite has built in")
    size = tuple(keras_model.inputs[0].shape[1:3])
    cost = model_cost(keras_model, size)
    census = tensor_census(graph, cost)
    reference = keras_model(x, training=False).numpy()
    numeric = numeric_check(reference, run_tflite(content, x), tolerance)
    numeric["input"] = input_desc
    return {"ops": graph.op_counts(), "flex_ops": flex, "numeric": numeric, "census": census,
            "passed": numeric["passed"] and census["passed"]}


def export_tflite(model, out, input_size=None, quantize: str = "none", calib_data=None,
                  tolerance: Tolerance | None = None) -> dict:
    """Converts ``model`` (reference name, .keras path or keras.Model) to ``out`` (.tflite), verifies it and writes
    ``out.json``. Raises ExportError (and writes nothing) when a check fails."""
    from edgeprune.data.photos import photo_input

    if quantize not in QUANTIZE_MODES:
        raise InvalidArgumentError(f"quantize must be one of {', '.join(QUANTIZE_MODES)}, got {quantize!r}")
    out = Path(out)
    if out.suffix.lower() != ".tflite":
        raise InvalidArgumentError(f"output '{out}' must end in .tflite")
    if quantize == "int8" and calib_data is None:
        raise InvalidArgumentError("int8 quantisation needs calibration data: give --calib-data DIR "
                                   "(images or .npy arrays)")
    resolved = resolve_model(model)
    static = tuple(resolved.model.inputs[0].shape[1:3]) if len(resolved.model.inputs[0].shape) == 4 else ()
    size = tuple(input_size) if input_size else (static if static and None not in static
                                                  else resolved.default_input_size)
    if size is None:
        raise ShapeError("the model's input size is dynamic: give --input-size HxW")
    check_multiple(size, resolved.input_multiple, resolved.name)
    fixed = fixed_shape_model(resolved.model, size)
    input_shape = tuple(int(d) for d in fixed.inputs[0].shape)
    calib = _calibration_samples(calib_data, input_shape) if quantize == "int8" else None
    start = time.perf_counter()
    content = convert(fixed, quantize, calib)
    conversion_s = time.perf_counter() - start
    try:
        x, desc = photo_input(input_shape[1], input_shape[2], input_shape[3])
    except ValueError:
        x, desc = np.random.default_rng(0).random(input_shape, dtype=np.float32), "random uniform [0, 1)"
    checks = verify(content, fixed, x, tolerance or Tolerance.for_mode(quantize), desc)
    result = {"model": resolved.name, "tflite": str(out), "quantize": quantize, "input_shape": list(input_shape),
              "size_bytes": len(content), "conversion_s": round(conversion_s, 3), **checks}
    if not checks["passed"]:
        problems = checks["census"]["mismatches"][:3] + (
            [] if checks["numeric"]["passed"] else
            [f"PSNR {checks['numeric']['psnr_db']} dB < {checks['numeric']['min_psnr_db']} dB "
             f"(max abs error {checks['numeric']['max_abs_err']:.3g})"])
        raise ExportError(f"verification of the {quantize} export failed: {'; '.join(problems)}")
    with staged_files(out.parent, [out.name, report_path(out).name]) as stage:
        (stage / out.name).write_bytes(content)
        write_json_atomic(stage / report_path(out).name, result)
    return result


def report_path(tflite_path) -> Path:
    return Path(str(tflite_path) + ".json")
