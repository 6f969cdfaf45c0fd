"""The latency model on .tflite graphs, and its calibration: a per-device roofline fitted to timed single-layer
TFLite models (the profile itself, and predictions from a cost report, are :mod:`edgeprune.graph.latency_profile`).

The tiles are measured by a sweep of conv output widths; the tiles and rooflines measured on two x86 hosts are in
BENCHMARKS.md, "Host latency model: calibration and whole-model predictions". ``calibrate_host`` times
single-layer models over the layer shapes of EDSR and SID (at full width and at the widths pruning produces) and of
any given model, and fits the three parameters by least squares on log time (so every layer counts by its relative
error). :mod:`edgeprune.deploy.device_calibration` times the same models with benchmark_model on a phone and fits
them with the same functions (``calibration_set``, ``converted_layers``, ``layer_sample``, ``fit_profile``).
Predictions sum over the ops of a .tflite graph (``predict_tflite``).
"""

import itertools
import json
import math
import os
import platform
import time

import numpy as np

from edgeprune.core.errors import InvalidArgumentError
from edgeprune.deploy.tflite_reader import TRANSPOSED_OPS
from edgeprune.graph.latency_profile import (LatencyProfile, Roofline, effective_mac,
                                             tiled_channels, tiled_ops)


def op_features(graph) -> list[tuple[str, int, int, int]]:
    """(op name, MAC, bytes, tiled output channels) of every op of a TfliteGraph; bytes = weights + inputs +
    outputs at their element types' sizes (an int8 model's tensors at 1 byte, its int32 biases at 4); tiled output
    channels is 0 for ops whose cost is not tiled by output channel."""
    feats, tiled = [], tiled_ops()
    for op in graph.ops:
        skip = (0,) if op.name in TRANSPOSED_OPS else ()  # their first input is the output-shape vector, not data
        out_channels = op.output_shapes[0][-1] if op.name in tiled and op.output_shapes[0] else 0
        feats.append((op.name, op.mac if op.is_conv else 0, op.tensor_bytes(skip), out_channels))
    return feats


def predict_tflite(profile: LatencyProfile, graph) -> dict:
    """Per-op and total latency of a TfliteGraph. A DEQUANTIZE of fp16 weights is left out (the runtime converts
    weights once, when it loads the model); an int8 model's DEQUANTIZE of its output is priced like any op."""
    per_op = [{"op": name, "mac": mac, "bytes": nbytes, "us": profile.op_us(name, mac, nbytes, cout)}
              for op, (name, mac, nbytes, cout) in zip(graph.ops, op_features(graph))
              if not (name == "DEQUANTIZE" and op.input_types[:1] not in (("INT8",), ("UINT8",), ("INT16",)))]
    return {"total_us": sum(o["us"] for o in per_op), "ops": per_op}


CHANNEL_TILES = (1, 4, 8, 16, 32, 64)


def _fit_one(mac, nbytes, t):
    from scipy.optimize import least_squares

    compute = mac > 0
    p0 = np.median(mac[compute] / t[compute]) if compute.any() else 1e10
    w0 = np.median(nbytes[~compute] / t[~compute]) if (~compute).any() else 1e10
    x0 = np.log([p0, w0, max(t.min() / 4, 1e-7)])

    def residual(x):
        p, w, c = np.exp(x)
        return np.log(np.maximum(mac / p, nbytes / w) + c) - np.log(t)

    sol = least_squares(residual, x0, method="lm")
    return np.exp(sol.x), float(np.mean(sol.fun ** 2))


# a coarser tile is chosen when its error is below this fraction of the finer one's (BENCHMARKS.md, "The
# calibration's tile choice")
COARSER_TILE_GAIN = 0.95
SMALL_TILE_MAX = 16  # widths up to this may be computed by a small tile; the main tile is fitted on wider convs


def _tile_error(cout: np.ndarray, t: np.ndarray, tiles: tuple[int, int]) -> float:
    """Mean relative (log) error of time taken as proportional to the tiled width, at the best common scale."""
    eff = np.array([tiled_channels(c, tiles) for c in cout], dtype=np.float64)
    scale = np.exp(np.median(np.log(t / eff)))
    return float(np.mean(np.abs(np.log(scale * eff / t))))


