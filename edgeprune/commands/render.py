"""Plain-text tables for people (the JSON outputs are for machines)."""

from edgeprune.core.text import method_label, si, table  # noqa: F401 (re-exported)


def cost_table(report, all_layers: bool = False) -> str:
    """Per-layer table and both totals of a :class:`edgeprune.graph.cost.CostReport`."""
    conv_mac = report.totals.mac or 1
    rows = []
    for c in report.layers:
        if not (c.costed or all_layers):
            continue
        out = "x".join(str(d) for d in c.output_shapes[0][1:]) if c.output_shapes else ""
        rows.append([c.name, c.type, out, si(c.mac) if c.costed else "-", f"{100 * c.mac / conv_mac:.1f}",
                     f"{c.weights:,}", f"{c.bias:,}", si(c.activations_in), si(c.activations_out)])
    size = "x".join(map(str, report.input_size)) if report.input_size else "static"
    nbytes = report.totals.bw_bytes // max(report.totals.bw_elements, 1)
    lines = [
        f"{report.model} at input {size}, {report.dtype} ({nbytes} bytes per element), batch 1",
        "",
        table(["layer", "type", "output HxWxC", "MAC", "MAC %", "weights", "bias", "act in", "act out"], rows,
              "lllrrrrrr"),
        "",
    ]
    t, a = report.totals, report.totals_all_layers
    lines.append(table(
        ["totals", "MAC", "weights", "bias", "activations", "BW elements", "BW bytes"],
        [["conv layers (paper's Table 1)", f"{t.mac:,} ({si(t.mac)})", f"{t.weights:,}", f"{t.bias:,}",
          f"{t.activations:,} ({si(t.activations)})", si(t.bw_elements), si(t.bw_bytes) + "B"],
         ["all layers", f"{a.mac:,} ({si(a.mac)})", f"{a.weights:,}", f"{a.bias:,}",
          f"{a.activations:,} ({si(a.activations)})", si(a.bw_elements), si(a.bw_bytes) + "B"]],
    ))
    lines.append("")
    lines.append("BW = weights + activations (conv totals exclude bias, as the paper does; the all-layer BW adds bias "
                 "and other parameters). Table 1's 'BW (MByte)' equals BW elements in millions.")
    return "\n".join(lines)


def before_after(original: dict, pruned: dict) -> str:
    """A table of totals (``analyze --json`` schema) before and after pruning."""
    rows = []
    for key in ("mac", "weights", "activations", "bw_elements", "bw_bytes"):
        a, b = original[key], pruned[key]
        rows.append([key, f"{a:,}", f"{b:,}", f"{100 * b / a:.1f}%" if a else "-"])
    return table(["conv totals", "original", "pruned", "pruned/original"], rows)


def bench_table(results: list[dict]) -> str:
    """Benchmark results (bench result schema), one column per model."""
    keys = ["init_us", "first_us", "warmup_avg_us", "avg_us", "std_us", "min_us", "median_us", "p5_us", "p95_us",
            "max_us"]
    rows = [[k] + [f"{r[k]:,.0f}" if r.get(k) is not None else "-" for r in results] for k in keys]
    rows.append(["runs"] + [str(r["runs"]) for r in results])
    rows += [[k] + [f"{r[k]:.1f}" if r.get(k) is not None else "-" for r in results]
             for k in ("mem_overall_mb", "mem_peak_rss_mb")]
    if all("latency_model" in r for r in results):
        rows.append(["predicted_us"] + [f"{r['latency_model']['predicted_us']:,.0f}" for r in results])
        rows.append(["interleaved_median_us"] + [f"{r['latency_model']['interleaved_median_us']:,.0f}"
                                                  for r in results])
        rows.append(["prediction error"] + [f"{100 * r['latency_model']['error']:+.1f}%" for r in results])
    first = results[0]
    extra = [["delegated nodes"] + [f"{r['delegated_nodes']}/{r['total_nodes']}" if r.get("delegated_nodes") is not None
                                    else "-" for r in results]]
    if any(r.get("memory_traffic") for r in results):
        extra.append(["DRAM bytes/inference"] + [f"{r['memory_traffic']['bytes_per_inference']:,.0f}"
                                                 if r.get("memory_traffic") and
                                                 r["memory_traffic"].get("bytes_per_inference") is not None else "-"
                                                 for r in results])
    simulated = [r["memory_traffic"] if r.get("memory_traffic", {}) and "analytical" in r["memory_traffic"] else None
                 for r in results]
    rows += extra
    if any(simulated):
        def each(fmt):
            return [fmt(t) if t else "-" for t in simulated]

        rows += [["DRAM read bytes/inference"] + each(lambda t: f"{t['read_bytes_per_inference']:,.0f}"),
                 ["DRAM write bytes/inference"] + each(lambda t: f"{t['write_bytes_per_inference']:,.0f}"),
                 ["analytical BW bytes"] + each(lambda t: f"{t['analytical']['bw_bytes']:,}"),
                 ["measured / analytical"] + each(lambda t: f"{t['traffic_to_bw']:.3f}" if t["traffic_to_bw"]
                                                  else "-"),
                 ["traffic input, dtype"] + each(lambda t: "x".join(map(str, t["input_size"])) +
                                                 f", {t['analytical']['dtype']}"),
                 ["XNNPACK kernels (ISA)"] + each(lambda t: t["xnnpack"]["isa"] or "none")]
    threads = first["num_threads"] if first.get("num_threads") is not None else "?"
    head = f"{first['target']} benchmark ({first['runner']}, {threads} thread(s)); times in us"
    caches = {t["caches"]["name"] + ": " + ", ".join(f"{k.upper()} {v['size']:,} B {v['assoc']}-way {v['line']} B"
                                                      for k, v in t["caches"].items() if k != "name")
              for t in simulated if t}
    if caches:
        head += "\nDRAM traffic simulated by Cachegrind, caches " + "; ".join(sorted(caches))
    names = [r["model"].rsplit("/", 1)[-1] for r in results]
    return "\n\n".join([head + "\n" + table(["metric"] + names, rows), *op_profile_tables(results)])


