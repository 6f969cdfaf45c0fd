"""The numpy transcription of EDSR-PyTorch's forward pass (the check when torch is absent) is PyTorch's, op by op."""

import numpy as np
import pytest

from edgeprune.checkpoints.numpy_reference import conv2d, edsr_forward, pixel_shuffle

torch = pytest.importorskip("torch")


def test_conv2d_is_torchs_same_padded_cross_correlation():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    for k in (1, 3):
        w = rng.standard_normal((5, 3, k, k)).astype(np.float32)
        b = rng.standard_normal(5).astype(np.float32)
        want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                                          padding=k // 2).numpy()
        np.testing.assert_allclose(conv2d(x, w, b), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("r", [2, 3])
def test_pixel_shuffle_is_torchs_channel_order(r):
    x = np.arange(2 * 2 * r * r * 3 * 4, dtype=np.float32).reshape(2, 2 * r * r, 3, 4)
    np.testing.assert_array_equal(pixel_shuffle(x, r), torch.nn.functional.pixel_shuffle(torch.from_numpy(x), r))


def test_edsr_forward_matches_the_torch_network():
    from edgeprune.checkpoints.edsr_torch import infer_config
    from edgeprune.checkpoints.torch_reference import build_torch_edsr

    torch.manual_seed(1)
    net = build_torch_edsr(6, [4, 5], [(2, 6), (2, 3)], res_scale=0.5)
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    config = infer_config(sd, "x.pt", res_scale=0.5)
    x = np.random.default_rng(1).uniform(0, 255, (1, 3, 8, 9)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = edsr_forward(sd, config, x)
    assert got.shape == (1, 3, 32, 36)
    assert np.max(np.abs(got - want)) / np.max(np.abs(want)) < 1e-5
