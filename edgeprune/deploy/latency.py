"""A calibrated latency model: a per-device roofline fitted to timed single-layer TFLite models.

Each op costs ``t = max(MAC_eff / mac_per_s, bytes / bytes_per_s) + overhead`` where bytes are the op's weights
plus its input and output activations, and ``MAC_eff`` counts a conv's output channels rounded up to the device's
*output-channel tile*: XNNPACK's GEMM kernels compute output channels in fixed-width tiles (a main tile, and a
narrower one for convs with few outputs), so a conv whose width lies between two multiples of the tile costs as much
as the next multiple. The tiles are measured by a sweep of conv output widths; the tiles and rooflines measured on
our host are in BENCHMARKS.md, "Host latency model: calibration and whole-model predictions". ``calibrate_host``
times single-layer models over the layer shapes of EDSR and SID (at full width and at the widths pruning produces)
and of any given model, and fits the three parameters by least squares on log time (so every layer counts by its
relative error). Predictions sum over the ops of a .tflite graph (``predict_tflite``) or the layers of a cost report
(``predict_report``).
"""

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgeprune.errors import FileFormatError

PROFILE_SCHEMA = "edgeprune.latency-profile/1"
# one elementwise/data-movement op per TFLite op type that is not a convolution
_ACTIVATION_BYTES = 4


_ROOFLINE_FIELDS = ("mac_per_s", "bytes_per_s", "overhead_us")


@dataclass
class Roofline:
    mac_per_s: float
    bytes_per_s: float
    overhead_us: float

    def us(self, mac: float, nbytes: float) -> float:
        return max(mac / self.mac_per_s, nbytes / self.bytes_per_s) * 1e6 + self.overhead_us


@dataclass
class LatencyProfile:
    """A roofline per TFLite op type (``ops``), a global one for op types calibration did not see, and the
    output-channel tile of the conv kernels."""

    target: str
    runner: str
    num_threads: int
    default: dict
    ops: dict = field(default_factory=dict)
    channel_tile: int = 1
    small_channel_tile: int = 1
    fit: dict = field(default_factory=dict)
    samples: list = field(default_factory=list)

    def roofline(self, op: str) -> Roofline:
        return Roofline(**self.ops.get(op, self.default))

    def op_us(self, op: str, mac: float, nbytes: float, out_channels: int = 0) -> float:
        tiles = (self.small_channel_tile, self.channel_tile)
        return self.roofline(op).us(effective_mac(mac, out_channels, tiles), nbytes)

    def to_dict(self) -> dict:
        return {"schema": PROFILE_SCHEMA, **asdict(self)}

    def save(self, path) -> Path:
        from edgeprune.atomic import write_json_atomic

        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path) -> "LatencyProfile":
        """The profile in ``path``; a missing, corrupt or foreign file raises FileFormatError (one line)."""
        from edgeprune.files import read_json

        path = Path(path)
        if not path.is_file():
            raise FileFormatError(f"latency profile '{path}' does not exist: make one with 'edgeprune calibrate'")
        data = read_json(path, "latency profile")
        if data.get("schema") != PROFILE_SCHEMA:
            raise FileFormatError(f"'{path}' is not an edgeprune latency profile (schema {data.get('schema')!r}, "
                                  f"expected {PROFILE_SCHEMA!r}): make one with 'edgeprune calibrate'")
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: dict, path) -> "LatencyProfile":
        """A profile from its JSON object, every field checked (errors name ``path`` and the field)."""
        from edgeprune.files import field as checked

        what = "latency profile"
        for key in ("target", "runner"):
            checked(data, key, str, what, path)
        checked(data, "num_threads", int, what, path)
        data = {"ops": {}, "channel_tile": 1, "small_channel_tile": 1, "fit": {}, "samples": [], **data}
        rooflines = {"default": checked(data, "default", dict, what, path),
                     **{f"ops.{k}": v for k, v in checked(data, "ops", dict, what, path).items()}}
        for key, roofline in rooflines.items():
            if not isinstance(roofline, dict) or set(roofline) != set(_ROOFLINE_FIELDS) or not all(
                    isinstance(roofline[f], (int, float)) and not isinstance(roofline[f], bool) and roofline[f] >= 0
                    for f in roofline) or min(roofline["mac_per_s"], roofline["bytes_per_s"]) <= 0:
                raise FileFormatError(f"{what} '{path}': field {key!r} is {roofline!r}, which is not a roofline "
                                      f"({', '.join(_ROOFLINE_FIELDS)})")
        for key in ("channel_tile", "small_channel_tile"):
            if checked(data, key, int, what, path) < 1:
                raise FileFormatError(f"{what} '{path}': field {key!r} is {data[key]!r}, which is not valid")
        checked(data, "fit", dict, what, path)
        checked(data, "samples", list, what, path)
        return cls(**{k: data[k] for k in ("target", "runner", "num_threads", "default", "ops", "channel_tile",
                                           "small_channel_tile", "fit", "samples")})


