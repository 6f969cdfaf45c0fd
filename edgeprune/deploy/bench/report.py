"""Benchmark results joined with analytical cost and predicted latency, the rows of ``edgeprune report``
(:mod:`edgeprune.commands.report` writes them as a table and plots).

Each benchmark result (host, device or parsed log; the ``edgeprune.bench/1`` schema) names its .tflite; where that
file is at hand its conv MAC and BW come from the flatbuffer (BW = conv weights + conv input and output activations,
at the element size of the conv weights: 4 bytes for fp32, 2 for fp16, 1 for int8).
"""

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

_TRAFFIC_FIELDS = {"bytes_per_inference": (int, float), "read_bytes_per_inference": (int, float),
                   "write_bytes_per_inference": (int, float), "analytical": dict, "input_size": list,
                   "caches": dict, "xnnpack": dict}
"""The fields of ``memory_traffic`` the report reads."""

_ANALYTICAL_FIELDS = {"mac": int, "weights": int, "activations": int, "bw_elements": int, "bw_bytes": int}
"""The fields of ``memory_traffic.analytical`` (a host measurement's analytical BW), all required."""


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
    traffic = item.get("memory_traffic") or {}
    check(_TRAFFIC_FIELDS, traffic, "memory_traffic.")
    analytical = traffic.get("analytical")
    if analytical is not None:
        check(_ANALYTICAL_FIELDS, analytical, "memory_traffic.analytical.")
        missing = [k for k in _ANALYTICAL_FIELDS if analytical.get(k) is None]
        if missing or traffic.get("bytes_per_inference") is None:
            raise FileFormatError(f"benchmark result '{path}': memory_traffic has no "
                                  f"{(['memory_traffic.analytical.' + k for k in missing] or ['bytes_per_inference'])[0]}"
                                  "; give results written by 'edgeprune bench --json'")


def analytic_cost(tflite_path) -> dict | None:
    """The conv cost (:func:`edgeprune.deploy.tflite_reader.conv_cost`) of a .tflite at its own input size, or
    None where the file is not at hand."""
    from edgeprune.deploy.tflite_reader import TfliteGraph, conv_cost

    path = Path(tflite_path)
    if not path.is_file():
        return None
    graph = TfliteGraph.read(path)
    return conv_cost(graph.conv_ops(), graph.weight_dtype())


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
        traffic = r.get("memory_traffic") or {}
        simulated = traffic.get("analytical")  # the cost at the size the traffic (and latency) was measured at
        cost = ({k: simulated[k] for k in ("mac", "weights", "activations", "bw_elements", "bw_bytes")} if simulated
                else analytic_cost(r["model"]) if r.get("model") else None)
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
                     "dram_bytes": traffic.get("bytes_per_inference"),
                     "traffic": _traffic_fields(traffic) if simulated else None})
    return rows


def _traffic_fields(traffic: dict) -> dict:
    analytical = traffic["analytical"]
    return {"bytes": traffic["bytes_per_inference"], "read_bytes": traffic.get("read_bytes_per_inference"),
            "write_bytes": traffic.get("write_bytes_per_inference"), "bw_bytes": analytical["bw_bytes"],
            "mac": analytical["mac"], "ratio": traffic["bytes_per_inference"] / analytical["bw_bytes"]
            if analytical["bw_bytes"] else None, "input_size": traffic.get("input_size"),
            "dtype": analytical.get("dtype"), "caches": traffic.get("caches"),
            "isa": (traffic.get("xnnpack") or {}).get("isa")}


def _structure(path) -> tuple | None:
    """The op sequence of a .tflite (pruning keeps it), or None where the file is not at hand."""
    from edgeprune.deploy.tflite_reader import TfliteGraph

    return tuple(op.name for op in TfliteGraph.read(path).ops) if path and Path(path).is_file() else None


def pair_with_baselines(rows: list[dict], baselines) -> None:
    """Adds ``vs_baseline`` to each simulated-traffic row (:func:`report_rows`) that is not a baseline: the measured
    traffic ratio, the analytical BW ratio and the MAC ratio against the one baseline row with the same op sequence,
    input size, element type and caches. ``baselines`` are model paths or file names of the results."""
    names = [str(b) for b in baselines]
    def is_baseline(row, name):
        return row["model"] and (Path(row["model"]) == Path(name) or Path(row["model"]).name == name)

    chosen = []
    for name in names:
        found = [x for x in rows if is_baseline(x, name)]
        if not found:
            raise InvalidArgumentError(f"--baseline '{name}' is not the model of any result given: name a .tflite "
                                       "that one of the results measured (its path or file name)")
        chosen += [x for x in found if x["traffic"]]
    keys = {id(x): (_structure(x["model"]), x["traffic"]["input_size"], x["traffic"]["dtype"], x["traffic"]["caches"])
            for x in rows if x["traffic"]}
    for row in rows:
        if not row["traffic"] or any(row is b for b in chosen):
            continue
        matches = [b for b in chosen if keys[id(b)] == keys[id(row)] and keys[id(row)][0] is not None]
        if len(matches) == 1:
            base, t = matches[0]["traffic"], row["traffic"]
            row["vs_baseline"] = {"baseline": matches[0]["model"], "traffic_ratio": t["bytes"] / base["bytes"],
                                  "bw_ratio": t["bw_bytes"] / base["bw_bytes"], "mac_ratio": t["mac"] / base["mac"]}


def plot_traffic(rows: list[dict], path) -> None:
    """Measured DRAM traffic per inference against the analytical BW of the same graph, one series per input size
    and last-level cache, with the line traffic = BW, as a PNG (log axes). Per model only: Cachegrind attributes
    counts to functions, and all convs run the same XNNPACK micro-kernels, so there is no per-layer figure."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    series = {}
    for x in rows:
        t = x.get("traffic")
        if t:
            ll = (t["caches"] or {}).get("ll") or {}
            label = f"{'x'.join(map(str, t['input_size'] or []))}, {t['dtype']}, LL {ll.get('size', 0) // 1024} KiB"
            series.setdefault(label, []).append((t["bw_bytes"], t["bytes"], Path(str(x["model"])).stem))
    values = [v for pts in series.values() for p in pts for v in p[:2] if v]
    for label, pts in sorted(series.items()):
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=label)
        for xv, yv, lab in pts:
            ax.annotate(lab, (xv, yv), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if values:
        lo, hi = min(values) / 1.5, max(values) * 1.5
        ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, label="traffic = analytical BW")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_minor_formatter(NullFormatter())  # decade labels only: the minor ones overlap
    ax.set_xlabel("analytical conv BW (bytes per inference)")
    ax.set_ylabel("simulated DRAM traffic (bytes per inference)")
    ax.set_title("Measured traffic against analytical BW (Cachegrind)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


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
