"""The PyTorch reference network is EDSR-PyTorch's: the same state-dict keys and shapes (its src/model/edsr.py and
common.py) and the same forward pass as its definition (mean shift, residual blocks with res_scale, body skip, pixel
shuffle)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgeprune.checkpoints.edsr_torch import expected_shapes, infer_config  # noqa: E402
from edgeprune.checkpoints.torch_reference import build_torch_edsr  # noqa: E402


def test_baseline_x2_has_edsr_pytorchs_keys_and_shapes():
    sd = build_torch_edsr(64, [64] * 16, [(2, 64)]).state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    assert len(shapes) == 2 * (2 + 1 + 32 + 1 + 1 + 1)  # mean shifts, head, 16x2 block convs, body end, up, tail
    assert shapes["head.0.weight"] == (64, 3, 3, 3)
    assert all(shapes[f"body.{i}.body.{j}.weight"] == (64, 64, 3, 3) for i in range(16) for j in (0, 2))
    assert shapes["body.16.weight"] == (64, 64, 3, 3) and shapes["tail.0.0.weight"] == (256, 64, 3, 3)
    assert shapes["tail.1.weight"] == (3, 64, 3, 3) and shapes["sub_mean.weight"] == (3, 3, 1, 1)
    np.testing.assert_allclose(sd["sub_mean.bias"].numpy(), -255 * np.array([0.4488, 0.4371, 0.4040]), rtol=1e-6)
    config = infer_config({k: v.numpy() for k, v in sd.items()}, "x.pt")
    assert expected_shapes(config) == shapes
    assert sum(v.numel() for k, v in sd.items() if "mean" not in k) == 1_367_424 + 2_435  # kernels + biases


def test_x4_has_two_x2_stages_and_x3_one_x3_stage():
    x4 = build_torch_edsr(8, [8], [(2, 8), (2, 8)]).state_dict()
    assert tuple(x4["tail.0.0.weight"].shape) == tuple(x4["tail.0.2.weight"].shape) == (32, 8, 3, 3)
    x3 = build_torch_edsr(8, [8], [(3, 8)]).state_dict()
    assert tuple(x3["tail.0.0.weight"].shape) == (72, 8, 3, 3) and "tail.0.2.weight" not in x3


def test_forward_is_edsr_pytorchs_written_out():
    torch.manual_seed(0)
    net = build_torch_edsr(4, [4, 4], [(2, 4)], res_scale=0.1)
    F = torch.nn.functional
    p = dict(net.named_parameters())

    def conv(key, x):
        w = p[f"{key}.weight"]
        return F.conv2d(x, w, p[f"{key}.bias"], padding=w.shape[-1] // 2)

    x = torch.rand(1, 3, 6, 5) * 255
    head = conv("head.0", conv("sub_mean", x))
    res = head
    for i in range(2):
        res = conv(f"body.{i}.body.2", F.relu(conv(f"body.{i}.body.0", res))) * 0.1 + res
    res = conv("body.2", res) + head
    want = conv("add_mean", conv("tail.1", F.pixel_shuffle(conv("tail.0.0", res), 2)))
    with torch.no_grad():
        torch.testing.assert_close(net(x), want.detach())