def _tiled_ops() -> frozenset:
    """The TFLite ops whose cost is tiled by output channel: those of the layer table's tiled kinds."""
    from edgeprune.graph.layer_table import LAYER_KINDS

    return frozenset(kind.tflite_op for kind in LAYER_KINDS if kind.tiled)


def tiled_channels(channels: int, tiles: tuple[int, int]) -> int:
    """Output channels a conv kernel really computes: up to ``small`` channels in one small tile, else rounded up
    to a multiple of the main tile (``tiles = (small, main)``)."""
    small, main = tiles
    if channels <= small:
        return math.ceil(channels / small) * small
    return math.ceil(channels / main) * main


def effective_mac(mac: float, out_channels: int, tiles: tuple[int, int]) -> float:
    """MAC with the output channels rounded up by ``tiled_channels`` (0 channels: not a tiled op)."""
    if not mac or out_channels <= 0:
        return mac
    return mac * tiled_channels(out_channels, tiles) / out_channels


def op_features(graph) -> list[tuple[str, int, int, int]]:
    """(op name, MAC, bytes, tiled output channels) of every op of a TfliteGraph; bytes = weights + inputs +
    outputs at 4 bytes; tiled output channels is 0 for ops whose cost is not tiled by output channel."""
    feats, tiled_ops = [], _tiled_ops()
    for op in graph.ops:
        elements = sum(math.prod(s) for s in op.input_shapes if s) + sum(math.prod(s) for s in op.output_shapes if s)
        if op.name == "TRANSPOSE_CONV":  # its first input is the output-shape vector, not data
            elements -= math.prod(op.input_shapes[0])
        out_channels = op.output_shapes[0][-1] if op.name in tiled_ops and op.output_shapes[0] else 0
        feats.append((op.name, op.mac if op.is_conv else 0, elements * _ACTIVATION_BYTES, out_channels))
    return feats


def predict_tflite(profile: LatencyProfile, graph) -> dict:
    per_op = [{"op": name, "mac": mac, "bytes": nbytes, "us": profile.op_us(name, mac, nbytes, cout)}
              for name, mac, nbytes, cout in op_features(graph) if name not in ("DEQUANTIZE",)]
    return {"total_us": sum(o["us"] for o in per_op), "ops": per_op}


def predict_report(profile: LatencyProfile, report) -> dict:
    """Per-layer and total latency of a CostReport (every layer that becomes an op; InputLayer excluded). Each
    layer is priced as the TFLite op the layer table names for its type (fused activations add no op); a type
    without a named op is priced under its upper-cased type name, which takes the profile's default roofline."""
    from edgeprune.graph.layer_table import kind_named

    layers = []
    for c in report.layers:
        kind = kind_named(c.type)
        nbytes = (c.weights + c.bias + c.other_params + c.activations) * _ACTIVATION_BYTES
        if kind.converted_away:
            continue  # removed by the converter
        cout = c.output_shapes[0][-1] if kind.tiled else 0
        op = kind.tflite_op or c.type.upper()
        layers.append({"name": c.name, "type": c.type, "op": op, "mac": c.mac, "bytes": nbytes,
                       "us": profile.op_us(op, c.mac, nbytes, cout)})
    return {"total_us": sum(l["us"] for l in layers), "layers": layers}


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


