"""``edgeprune report``: analytical cost, predicted and measured latency of a set of models in one table and plots
(the join itself is :mod:`edgeprune.deploy.bench.report`)."""

from pathlib import Path

from edgeprune.deploy.bench.report import load_results, plot_latency, report_rows

PLOTS = (("mac", "conv MAC", "latency_vs_mac.png"), ("bw_bytes", "conv BW (bytes)", "latency_vs_bw.png"))


def build_report(result_paths, out_dir, latency_profile=None) -> dict:
    """Writes ``report.json``, ``report.md``, ``latency_vs_mac.png`` and ``latency_vs_bw.png`` to ``out_dir``, all
    four or none; returns the report with its text table under ``"table"``."""
    from edgeprune.core.atomic import staged_files, write_json_atomic
    from edgeprune.graph.latency_profile import LatencyProfile
    from edgeprune.commands.render import op_profile_tables
    from edgeprune.core.text import si, table

    results = load_results(result_paths)
    profile = LatencyProfile.load(latency_profile) if latency_profile else None
    rows = report_rows(results, profile)
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
    with staged_files(out, ["report.json", "report.md", *(name for _, _, name in PLOTS)]) as stage:
        for key, label, name in PLOTS:
            plot_latency(rows, key, label, stage / name)
        write_json_atomic(stage / "report.json", report)
        (stage / "report.md").write_text("```\n" + text + "\n```\n\n![latency vs MAC](latency_vs_mac.png)\n"
                                         "![latency vs BW](latency_vs_bw.png)\n")
    report["table"] = text
    return report