def op_profile_tables(results: list[dict], top: int = 10) -> list[str]:
    """Per model with an op profile (``--op-profiling``): time by node type, then the ``top`` slowest nodes."""
    out = []
    for r in results:
        profile = r.get("op_profile")
        if not profile:
            continue
        name = r["model"].rsplit("/", 1)[-1]
        by_type = [[t["node_type"], str(t["count"]), f"{t['avg_ms']:.3f}", f"{t['percent']:.1f}%"]
                   for t in profile.get("by_node_type", [])]
        nodes = sorted(profile.get("run_order", []), key=lambda n: -n["avg_ms"])[:top]
        slowest = [[n["name"], n["node_type"], f"{n['avg_ms']:.3f}", f"{n['percent']:.1f}%"] for n in nodes]
        parts = [f"per-op profile of {name} ({len(profile.get('run_order', []))} nodes)"]
        if by_type:
            parts.append(table(["node type", "count", "avg ms", "time"], by_type))
        if slowest:
            parts.append(table(["slowest nodes", "node type", "avg ms", "time"], slowest))
        out.append("\n".join(parts))
    return out


def latency_table(latency: dict, all_layers: bool = False) -> str:
    rows = [[l["name"], l["type"], f"{l['us']:,.0f}", f"{100 * l['us'] / latency['total_us']:.1f}"]
            for l in latency["layers"] if all_layers or l["mac"]]
    return (table(["layer", "type", "predicted us", "%"], rows) +
            f"\n\npredicted total latency: {latency['total_us'] / 1e3:,.1f} ms (all layers)")


def profile_table(profile) -> str:
    """A latency profile: one roofline per op type."""
    rows = [[op, f"{r['mac_per_s'] / 1e9:.1f}", f"{r['bytes_per_s'] / 1e9:.1f}", f"{r['overhead_us']:.1f}",
             str(sum(s["op"] == op for s in profile.samples))]
            for op, r in sorted(profile.ops.items())]
    d = profile.default
    rows.append(["(other ops)", f"{d['mac_per_s'] / 1e9:.1f}", f"{d['bytes_per_s'] / 1e9:.1f}",
                 f"{d['overhead_us']:.1f}", str(len(profile.samples))])
    fit = profile.fit
    return (f"{profile.runner}, {profile.dtype} models, {profile.num_threads} thread(s); conv output channels "
            f"computed in tiles of "
            f"{profile.channel_tile} ({profile.small_channel_tile} for layers of at most that many)\n"
            + table(["op", "GMAC/s", "GB/s", "overhead us", "samples"], rows)
            + f"\nfit over {fit['samples']} single-layer models: median |error| "
              f"{100 * fit['median_abs_rel_err']:.1f}%, max {100 * fit['max_abs_rel_err']:.1f}%")