def _finest_best(candidates, error) -> tuple[int, int]:
    """The candidate (finest first) whose error no coarser one beats by more than COARSER_TILE_GAIN."""
    best, best_err = candidates[0], math.inf
    for tiles in candidates:
        err = error(tiles)
        if err < best_err * COARSER_TILE_GAIN:
            best, best_err = tiles, err
    return best


def choose_tiles(sweep: list[dict]) -> tuple[int, int]:
    """(small, main) output-channel tiles that best explain a sweep of one conv over output widths: time is taken
    as proportional to the tiled width, with the error measured relative to each time. The main tile is fitted on
    the widths above SMALL_TILE_MAX only, where pruning decides (from 64, is 48 cheaper than 64?): fitted on every
    width, the narrow convs' own kernels (on an AVX-512 host 8 and 16 outputs cost a third of 64, 24 two thirds,
    32 a half) made four idle calibrations of one host choose 32 twice and 16 twice. The small tile is then
    fitted on all widths."""
    cout = np.array([x["out_channels"] for x in sweep])
    t = np.array([x["measured_us"] for x in sweep], dtype=np.float64)
    wide = cout > SMALL_TILE_MAX
    if wide.sum() >= 2:
        _, main = _finest_best([(1, m) for m in CHANNEL_TILES], lambda tiles: _tile_error(cout[wide], t[wide], tiles))
    else:
        _, main = _finest_best([(1, m) for m in CHANNEL_TILES], lambda tiles: _tile_error(cout, t, tiles))
    return _finest_best([(s, main) for s in CHANNEL_TILES if s <= main], lambda tiles: _tile_error(cout, t, tiles))


def fit_roofline(samples: list[dict], tiles: tuple[int, int]) -> tuple[dict, dict, dict]:
    """Fits a roofline per op type (and a global one) by least squares on log time, with conv MAC tiled by
    ``tiles``. Samples are {"op", "mac", "bytes", "out_channels", "measured_us"}.
    Returns (default roofline, {op: roofline}, fit summary); adds "predicted_us" to each sample."""
    eff = np.array([effective_mac(s["mac"], s.get("out_channels", 0), tiles) for s in samples], dtype=np.float64)
    nbytes = np.array([s["bytes"] for s in samples], dtype=np.float64)
    t = np.array([s["measured_us"] for s in samples], dtype=np.float64) * 1e-6
    kinds = np.array([s["op"] for s in samples])

    def as_roofline(params):
        p, w, c = params
        return {"mac_per_s": float(p), "bytes_per_s": float(w), "overhead_us": float(c * 1e6)}

    default = as_roofline(_fit_one(eff, nbytes, t)[0])
    per_op = {}
    for kind in sorted(set(kinds)):
        sel = kinds == kind
        if sel.sum() >= 3:
            per_op[str(kind)] = as_roofline(_fit_one(eff[sel], nbytes[sel], t[sel])[0])
    predicted = np.array([Roofline(**per_op.get(k, default)).us(e, b) for k, e, b in zip(kinds, eff, nbytes)]) * 1e-6
    rel = np.abs(predicted - t) / t
    for s, pred in zip(samples, predicted):
        s["predicted_us"] = float(pred * 1e6)
    return default, per_op, {"samples": len(samples), "median_abs_rel_err": float(np.median(rel)),
                             "max_abs_rel_err": float(rel.max())}


def tile_sweep_layers(size: int = 64, width: int = 64) -> list:
    """3x3 convs with every output width from 8 to ``width`` in steps of 8 (they reveal the output tile)."""
    from edgeprune.core.runtime import keras

    out = []
    for cout in range(8, width + 1, 8):
        inputs = keras.Input((size, size, width), batch_size=1)
        out.append((f"Conv2D {size}x{size}x{width} -> {cout} (tile sweep)",
                    keras.Model(inputs, keras.layers.Conv2D(cout, 3, padding="same")(inputs))))
    return out


