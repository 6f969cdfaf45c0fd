"""``edgeprune report``: analytical cost, predicted and measured latency of a set of models in one table and plots.

Each benchmark result (host, device or parsed log; the ``edgeprune.bench/1`` schema) names its .tflite; where that
file is at hand its conv MAC and BW come from the flatbuffer (BW = conv weights + conv input and output activations,
at the element size of the conv weights: 4 bytes for fp32, 2 for fp16, 1 for int8).
"""

import json
import math
from pathlib import Path

from edgeprune.errors import InvalidArgumentError

_DTYPE_BYTES = {"FLOAT32": 4, "FLOAT16": 2, "INT8": 1, "UINT8": 1}


def load_results(paths) -> list[dict]:
    results = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise InvalidArgumentError(f"result file '{path}' does not exist")
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise InvalidArgumentError(f"'{path}' is not JSON: {exc}") from exc
        for item in data if isinstance(data, list) else [data]:
            if not isinstance(item, dict) or not str(item.get("schema", "")).startswith("edgeprune.bench/"):
                raise InvalidArgumentError(f"'{path}' is not an edgeprune benchmark result (from 'edgeprune bench "
                                           "--json')")
            results.append(item)
    if not results:
        raise InvalidArgumentError("no benchmark results given")
    return results


def analytic_cost(tflite_path) -> dict | None:
    from edgeprune.deploy.tflite_reader import TfliteGraph

    path = Path(tflite_path)
    if not path.is_file():
        return None
    graph = TfliteGraph.read(path)
    convs = graph.conv_ops()
    weights = sum(op.weight_elements for op in convs)
    activations = sum(math.prod(op.data_shape) + math.prod(op.output_shapes[0]) for op in convs)
    nbytes = _DTYPE_BYTES.get(graph.weight_dtype(), 4)
    return {"mac": sum(op.mac for op in convs), "weights": weights, "activations": activations,
            "bw_elements": weights + activations, "bw_bytes": (weights + activations) * nbytes}


def build_report(result_paths, out_dir, latency_profile=None) -> dict:
    """Writes ``report.json``, ``report.md``, ``latency_vs_mac.png`` and ``latency_vs_bw.png`` to ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgeprune.deploy.latency import LatencyProfile, predict_tflite
    from edgeprune.atomic import write_json_atomic
    from edgeprune.commands.render import si, table
    from edgeprune.deploy.tflite_reader import TfliteGraph

    results = load_results(result_paths)
    profile = LatencyProfile.load(latency_profile) if latency_profile else None
    rows = []
    for r in results:
        cost = analytic_cost(r["model"]) if r.get("model") else None
        measured = r.get("median_us") or r.get("avg_us")
        predicted = None
        if profile and cost:
            predicted = predict_tflite(profile, TfliteGraph.read(r["model"]))["total_us"]
        rows.append({"model": r.get("model"), "target": r.get("target"), "runner": r.get("runner"),
                     "threads": r.get("num_threads"), "device": (r.get("device") or {}).get("model"),
                     "cost": cost, "measured_us": measured, "predicted_us": predicted,
                     "error": predicted / measured - 1 if predicted and measured else None,
                     "delegated": f"{r['delegated_nodes']}/{r['total_nodes']}" if r.get("delegated_nodes") is not None
                     else None,
                     "dram_bytes": (r.get("memory_traffic") or {}).get("bytes_per_inference")})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = {"rows": rows, "profile": str(latency_profile) if latency_profile else None}
    headers = ["model", "target", "MAC", "BW bytes", "DRAM bytes/inf", "predicted ms", "measured ms", "error",
               "delegated"]
    body = [[Path(str(x["model"])).name, f"{x['target']} ({x['device'] or x['runner']})",
             si(x["cost"]["mac"]) if x["cost"] else "-", si(x["cost"]["bw_bytes"]) + "B" if x["cost"] else "-",
             si(x["dram_bytes"]) + "B" if x["dram_bytes"] else "-",
             f"{x['predicted_us'] / 1e3:.1f}" if x["predicted_us"] else "-",
             f"{x['measured_us'] / 1e3:.1f}" if x["measured_us"] else "-",
             f"{100 * x['error']:+.1f}%" if x["error"] is not None else "-", x["delegated"] or "-"] for x in rows]
    text = table(headers, body)
    for key, label, name in (("mac", "conv MAC", "latency_vs_mac.png"), ("bw_bytes", "conv BW (bytes)",
                                                                         "latency_vs_bw.png")):
        fig, ax = plt.subplots(figsize=(6, 4.5))
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
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
    write_json_atomic(out / "report.json", report)
    (out / "report.md").write_text("```\n" + text + "\n```\n\n![latency vs MAC](latency_vs_mac.png)\n"
                                   "![latency vs BW](latency_vs_bw.png)\n")
    report["table"] = text
    return report