def choose_tiles(sweep: list[dict]) -> tuple[int, int]:
    """(small, main) output-channel tiles that best explain a sweep of one conv over output widths: time is taken
    as proportional to the tiled width, with the error measured relative to each time."""
    cout = np.array([x["out_channels"] for x in sweep])
    t = np.array([x["measured_us"] for x in sweep], dtype=np.float64)
    best, best_err = (1, 1), math.inf
    for main in CHANNEL_TILES:
        for small in (x for x in CHANNEL_TILES if x <= main):
            eff = np.array([tiled_channels(c, (small, main)) for c in cout], dtype=np.float64)
            scale = np.exp(np.median(np.log(t / eff)))
            err = float(np.mean(np.abs(np.log(scale * eff / t))))
            if err < best_err * 0.8:  # coarser tiles must explain clearly more
                best, best_err = (small, main), err
    return best


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
    from edgeprune.runtime import keras

    out = []
    for cout in range(8, width + 1, 8):
        inputs = keras.Input((size, size, width), batch_size=1)
        out.append((f"Conv2D {size}x{size}x{width} -> {cout} (tile sweep)",
                    keras.Model(inputs, keras.layers.Conv2D(cout, 3, padding="same")(inputs))))
    return out


def calibration_layers(models, input_size, width_multipliers=(1.0, 0.75, 0.5)) -> list:
    """Distinct single-layer Keras models covering the layers of ``models`` at ``input_size`` (and at scaled
    widths, as pruning produces). Returns [(description, keras.Model)]."""
    from edgeprune.runtime import keras
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


def calibrate_host(models=None, input_size=(128, 128), num_threads: int = 1, runs: int = 5,
                   width_multipliers=(1.0, 0.75, 0.5), progress=None) -> LatencyProfile:
    """Times single-layer TFLite models on this machine and fits the roofline."""
    from ai_edge_litert.interpreter import Interpreter

    import keras_models
    from edgeprune.runtime import quiet_native_stderr
    from edgeprune.deploy.export import convert
    from edgeprune.deploy.tflite_reader import TfliteGraph

    models = models or [keras_models.build_reference("edsr"), keras_models.build_reference("sid")]
    layers = calibration_layers(models, input_size, width_multipliers) + tile_sweep_layers()
    samples = []
    rng = np.random.default_rng(0)
    for i, (desc, model) in enumerate(layers):
        content = convert(model)
        features = op_features(TfliteGraph(content))
        with quiet_native_stderr():
            interpreter = Interpreter(model_content=content, num_threads=num_threads)
            interpreter.allocate_tensors()
        for d in interpreter.get_input_details():
            interpreter.set_tensor(d["index"], rng.random(d["shape"], dtype=np.float32))
        interpreter.invoke()
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            interpreter.invoke()
            times.append((time.perf_counter() - t0) * 1e6)
        tiled = [f[3] for f in features if f[3]]
        main_op = max(features, key=lambda f: (f[1], f[2]))[0]
        samples.append({"layer": desc, "op": main_op, "ops": [f[0] for f in features],
                        "mac": sum(f[1] for f in features),
                        "bytes": sum(f[2] for f in features), "out_channels": tiled[0] if len(tiled) == 1 else 0,
                        "measured_us": float(np.median(times))})
        if progress:
            progress(i + 1, len(layers))
    tiles = choose_tiles([x for x in samples if x["layer"].endswith("(tile sweep)")])
    default, per_op, fit = fit_roofline(samples, tiles)
    from importlib.metadata import version

    return LatencyProfile("host", f"ai_edge_litert {version('ai-edge-litert')} (XNNPACK) on {platform.machine()}",
                          num_threads, default, per_op, tiles[1], tiles[0], fit, samples)

