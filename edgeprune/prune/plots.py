"""The two figures of a prune run, drawn from its report: kept channels per layer (original vs pruned, like the
paper's figure) and PSNR against MAC (and, when the run predicted or measured it, latency) over the loop's
iterations."""

from pathlib import Path

from edgeprune.core.text import method_label


def figure(size: tuple[float, float]):
    """A figure and its axes drawn by the Agg canvas: no pyplot, no backend switch, nothing global touched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def channels_plot(report: dict, path: str | Path) -> Path:
    """Bars of output channels per conv layer, original and pruned, in model order."""
    layers = report["layers"]
    names = [entry["layer"] for entry in layers]
    positions = range(len(layers))
    fig, ax = figure((max(6.0, 0.28 * len(layers) + 2), 4.2))
    ax.bar(positions, [e["original"] for e in layers], color="#c8d3e0", label="original")
    ax.bar(positions, [e["pruned"] for e in layers], color="#1f5fa8", width=0.6, label="pruned")
    ax.set_xticks(list(positions))
    ax.set_xticklabels(names, rotation=90, fontsize=6)
    ax.set_ylabel("output channels")
    pruned = report["pruned"]
    label = method_label(report["settings"], report.get("strategy"))
    ax.set_title(f"{report['model']}, {label}: MAC {pruned['mac_ratio']:.3f}, "
                 f"weights {pruned['weights_ratio']:.3f} of the baseline", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return Path(path)


def tradeoff_plot(report: dict, path: str | Path) -> Path:
    """PSNR against MAC (fraction of the baseline) for every iteration, accepted or rolled back, with the baseline,
    the tolerance line, the equal-budget control and the final slim model."""
    base = report["baseline"]
    tolerance = report["settings"]["tolerance"]["psnr"]
    fig, ax = figure((6.4, 4.4))
    accepted = [r for r in report["iterations"] if r["accepted"]]
    rejected = [r for r in report["iterations"] if not r["accepted"]]
    path_points = [(1.0, base["psnr"])] + [(r["mac"], r["psnr"]) for r in accepted]
    ax.plot(*zip(*path_points), "-o", color="#1f5fa8", ms=4, label="accepted iterations")
    if rejected:
        ax.plot([r["mac"] for r in rejected], [r["psnr"] for r in rejected], "x", color="#c0392b", ms=7,
                label="rolled back")
    ax.axhline(base["psnr"] - tolerance, color="grey", ls="--", lw=1, label=f"tolerance (-{tolerance} dB)")
    ax.plot([1.0], [base["psnr"]], "*", color="black", ms=11, label="baseline")
    control = report["control"]
    ax.plot([1.0], [control["psnr"]], "D", color="#e67e22", ms=6,
            label=f"control (baseline + {control['steps']} steps)")
    pruned = report["pruned"]
    ax.plot([pruned["mac_ratio"]], [pruned["psnr"]], "s", mfc="none", color="#27ae60", ms=10, label="pruned.keras")
    latency = report.get("latency") or {}
    if any(r.get("latency") is not None for r in accepted):
        points = [(1.0, base["psnr"])] + [(r["latency"], r["psnr"]) for r in accepted]
        ax.plot(*zip(*points), "--^", color="#8e44ad", ms=4, lw=1, label="same, at predicted latency")
    if latency.get("measured"):
        ax.plot([latency["measured"]["ratio"]], [pruned["psnr"]], "P", color="#8e44ad", ms=9,
                label="pruned.keras, measured latency")
    target = report["settings"]["target_mac"]
    if target:
        ax.axvline(target, color="#27ae60", ls=":", lw=1, label=f"target MAC {target}")
    if report["settings"].get("target_latency"):
        ax.axvline(report["settings"]["target_latency"], color="#8e44ad", ls=":", lw=1,
                   label=f"target latency {report['settings']['target_latency']}")
    ax.invert_xaxis()
    ax.set_xlabel("MAC or latency (fraction of the baseline)" if latency.get("predicted") or latency.get("measured")
                  else "MAC (fraction of the baseline)")
    ax.set_ylabel("PSNR on the held-out images (dB)")
    ax.set_title(f"{report['model']}, {method_label(report['settings'], report.get('strategy'))}", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return Path(path)
