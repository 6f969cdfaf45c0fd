"""The prune run's two figures, drawn from a report: what each draws (bars, points, lines and their labels, from the
report's numbers), written as a PNG, pyplot's global state untouched."""

import struct

import numpy as np
import pytest

from edgeprune.prune import plots
from edgeprune.prune.plots import channels_plot, figure, tradeoff_plot


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def _report(layers=4):
    return {"model": "edsr",
            "layers": [{"layer": f"conv{i}", "original": 16, "pruned": 16 - 2 * i} for i in range(layers)],
            "settings": {"method": "D", "importance": "magnitude", "tolerance": {"psnr": 0.05, "ssim": 0.002},
                         "target_mac": 0.5, "target_latency": None},
            "baseline": {"psnr": 30.0, "ssim": 0.9},
            "control": {"psnr": 30.02, "ssim": 0.9, "steps": 120},
            "pruned": {"mac_ratio": 0.71, "weights_ratio": 0.7, "psnr": 29.98},
            "iterations": [{"accepted": True, "mac": 0.85, "psnr": 30.01, "latency": 0.9},
                           {"accepted": True, "mac": 0.71, "psnr": 29.98, "latency": 0.78},
                           {"accepted": False, "mac": 0.6, "psnr": 29.7, "latency": 0.66}],
            "latency": {"predicted": 0.78, "measured": {"ratio": 0.8}}}


@pytest.fixture
def drawn(monkeypatch):
    """The axes each plot draws on, kept for inspection after the figure is saved."""
    axes = []
    real = plots.figure

    def keeping(size):
        fig, ax = real(size)
        axes.append(ax)
        return fig, ax

    monkeypatch.setattr(plots, "figure", keeping)
    return axes


def _lines(ax) -> dict:
    """Each labelled line of the axes: label -> (x data, y data)."""
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()
            if not line.get_label().startswith("_")}


def test_the_channels_plot_draws_original_and_pruned_channels_of_every_layer(tmp_path, drawn):
    path = channels_plot(_report(), tmp_path / "c.png")
    (ax,) = drawn
    original, pruned = ax.containers
    assert (original.get_label(), pruned.get_label()) == ("original", "pruned")
    assert [bar.get_height() for bar in original] == [16, 16, 16, 16]
    assert [bar.get_height() for bar in pruned] == [16, 14, 12, 10]
    assert [round(bar.get_x() + bar.get_width() / 2, 6) for bar in pruned] == [0, 1, 2, 3]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["conv0", "conv1", "conv2", "conv3"]
    assert ax.get_ylabel() == "output channels"
    assert ax.get_title().endswith(": MAC 0.710, weights 0.700 of the baseline") and ax.get_title().startswith("edsr, ")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["original", "pruned"]
    assert _png_size(path) == (720, 504)  # 6.0 x 4.2 inches at 120 dpi
    # 40 layers: 0.28 inch each plus 2
    assert _png_size(channels_plot(_report(40), tmp_path / "wide.png"))[0] == round((0.28 * 40 + 2) * 120)
    assert len(drawn[1].containers[1]) == 40


def test_the_tradeoff_plot_draws_every_iteration_and_the_reference_points(tmp_path, drawn):
    path = tradeoff_plot(_report(), tmp_path / "t.png")
    (ax,) = drawn
    lines = _lines(ax)
    assert lines["accepted iterations"] == ([1.0, 0.85, 0.71], [30.0, 30.01, 29.98])
    assert lines["rolled back"] == ([0.6], [29.7])
    assert lines["tolerance (-0.05 dB)"][1] == [pytest.approx(29.95), pytest.approx(29.95)]
    assert lines["baseline"] == ([1.0], [30.0])
    assert lines["control (baseline + 120 steps)"] == ([1.0], [30.02])
    assert lines["pruned.keras"] == ([0.71], [29.98])
    assert lines["same, at predicted latency"] == ([1.0, 0.9, 0.78], [30.0, 30.01, 29.98])
    assert lines["pruned.keras, measured latency"] == ([0.8], [29.98])
    assert lines["target MAC 0.5"][0] == [0.5, 0.5]
    assert list(lines) == [t.get_text() for t in ax.get_legend().get_texts()]  # every line is in the legend
    assert ax.xaxis_inverted() and ax.get_xlabel() == "MAC or latency (fraction of the baseline)"
    assert _png_size(path) == (768, 528)
    fig, ax = figure((6.4, 4.4))
    assert fig.canvas.get_width_height() == (640, 440)  # at the figure's own 100 dpi


def test_without_rollbacks_latency_or_target_those_are_not_drawn(tmp_path, drawn):
    report = _report()
    report["iterations"] = [dict(r, latency=None) for r in report["iterations"] if r["accepted"]]
    report["latency"], report["settings"]["target_mac"] = None, None
    tradeoff_plot(report, tmp_path / "t.png")
    (ax,) = drawn
    assert sorted(_lines(ax)) == ["accepted iterations", "baseline", "control (baseline + 120 steps)",
                                  "pruned.keras", "tolerance (-0.05 dB)"]
    assert ax.get_xlabel() == "MAC (fraction of the baseline)"
    assert np.allclose(_lines(ax)["accepted iterations"][0], [1.0, 0.85, 0.71])


def test_drawing_touches_no_pyplot_state(tmp_path):
    import matplotlib
    from matplotlib import pyplot

    backend, before = matplotlib.get_backend(), pyplot.get_fignums()
    tradeoff_plot(_report(), tmp_path / "t.png")
    channels_plot(_report(), tmp_path / "c.png")
    assert pyplot.get_fignums() == before and matplotlib.get_backend() == backend
