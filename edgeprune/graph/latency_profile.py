"""The latency model's data: a per-device roofline per TFLite op type and the conv output-channel tiles
(:class:`LatencyProfile`, written by ``edgeprune calibrate``), and the latency it predicts for a cost report.

Each op costs ``t = max(MAC_eff / mac_per_s, bytes / bytes_per_s) + overhead`` where bytes are the op's weights
plus its input and output activations, and ``MAC_eff`` counts a conv's output channels rounded up to the device's
*output-channel tile*: XNNPACK's GEMM kernels compute output channels in fixed-width tiles (a main tile, and a
narrower one for convs with few outputs), so a conv whose width lies between two multiples of the tile costs as much
as the next multiple. This module prices a :class:`~edgeprune.graph.cost.CostReport` (so the prune loop can predict
the latency of a plan without building or converting a model); :mod:`edgeprune.deploy.latency` prices .tflite
graphs and calibrates profiles on the host or a device.
"""

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgeprune.core.errors import FileFormatError

PROFILE_SCHEMA = "edgeprune.latency-profile/1"
# runners whose profiles edgeprune writes: the host's LiteRT, or benchmark_model on a device
KNOWN_RUNNERS = ("ai_edge_litert", "benchmark_model")
# bytes of one weight or activation element of a model deployed in each dtype: fp16 weights and activations where
# the runtime has fp16 kernels (ARM); int8 weights and activations (biases stay int32: 4 bytes)
ELEMENT_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}
DTYPES = tuple(ELEMENT_BYTES)
ACTIVATION_BYTES = ELEMENT_BYTES["fp32"]


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
    output-channel tile of the conv kernels, for models deployed in ``dtype`` (fp32, fp16 or int8: what the
    single-layer models were converted to when it was calibrated; bytes are priced at that dtype's size)."""

    target: str
    runner: str
    num_threads: int
    default: dict
    ops: dict = field(default_factory=dict)
    channel_tile: int = 1
    small_channel_tile: int = 1
    fit: dict = field(default_factory=dict)
    samples: list = field(default_factory=list)
    dtype: str = "fp32"

    def roofline(self, op: str) -> Roofline:
        return Roofline(**self.ops.get(op, self.default))

    def op_us(self, op: str, mac: float, nbytes: float, out_channels: int = 0) -> float:
        tiles = (self.small_channel_tile, self.channel_tile)
        return self.roofline(op).us(effective_mac(mac, out_channels, tiles), nbytes)

    def to_dict(self) -> dict:
        return {"schema": PROFILE_SCHEMA, **asdict(self)}

    def save(self, path) -> Path:
        from edgeprune.core.atomic import write_json_atomic

        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path) -> "LatencyProfile":
        """The profile in ``path``; a missing, corrupt or foreign file raises FileFormatError (one line)."""
        from edgeprune.core.files import read_json

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
        from edgeprune.core.files import field as checked

        what = "latency profile"
        for key in ("target", "runner"):
            checked(data, key, str, what, path)
        checked(data, "num_threads", int, what, path)
        data = {"ops": {}, "channel_tile": 1, "small_channel_tile": 1, "fit": {}, "samples": [], "dtype": "fp32",
                **data}  # profiles written before the dtype was recorded were all fp32
        if data["dtype"] not in DTYPES:
            raise FileFormatError(f"{what} '{path}': field 'dtype' is {data['dtype']!r}, not one of "
                                  f"{', '.join(DTYPES)}")
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
                                           "small_channel_tile", "fit", "samples", "dtype")})


def tiled_ops() -> frozenset:
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


def layer_bytes(cost, dtype: str) -> int:
    """Bytes a layer of a :class:`~edgeprune.graph.cost.CostReport` moves when deployed in ``dtype``: weights,
    other parameters and activations at the dtype's element size, biases at 4 bytes for int8 (int32 accumulators)."""
    element = ELEMENT_BYTES[dtype]
    bias = 4 if dtype == "int8" else element
    return (cost.weights + cost.other_params + cost.activations) * element + cost.bias * bias


def conversion_rows(profile: LatencyProfile, report) -> list[dict]:
    """The QUANTIZE after each input and the DEQUANTIZE before each output of a model deployed in int8 with float
    input and output (as ``edgeprune export --quantize int8`` writes it), priced by the profile: each moves its
    tensor at 4 bytes (float) and 1 byte (int8) an element. None for other dtypes."""
    if profile.dtype != "int8":
        return []
    rows = []
    for op, shapes in (("QUANTIZE", report.model_inputs), ("DEQUANTIZE", report.model_outputs)):
        for shape in shapes:
            nbytes = math.prod(shape) * (ELEMENT_BYTES["fp32"] + ELEMENT_BYTES["int8"])
            rows.append({"name": f"({op.lower()} {'x'.join(map(str, shape[1:]))})", "type": op, "op": op, "mac": 0,
                         "bytes": nbytes, "us": profile.op_us(op, 0, nbytes)})
    return rows


def predict_report(profile: LatencyProfile, report) -> dict:
    """Per-layer and total latency of a CostReport (every layer that becomes an op; InputLayer excluded), deployed
    in the profile's dtype. Each layer is priced as the TFLite op the layer table names for its type (fused
    activations add no op); a type without a named op is priced under its upper-cased type name, which takes the
    profile's default roofline. An int8 model's conversions of its float input and output come first and last
    (:func:`conversion_rows`)."""
    from edgeprune.graph.layer_table import kind_named

    layers = []
    for c in report.layers:
        kind = kind_named(c.type)
        nbytes = layer_bytes(c, profile.dtype)
        if kind.converted_away:
            continue  # removed by the converter
        cout = c.output_shapes[0][-1] if kind.tiled else 0
        op = kind.tflite_op or c.type.upper()
        layers.append({"name": c.name, "type": c.type, "op": op, "mac": c.mac, "bytes": nbytes,
                       "us": profile.op_us(op, c.mac, nbytes, cout)})
    conversions = conversion_rows(profile, report)
    layers = [r for r in conversions if r["op"] == "QUANTIZE"] + layers + [r for r in conversions
                                                                          if r["op"] == "DEQUANTIZE"]
    return {"total_us": sum(l["us"] for l in layers), "layers": layers}


def check_pruning_profile(profile: "LatencyProfile", where: str) -> None:
    """Raises unless ``profile`` (read from ``where``) was calibrated by a runner edgeprune calibrates."""
    if not str(profile.runner).startswith(KNOWN_RUNNERS):
        raise FileFormatError(f"latency profile {where} comes from runner {profile.runner!r}, not one edgeprune "
                              "calibrates (LiteRT on the host, benchmark_model on a device): make one with "
                              "'edgeprune calibrate'")