def prune_summary(report: dict, out_dir) -> str:
    """What a prune run achieved, for people: cost before/after, quality of baseline, pruned model and control."""
    base, pruned, control = report["baseline"], report["pruned"], report["control"]
    rows = [["baseline", f"{base['psnr']:.3f}", f"{base['ssim']:.4f}", "1.000", "0"],
            ["pruned", f"{pruned['psnr']:.3f}", f"{pruned['ssim']:.4f}", f"{pruned['mac_ratio']:.3f}",
             str(report["finetune_steps"]["lineage"])],
            ["control (baseline, same steps)", f"{control['psnr']:.3f}", f"{control['ssim']:.4f}", "1.000",
             str(control["steps"])]]
    accepted = sum(r["accepted"] for r in report["iterations"])
    lines = [f"{report['model']}: {method_label(report['settings'], report.get('strategy'))}, "
             f"{len(report['iterations'])} iterations "
             f"({accepted} accepted), {report['seconds']:.0f} s; cost at input "
             f"{'x'.join(map(str, report['input_size']))}",
             before_after(base["totals"], pruned["totals"]), "",
             table(["model", "PSNR (dB)", "SSIM", "MAC", "fine-tune steps"], rows, "lrrrr"), "",
             f"PSNR {pruned['psnr'] - base['psnr']:+.3f} dB vs baseline, {pruned['psnr'] - control['psnr']:+.3f} dB "
             f"vs control (tolerance {report['settings']['tolerance']['psnr']} dB below the baseline); SSIM "
             f"{pruned['ssim'] - base['ssim']:+.4f} vs baseline, {pruned['ssim'] - control['ssim']:+.4f} vs control; "
             f"{_targets(report['settings'])} {'met' if report['target_met'] else 'NOT met'}",
             *fine_tuning_lines(report.get("fine_tuned_against")),
             *gate_lines(report),
             *strategy_lines(report.get("strategy")),
             *latency_lines(report.get("latency")),
             *timing_lines(report.get("timings")),
             f"wrote {out_dir}/pruned.keras, plan.json, report.json, channels.png, tradeoff.png"
             f"{', kernel_mask.json' if (report.get('strategy') or {}).get('pruned_kernels') else ''}"]
    return "\n".join(lines)


def fine_tuning_lines(against: dict | None) -> list[str]:
    """What the pruned model was fine-tuned against (the control always learns from the ground truth alone)."""
    if against is None:  # a report written before the field existed
        return []
    return [f"fine-tuned against: {against['text']} (the control: ground truth)"]


def gate_lines(report: dict) -> list[str]:
    """With ``--gate control``: what each iteration was judged against, and the control budgets it trained."""
    if report["settings"].get("gate", "baseline") == "baseline":
        return []
    budgets = sorted({r["control"]["steps"] for r in report["iterations"] if r.get("control")})
    seconds = ((report.get("timings") or {}).get("phases", {}).get("loop.control") or {}).get("seconds")
    return ["", "gate: every iteration within the tolerance of the baseline and of the control at its own steps "
                f"(controls at {', '.join(map(str, budgets)) or 'no'} steps"
                f"{f', {seconds:.0f} s' if seconds is not None else ''})"]


def strategy_lines(strategy: dict | None) -> list[str]:
    """What the coarse strategy's kernel masks bought (the MAC with pruned kernels skipped against the MAC the
    exported dense model executes), or how well the QR strategy's re-fits reconstructed their convs' outputs."""
    if not strategy or strategy.get("name") == "threshold":
        return []
    if strategy["name"] == "coarse":
        return ["", f"coarse ({strategy['granularity']}, best of {strategy['candidates']} random masks per step): "
                    f"{strategy['pruned_kernels']:.1%} of the conv kernels pruned; MAC "
                    f"{strategy['sparse_mac_ratio']:.3f} counted with pruned kernels skipped, "
                    f"{strategy['executed_mac_ratio']:.3f} executed by the exported dense model (a dense TFLite conv "
                    "multiplies zero kernels too; channels left without kernels were removed)"]
    fits = [c for g in (strategy.get("reconstruction") or {}).values() for c in g.get("consumers", {}).values()
            if c.get("refit")]
    steps = strategy.get("recover_steps") or 0
    head = ("pivoted-QR selection with least-squares reconstruction, once ("
            + (f"then fine-tuned for {steps} steps)" if steps else "no fine-tuning)"))
    missed = strategy.get("missed_plan")
    tail = [] if not missed else [f"the allocation's nearest plan that misses the target costs MAC "
                                  f"{missed['mac']:.3f}: at these widths it has none in between"]
    if not fits:
        return ["", head, *tail]
    before = sorted(c["error_before"] for c in fits)
    after = sorted(c["error_after"] for c in fits)
    return ["", f"{head}: {len(fits)} re-fitted convs, median relative output error {before[len(before) // 2]:.4f} "
                f"with the kept channels' original weights, {after[len(after) // 2]:.4f} re-fitted (on the sampled "
                "patches)", *tail]


