"""Benchmark results joined with analytical cost and predicted latency, the rows of ``edgeprune report``
(:mod:`edgeprune.commands.report` writes them as a table and plots).

Each benchmark result (host, device or parsed log; the ``edgeprune.bench/1`` schema) names its .tflite; where that
file is at hand its conv MAC and BW come from the flatbuffer (BW = conv weights + conv input and output activations,
at the element size of the conv weights: 4 bytes for fp32, 2 for fp16, 1 for int8).
"""

import math
from pathlib import Path

from edgeprune.core.errors import FileFormatError, InvalidArgumentError

def load_results(paths) -> list[dict]:
    """The benchmark results in ``paths`` (each file one result or a list of them), every one checked."""
    from edgeprune.core.files import read_json

    results = []
    for p in paths:
        path = Path(p)
        data = read_json(path, "benchmark result", kind=object)
        for item in data if isinstance(data, list) else [data]:
            if not isinstance(item, dict) or not str(item.get("schema", "")).startswith("edgeprune.bench/"):
                raise FileFormatError(f"'{path}' is not an edgeprune benchmark result (from 'edgeprune bench "
                                      "--json')")
            _check_result(item, path)
            results.append(item)
    if not results:
        raise InvalidArgumentError("no benchmark results given")
    return results


_FIELDS = {"target": str, "model": str, "runner": str, "device": dict, "memory_traffic": dict,
           "median_us": (int, float), "avg_us": (int, float), "num_threads": int, "delegated_nodes": int,
           "total_nodes": int}
"""The result fields the report reads or formats, with the types the schema gives them (None is allowed)."""

_TRAFFIC_FIELDS = {"bytes_per_inference": (int, float)}
"""The fields of ``memory_traffic`` the report reads."""


def _check_result(item: dict, path) -> None:
    """The fields the report reads have the types the schema gives them: ``target`` is present (rows are grouped
    by it), ``total_nodes`` comes with ``delegated_nodes``, and ``memory_traffic`` holds a number of bytes."""
    def bad(key, value):
        return FileFormatError(f"benchmark result '{path}': field {key!r} is {value!r}, which is not valid")

    def check(fields, data, prefix=""):
        for key, kind in fields.items():
            value = data.get(key)
            if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                raise bad(prefix + key, value)

    check(_FIELDS, item)
    if item.get("target") is None:
        raise FileFormatError(f"benchmark result '{path}' has no 'target'; give results written by 'edgeprune "
                              "bench --json'")
    if item.get("delegated_nodes") is not None and item.get("total_nodes") is None:
        raise FileFormatError(f"benchmark result '{path}' has 'delegated_nodes' but no 'total_nodes'; give results "
                              "written by 'edgeprune bench --json'")
    check(_TRAFFIC_FIELDS, item.get("memory_traffic") or {}, "memory_traffic.")


def analytic_cost(tflite_path) -> dict | None:
    from edgeprune.deploy.tflite_reader import TfliteGraph
    from edgeprune.graph.cost import tflite_bytes_per_element

    path = Path(tflite_path)
    if not path.is_file():
        return None
    graph = TfliteGraph.read(path)
    convs = graph.conv_ops()
    weights = sum(op.weight_elements for op in convs)
    activations = sum(math.prod(op.data_shape) + math.prod(op.output_shapes[0]) for op in convs)
    nbytes = tflite_bytes_per_element(graph.weight_dtype())
    return {"mac": sum(op.mac for op in convs), "weights": weights, "activations": activations,
            "bw_elements": weights + activations, "bw_bytes": (weights + activations) * nbytes}


def predicts(profile, result: dict) -> bool:
    """Whether a latency profile applies to a result: a profile predicts only runs on its own target (a host
    profile says nothing about a phone)."""
    return profile is not None and result.get("target") == profile.target


def report_rows(results: list[dict], profile=None) -> list[dict]:
    """One row per result: its .tflite's analytical cost, the measured latency and, where ``profile`` applies
    (:func:`predicts`), the predicted latency and the prediction's error."""
    from edgeprune.deploy.latency import predict_tflite
    from edgeprune.deploy.tflite_reader import TfliteGraph

    rows = []
    for r in results:
        cost = analytic_cost(r["model"]) if r.get("model") else None
        measured = r.get("median_us") or r.get("avg_us")
        predicted = None
        if cost and predicts(profile, r):
            predicted = predict_tflite(profile, TfliteGraph.read(r["model"]))["total_us"]
        rows.append({"model": r.get("model"), "target": r.get("target"), "runner": r.get("runner"),
                     "threads": r.get("num_threads"), "device": (r.get("device") or {}).get("model"),
                     "cost": cost, "measured_us": measured, "predicted_us": predicted,
                     "error": predicted / measured - 1 if predicted and measured else None,
                     "delegated": f"{r['delegated_nodes']}/{r['total_nodes']}" if r.get("delegated_nodes") is not None
                     else None,
                     "dram_bytes": (r.get("memory_traffic") or {}).get("bytes_per_inference")})
    return rows


def plot_latency(rows: list[dict], key: str, label: str, path) -> None:
    """Measured (and predicted) latency of ``rows`` against their cost ``key``, one series per target, as a PNG.
    Uses matplotlib's object API, so no backend is selected and no global pyplot state is touched."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for target in sorted({x["target"] for x in rows}):
        pts = [(x["cost"][key], x["measured_us"] / 1e3, Path(str(x["model"])).stem) for x in rows
               if x["target"] == target and x["cost"] and x["measured_us"]]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=f"measured ({target})")
            for xv, yv, lab in pts:
                ax.annotate(lab, (xv, yv), fontsize=7, xytext=(3, 3), textcoords="offset points")
        preds = [(x["cost"][key], x["predicted_us"] / 1e3) for x in rows
                 if x["target"] == target and x["cost"] and x["predicted_us"]]
        if preds:
            ax.scatter([p[0] for p in preds], [p[1] for p in preds], marker="x", label=f"predicted ({target})")
    ax.set_xlabel(label)
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"Latency against {label}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
