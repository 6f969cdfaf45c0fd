"""EDSR-PyTorch's forward pass written out in numpy from PyTorch's definitions: the check of an EDSR import when torch
is not installed (a ``.safetensors`` file needs no torch to read).

It works on the state dict exactly as saved (NCHW activations, OIHW kernels applied as PyTorch's ``conv2d``, a
cross-correlation with zero padding ``k // 2``; ``nn.PixelShuffle``'s channel order ``c*r*r + i*r + j``; pixels in
[0, rgb_range]), so it shares nothing with the converted model but the tensors. It is not PyTorch itself; an import
checked by it says so, and with torch installed the check runs in PyTorch.
"""

import numpy as np


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """PyTorch ``F.conv2d(x, weight, bias, padding=k // 2)`` for NCHW ``x`` and OIHW ``weight`` (odd k, stride 1)."""
    n, c, h, w = x.shape
    out, inp, kh, kw = weight.shape
    padded = np.pad(x, ((0, 0), (0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)))
    result = np.zeros((n, out, h, w), np.float32)
    for i in range(kh):
        for j in range(kw):
            # one kernel tap: a matmul over input channels at every position
            result += np.einsum("oc,nchw->nohw", weight[:, :, i, j], padded[:, :, i:i + h, j:j + w], optimize=True)
    return result + bias.reshape(1, out, 1, 1)


def pixel_shuffle(x: np.ndarray, r: int) -> np.ndarray:
    """``nn.PixelShuffle(r)``: input channel ``c*r*r + i*r + j`` -> output channel ``c`` at sub-pixel (i, j)."""
    n, c, h, w = x.shape
    out = c // (r * r)
    return x.reshape(n, out, r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, out, h * r, w * r)


def edsr_forward(sd: dict, config: dict, x: np.ndarray) -> np.ndarray:
    """EDSR-PyTorch's ``EDSR.forward`` on NCHW ``x`` in [0, rgb_range], from the state dict ``sd``."""
    def conv(key, value):
        return conv2d(value, sd[f"{key}.weight"], sd[f"{key}.bias"])

    x = x.astype(np.float32)
    if config["rgb_mean"] is not None:
        x = conv("sub_mean", x)
    x = conv("head.0", x)
    res = x
    for i in range(config["num_blocks"]):
        res = conv(f"body.{i}.body.2", np.maximum(conv(f"body.{i}.body.0", res), 0)) * np.float32(
            config["res_scale"]) + res
    res = conv(f"body.{config['num_blocks']}", res) + x
    for k, (factor, _) in enumerate(config["upsample"]):
        res = pixel_shuffle(conv(f"tail.0.{2 * k}", res), factor)
    out = conv("tail.1", res)
    if config["rgb_mean"] is not None:
        out = conv("add_mean", out)
    return out