def zero_kernel_note(sparsity: dict) -> str:
    """Below the cost table, when a model has all-zero kernels (coarse kernel pruning): what skipping them would
    save, and that a dense TFLite conv does not."""
    if not sparsity["zero_kernels"]:
        return ""
    return (f"\n\n{sparsity['zero_kernels']:,} of {sparsity['kernels']:,} conv kernels are all zero: MAC "
            f"{sparsity['mac_skipping_zero_kernels']:,} ({sparsity['mac_skipping_zero_kernels'] / sparsity['mac']:.3f}"
            f" of the table's) if they were skipped, but a dense TFLite conv multiplies them too and executes the "
            f"table's {sparsity['mac']:,}")


def timing_lines(timings: dict | None) -> list[str]:
    """Where the run's time went: one line per top-level phase, its sub-phases beside it."""
    if not timings:
        return []
    phases = timings["phases"]
    total = timings["total_seconds"]
    parts = []
    for name, entry in phases.items():
        if "." in name:
            continue
        subs = [f"{sub.split('.', 1)[1]} {e['seconds'] / 60:.1f}" for sub, e in phases.items()
                if sub.startswith(name + ".")]
        parts.append(f"{name} {entry['seconds'] / 60:.1f}" + (f" ({', '.join(subs)})" if subs else ""))
    return ["", f"time (minutes, this process): {total / 60:.1f} in all = " + "; ".join(parts)]


def _targets(settings: dict) -> str:
    parts = [f"target MAC {settings['target_mac']}"] if settings.get("target_mac") is not None else []
    if settings.get("target_latency") is not None:
        parts.append(f"target latency {settings['target_latency']} (predicted)")
    return " and ".join(parts) or "no target"


def latency_lines(latency: dict | None) -> list[str]:
    """The latency part of a prune summary: what the widths were chosen for, predicted and measured ratios."""
    if not latency:
        return []
    rows = [["MAC", "", "", f"{latency['mac_ratio']:.3f}", "the cost model"]]
    for key, label in (("predicted", "latency, predicted"), ("measured", "latency, measured")):
        figures = latency.get(key)
        if figures:
            how = (f"{latency['profile']['target']} profile" if key == "predicted" else
                   f"{figures.get('runner', 'LiteRT')}, {figures.get('num_threads', 1)} thread(s), median of "
                   f"{figures.get('rounds', '?')} interleaved runs")
            rows.append([label, f"{figures['baseline_us'] / 1e3:.1f} ms", f"{figures['pruned_us'] / 1e3:.1f} ms",
                         f"{figures['ratio']:.3f}", how])
    size = "x".join(map(str, latency["input_size"]))
    out = ["", f"widths chosen for: {latency['widths_for']}",
           f"latency at input {size} ({latency.get('dtype', 'fp32')} TFLite):",
           table(["", "baseline", "pruned", "ratio", "how"], rows, "lrrrl")]
    if not latency.get("measured"):
        out.append("latency not measured in this run")
    return out


def one_shot_summary(report: dict, out_dir) -> str:
    """What a one-shot prune did, for people: cost before/after and the masked-vs-slim check."""
    size = "x".join(map(str, report["original"]["input_size"] or [])) or "static"
    eq = report["equivalence"]
    return "\n".join([
        f"{report['model']}: one-shot L1 pruning of {report['channel_ratio']:.0%} of every prunable group, at input "
        f"{size}",
        before_after(report["original"]["totals"], report["pruned"]["totals"]),
        f"\nmasked vs slim model on random input {eq['input_shape']}: max relative difference "
        f"{eq['max_rel_diff']:.2e}; plan prediction matches the slim model: "
        f"{report['plan_prediction']['matches_pruned']}",
        *_one_shot_latency(report),
        f"wrote {out_dir}/pruned.keras, plan.json, report.json"])


def _one_shot_latency(report: dict) -> list[str]:
    lines = [f"widths chosen for: {report['widths']['source']}"] if report.get("widths") else []
    predicted = report.get("predicted_latency")
    if predicted:
        lines.append(f"predicted latency: {predicted['baseline_us'] / 1e3:.1f} ms -> {predicted['pruned_us'] / 1e3:.1f}"
                     f" ms (ratio {predicted['ratio']:.3f}; MAC ratio {report['mac_ratio']:.3f})")
    return lines


def slim_summary(summary: dict, out_path) -> str:
    """A slim command's cost totals before and after."""
    return before_after(summary["original"]["totals"], summary["pruned"]["totals"]) + f"\n\nwrote {out_path}"


def train_summary(report: dict, out_path) -> str:
    """What a training run reached on the held-out images."""
    v = report["validation"]
    return (f"{report['model']} trained {report['history']['steps']} steps in {report['train_seconds']:.0f} s on "
            f"{report['history']['replicas']} replica(s); validation on {v['images']} held-out images: "
            f"PSNR {v['psnr']:.2f} dB, SSIM {v['ssim']:.4f}\n"
            f"wrote {out_path} and {out_path}.json")