def calibration_layers(models, input_size, width_multipliers=(1.0, 0.75, 0.5)) -> list:
    """Distinct single-layer Keras models covering the layers of ``models`` at ``input_size`` (and at scaled
    widths, as pruning produces). Returns [(description, keras.Model)]."""
    from edgeprune.core.runtime import keras
    from edgeprune.graph.layer_table import kind_of
    from edgeprune.graph.model_graph import ModelGraph

    seen, out = set(), []
    for model in models:
        graph = ModelGraph(model)
        shapes = graph.shapes_at(input_size)
        for node in graph:
            if node.is_input or len(node.inputs) == 0:
                continue
            in_shapes = shapes[node.id].inputs
            if any(len(s) != 4 for s in in_shapes):
                continue
            config = node.layer.get_config()
            for m in width_multipliers:
                def scaled(c, m=m):
                    return max(1, int(round(c * m)))

                layer_config = dict(config)
                layer_config.pop("name", None)
                ins = [(s[1], s[2], scaled(s[3]) if s[3] > 4 else s[3]) for s in in_shapes]
                # The grid scales the widths a layer's own config names ("filters": the convolutions); the table's
                # resize is not used, as it would also rescale Dense units and Reshape targets and so change the
                # calibration set. Widths of 4 or fewer (RGB and raw planes) are the model's, never scaled.
                if "filters" in layer_config and layer_config["filters"] > 4:
                    layer_config["filters"] = scaled(layer_config["filters"])
                if kind_of(node.layer).role == "depth_to_space":  # its input keeps whole blocks of r*r channels
                    r2 = node.layer.block_size ** 2
                    ins = [(h, w, max(r2, (c // r2) * r2)) for h, w, c in ins]
                key = (type(node.layer).__name__, json.dumps(layer_config, sort_keys=True, default=str), tuple(ins))
                if key in seen:
                    continue
                seen.add(key)
                inputs = [keras.Input(s, batch_size=1) for s in ins]
                try:
                    layer = node.layer.__class__.from_config(layer_config)
                    x = layer(inputs if len(inputs) > 1 else inputs[0])
                except (ValueError, TypeError):
                    continue  # a merge whose scaled inputs no longer agree
                desc = f"{type(node.layer).__name__} {'+'.join('x'.join(map(str, s)) for s in ins)}"
                if "filters" in layer_config:
                    desc += f" -> {layer_config['filters']}"
                out.append((desc, keras.Model(inputs, x)))
    return out


def calibrated_models(models=None) -> list:
    """The Keras models whose layers a calibration covers: ``models``, or by default the EDSR and SID references."""
    import keras_models

    return models or [keras_models.build_reference("edsr"), keras_models.build_reference("sid")]


def calibration_set(models=None, input_size=(128, 128), width_multipliers=(1.0, 0.75, 0.5)) -> list:
    """The single-layer Keras models a calibration times: the layers of ``models`` (default: the EDSR and SID
    references) from :func:`calibration_layers`, then the tile sweep. Returns [(description, keras.Model)]."""
    return calibration_layers(calibrated_models(models), input_size, width_multipliers) + tile_sweep_layers()


def converted_layers(layers, workers: int | None = None, progress=None, quantize: str = "none"):
    """Converts each (description, keras.Model) of ``layers`` to TFLite; yields (description, .tflite content,
    :func:`op_features` of the content), in order.

    With ``workers`` > 1 (default: one per core) every layer is converted first, in that many processes, from its
    architecture (weights drawn afresh: a layer's time does not depend on its values), and only then yielded, so
    no conversion runs while the caller times what it gets. Conversion is most of a calibration's time (about
    0.6 s a layer on a 2-core AVX2 host, for a few hundred layers). One worker converts each as it is asked for.
    ``progress(done, total)`` is called as each conversion ends. ``quantize``: ``none`` (fp32) or ``int8``
    (full integer, calibrated on uniform noise: a layer's time does not depend on its values; int8 input and output,
    so that the model is the layer's op alone, without the QUANTIZE and DEQUANTIZE a float-input model puts around
    it: a whole int8 model converts once, at its input and output, which :mod:`edgeprune.deploy.conversion_models`
    times apart)."""
    from edgeprune.deploy.export import convert, random_samples
    from edgeprune.deploy.tflite_reader import TfliteGraph

    workers = (os.cpu_count() or 1) if workers is None else workers
    def report(done):
        if progress:
            progress(done, len(layers))

    parallel = workers > 1 and len(layers) > 1
    if parallel:
        contents = _convert_in_processes([model.to_json() for _, model in layers], workers, report, quantize)
    else:
        contents = (convert(model, quantize, random_samples(model) if quantize == "int8" else None,
                            integer_io=quantize == "int8") for _, model in layers)
    for i, ((desc, _), content) in enumerate(zip(layers, contents)):
        if not parallel:
            report(i + 1)
        yield desc, content, op_features(TfliteGraph(content))


def converted_conversions(shapes):
    """Yields (description, .tflite content, :func:`op_features`) of an int8 model's input QUANTIZE and output
    DEQUANTIZE alone at each (H, W, C) of ``shapes`` (:mod:`edgeprune.deploy.conversion_models`, whose
    ``conversion_shapes`` gives those of a calibration's models): an int8 calibration times them beside its
    single-layer models, two per shape."""
    from edgeprune.deploy.conversion_models import conversion_models
    from edgeprune.deploy.tflite_reader import TfliteGraph

    for desc, content in conversion_models(shapes):
        yield desc, content, op_features(TfliteGraph(content))


def _convert_in_processes(architectures: list[str], workers: int, report, quantize: str = "none") -> list[bytes]:
    """Each JSON architecture's TFLite content, converted by ``workers`` processes of
    :mod:`edgeprune.deploy.convert_worker` (layers dealt round-robin); ``report(done)`` as conversions end."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from edgeprune.core.errors import ExportError

    workers = min(workers, len(architectures))
    with tempfile.TemporaryDirectory(prefix="edgeprune-convert-") as tmp:
        out, procs = Path(tmp), []
        for k in range(workers):
            jobs = out / f"jobs{k}.json"
            jobs.write_text(json.dumps([[i, a] for i, a in enumerate(architectures) if i % workers == k]))
            with open(out / f"log{k}.txt", "w") as log:  # a file, not a pipe: a chatty worker never blocks
                procs.append(subprocess.Popen([sys.executable, "-m", "edgeprune.deploy.convert_worker", str(jobs),
                                               str(out), quantize], stdout=subprocess.DEVNULL, stderr=log))
        done = 0
        try:
            while any(p.poll() is None for p in procs):
                time.sleep(0.2)
                now = len(list(out.glob("*.tflite")))
                for d in range(done + 1, now + 1):
                    report(d)
                done = now
            failed = [k for k, p in enumerate(procs) if p.returncode != 0]
            if failed:
                lines = (out / f"log{failed[0]}.txt").read_text(errors="replace").strip().splitlines()
                raise ExportError(f"a TFLite conversion worker failed (exit {procs[failed[0]].returncode}): "
                                  f"{(lines or ['no message'])[-1]}")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
        for d in range(done + 1, len(architectures) + 1):
            report(d)
        return [(out / f"{i}.tflite").read_bytes() for i in range(len(architectures))]


def layer_sample(desc: str, features, measured_us: float) -> dict:
    """One calibration sample: a single-layer model's ops, summed MAC and bytes, the output channels of its one
    tiled op (0 if it has none or several), and its measured time; the op it is fitted under is its costliest."""
    tiled = [f[3] for f in features if f[3]]
    # an int8 model with float input and output quantises its input and dequantises its output around the layer's
    # op: such a sample is fitted under the layer's op, not under those (a model of a conversion alone, under it)
    own = [f for f in features if f[0] not in ("QUANTIZE", "DEQUANTIZE")] or features
    main_op = max(own, key=lambda f: (f[1], f[2]))[0]
    return {"layer": desc, "op": main_op, "ops": [f[0] for f in features], "mac": sum(f[1] for f in features),
            "bytes": sum(f[2] for f in features), "out_channels": tiled[0] if len(tiled) == 1 else 0,
            "measured_us": float(measured_us)}


def fit_profile(samples: list[dict], target: str, runner: str, num_threads: int,
                dtype: str = "fp32") -> LatencyProfile:
    """The profile of timed samples (from :func:`layer_sample`) of models deployed in ``dtype``: tiles from the
    "(tile sweep)" samples, then the rooflines; adds "predicted_us" to each sample."""
    tiles = choose_tiles([x for x in samples if x["layer"].endswith("(tile sweep)")])
    default, per_op, fit = fit_roofline(samples, tiles)
    return LatencyProfile(target, runner, num_threads, default, per_op, tiles[1], tiles[0], fit, samples, dtype)


SWEEP_ROUNDS = 15  # interleaved rounds over the tile sweep: its widths are timed side by side


CALIBRATED_DTYPES = {"fp32": "none", "int8": "int8"}  # what the host calibrates: the profile's dtype -> convert's mode


def calibrate_host(models=None, input_size=(128, 128), num_threads: int = 1, runs: int = 5,
                   width_multipliers=(1.0, 0.75, 0.5), progress=None, workers: int | None = None,
                   dtype: str = "fp32") -> LatencyProfile:
    """Times single-layer TFLite models on this machine and fits the roofline.

    Each layer's time is the fastest of ``runs`` runs (load from other processes only ever adds time, so the
    fastest run is the steadiest figure on a shared machine). The tile sweep's convs, whose differences decide the
    tiles, are then timed again side by side: ``SWEEP_ROUNDS`` rounds of one run of each, the fastest kept, so a
    burst of load cannot make one width look like a tile boundary (a sweep timed one width after another under
    load once gave no tile at all on a host whose tile is 16). ``workers``: the conversion processes of
    :func:`converted_layers` (default one per core; all conversions end before the first layer is timed).
    ``dtype``: what the single-layer models are converted to, fp32 or int8 (full integer; int8 input and output, so
    each times its op alone, and the QUANTIZE and DEQUANTIZE with which a model exported by ``edgeprune export
    --quantize int8`` converts its float input and output timed apart, :func:`converted_conversions`); fp16 is not
    calibrated on the host, whose XNNPACK runs an fp16 model's weights dequantized to fp32."""
    from importlib.metadata import version

    from ai_edge_litert.interpreter import Interpreter

    from edgeprune.core.runtime import quiet_native_stderr

    if dtype not in CALIBRATED_DTYPES:
        raise InvalidArgumentError(f"the host is calibrated for {' or '.join(CALIBRATED_DTYPES)} models, not {dtype!r}:"
                                   " this host's XNNPACK runs an fp16 model in fp32 (calibrate fp32 for it)")
    models = calibrated_models(models)
    layers = calibration_set(models, input_size, width_multipliers)
    samples, sweep = [], {}
    rng = np.random.default_rng(0)
    timed = converted_layers(layers, workers, progress, CALIBRATED_DTYPES[dtype])
    if dtype == "int8":  # the single-layer models have int8 input and output: the conversions are timed apart
        from edgeprune.deploy.conversion_models import conversion_shapes

        timed = itertools.chain(timed, converted_conversions(conversion_shapes(models, input_size)))
    for desc, content, features in timed:
        with quiet_native_stderr():
            interpreter = Interpreter(model_content=content, num_threads=num_threads)
            interpreter.allocate_tensors()
        for d in interpreter.get_input_details():
            if np.issubdtype(d["dtype"], np.integer):  # an int8 model's input: noise over the whole int8 range
                interpreter.set_tensor(d["index"], rng.integers(-128, 128, d["shape"]).astype(d["dtype"]))
            else:
                interpreter.set_tensor(d["index"], rng.random(d["shape"], dtype=np.float32).astype(d["dtype"]))
        interpreter.invoke()
        samples.append(layer_sample(desc, features, min(_timed(interpreter) for _ in range(runs))))
        if desc.endswith("(tile sweep)"):
            sweep[len(samples) - 1] = interpreter
    fastest = {i: math.inf for i in sweep}
    for _ in range(SWEEP_ROUNDS):
        for i, interpreter in sweep.items():
            fastest[i] = min(fastest[i], _timed(interpreter))
    for i, us in fastest.items():
        samples[i]["measured_us"] = float(us)
    return fit_profile(samples, "host", f"ai_edge_litert {version('ai-edge-litert')} (XNNPACK) on "
                       f"{platform.machine()}", num_threads, dtype)


def _timed(interpreter) -> float:
    """Microseconds of one ``invoke``."""
    t0 = time.perf_counter()
    interpreter.invoke()
    return (time.perf_counter() - t0) * 1e6
