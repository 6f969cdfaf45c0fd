"""``edgeprune report``: analytical cost, predicted and measured latency of a set of models in one table and plots
(the join itself is :mod:`edgeprune.deploy.bench.report`)."""

from pathlib import Path

from edgeprune.deploy.bench.report import load_results, pair_with_baselines, plot_latency, plot_traffic, report_rows

TRAFFIC_PLOT = "traffic_vs_bw.png"
PLOTS = (("mac", "conv MAC", "latency_vs_mac.png"), ("bw_bytes", "conv BW (bytes)", "latency_vs_bw.png"))


def build_report(result_paths, out_dir, latency_profile=None, baselines=()) -> dict:
    """Writes ``report.json``, ``report.md``, ``latency_vs_mac.png`` and ``latency_vs_bw.png`` to ``out_dir``, and
    where results carry simulated DRAM traffic (``bench --host --memory-traffic``) a traffic table and
    ``traffic_vs_bw.png``, each model paired with its baseline (one of ``baselines``, see
    :func:`~edgeprune.deploy.bench.report.pair_with_baselines`), all of them or none; returns the report with its
    text under ``"table"``."""
    from edgeprune.core.atomic import staged_files, write_json_atomic
    from edgeprune.graph.latency_profile import LatencyProfile
    from edgeprune.commands.render import op_profile_tables
    from edgeprune.core.text import si, table

    results = load_results(result_paths)
    profile = LatencyProfile.load(latency_profile) if latency_profile else None
    rows = report_rows(results, profile)
    pair_with_baselines(rows, baselines)
    out = Path(out_dir)
    report = {"rows": rows, "profile": str(latency_profile) if latency_profile else None}
    headers = ["model", "target", "MAC", "BW bytes", "DRAM bytes/inf", "predicted ms", "measured ms", "error",
               "delegated"]
    body = [[Path(str(x["model"])).name, f"{x['target']} ({x['device'] or x['runner']})",
             si(x["cost"]["mac"]) if x["cost"] else "-", si(x["cost"]["bw_bytes"]) + "B" if x["cost"] else "-",
             si(x["dram_bytes"]) + "B" if x["dram_bytes"] else "-",
             f"{x['predicted_us'] / 1e3:.1f}" if x["predicted_us"] else "-",
             f"{x['measured_us'] / 1e3:.1f}" if x["measured_us"] else "-",
             f"{100 * x['error']:+.1f}%" if x["error"] is not None else "-", x["delegated"] or "-"] for x in rows]
    text = "\n\n".join([table(headers, body), *op_profile_tables(results)])
    images = "\n![latency vs MAC](latency_vs_mac.png)\n![latency vs BW](latency_vs_bw.png)\n"
    names = ["report.json", "report.md", *(name for _, _, name in PLOTS)]
    traffic = any(x["traffic"] for x in rows)
    if traffic:
        text += "\n\n" + traffic_table(rows)
        images += f"![traffic vs BW]({TRAFFIC_PLOT})\n"
        names.append(TRAFFIC_PLOT)
    with staged_files(out, names) as stage:
        for key, label, name in PLOTS:
            plot_latency(rows, key, label, stage / name)
        if traffic:
            plot_traffic(rows, stage / TRAFFIC_PLOT)
        write_json_atomic(stage / "report.json", report)
        (stage / "report.md").write_text("```\n" + text + "\n```\n" + images)
    report["table"] = text
    return report


def traffic_table(rows: list[dict]) -> str:
    """The simulated DRAM traffic of the rows that have it, beside the analytical BW; a model paired with a baseline
    also gets its measured traffic ratio, analytical BW ratio and MAC ratio."""
    from edgeprune.core.text import si, table

    body = []
    for x in rows:
        t, pair = x["traffic"], x.get("vs_baseline")
        if not t:
            continue
        ll = (t["caches"] or {}).get("ll") or {}
        body.append([Path(str(x["model"])).name, "x".join(map(str, t["input_size"] or [])), t["dtype"] or "-",
                     f"{ll.get('size', 0) // 1024} KiB {ll.get('assoc', '?')}-way", t["isa"] or "-",
                     si(t["bytes"]) + "B", si(t["bw_bytes"]) + "B", f"{t['ratio']:.3f}" if t["ratio"] else "-",
                     f"{pair['traffic_ratio']:.3f}" if pair else "-", f"{pair['bw_ratio']:.3f}" if pair else "-",
                     f"{pair['mac_ratio']:.3f}" if pair else "-"])
    return ("DRAM traffic per inference, simulated (Cachegrind) against analytical conv BW; ratios against the "
            "baseline\n" + table(["model", "input", "dtype", "LL", "ISA", "traffic", "BW", "traffic/BW",
                                   "traffic ratio", "BW ratio", "MAC ratio"], body))
