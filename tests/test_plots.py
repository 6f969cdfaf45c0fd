"""The prune run's two figures, drawn from a report: a PNG of the stated size, pyplot's global state untouched."""

import struct

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


def test_the_channels_plot_is_a_png_as_wide_as_its_layers_ask(tmp_path):
    assert _png_size(channels_plot(_report(), tmp_path / "c.png")) == (720, 504)  # 6.0 x 4.2 inches at 120 dpi
    # 40 layers: 0.28 inch each plus 2
    assert _png_size(channels_plot(_report(40), tmp_path / "wide.png"))[0] == round((0.28 * 40 + 2) * 120)


def test_the_tradeoff_plot_draws_every_iteration_and_the_reference_points(tmp_path):
    assert _png_size(tradeoff_plot(_report(), tmp_path / "t.png")) == (768, 528)
    fig, ax = figure((6.4, 4.4))
    assert fig.canvas.get_width_height() == (640, 440)  # at the figure's own 100 dpi


def test_drawing_touches_no_pyplot_state(tmp_path):
    import matplotlib
    from matplotlib import pyplot

    backend, before = matplotlib.get_backend(), pyplot.get_fignums()
    tradeoff_plot(_report(), tmp_path / "t.png")
    channels_plot(_report(), tmp_path / "c.png")
    assert pyplot.get_fignums() == before and matplotlib.get_backend() == backend
