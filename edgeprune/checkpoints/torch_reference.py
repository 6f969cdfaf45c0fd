"""EDSR as EDSR-PyTorch defines it (``src/model/edsr.py`` and ``common.py``), in PyTorch: the reference every EDSR
import is checked against.

The module tree is EDSR-PyTorch's, so its ``state_dict()`` has the same keys: ``sub_mean`` and ``add_mean`` (fixed
1x1 convs: weight identity / std, bias sign * rgb_range * mean / std), ``head.0``, ``body.{i}.body.{0,2}`` (conv,
ReLU, conv; the block computes ``body(x) * res_scale + x``), ``body.{n}``, ``tail.0.{2k}`` (upsampler conv, then
``nn.PixelShuffle``; one x3 stage or several x2 stages) and ``tail.1``. Widths may differ per block and per
upsampler stage (pruned or fine-tuned variants); with the defaults it is EDSR-PyTorch's network. Needs torch.
"""

from collections.abc import Sequence

from edgeprune.checkpoints.state_dict import torch_or_explain
from keras_models.edsr import DIV2K_RGB_MEAN


def build_torch_edsr(num_features: int, block_features: Sequence[int], upsample: Sequence[tuple[int, int]],
                     n_colors: int = 3, res_scale: float = 1.0, rgb_range: float = 255.0,
                     rgb_mean: Sequence[float] | None = DIV2K_RGB_MEAN):
    """The EDSR-PyTorch network (``torch.nn.Module``, eval mode). ``upsample`` lists (factor, width after the
    shuffle) per stage; ``rgb_mean=None`` leaves out the mean shifts."""
    torch = torch_or_explain("checking an EDSR import against EDSR-PyTorch")
    nn = torch.nn

    def conv(in_channels, out_channels, kernel_size=3):
        return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=True)

    class MeanShift(nn.Conv2d):
        def __init__(self, sign):
            super().__init__(n_colors, n_colors, kernel_size=1)
            self.weight.data = torch.eye(n_colors).view(n_colors, n_colors, 1, 1)
            self.bias.data = sign * rgb_range * torch.tensor(list(rgb_mean), dtype=torch.float32)
            for p in self.parameters():
                p.requires_grad = False

    class ResBlock(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.body = nn.Sequential(conv(num_features, inner), nn.ReLU(True), conv(inner, num_features))
            self.res_scale = res_scale

        def forward(self, x):
            res = self.body(x).mul(self.res_scale)
            res += x
            return res

    class EDSR(nn.Module):
        def __init__(self):
            super().__init__()
            if rgb_mean is not None:
                self.sub_mean = MeanShift(-1)
                self.add_mean = MeanShift(1)
            self.head = nn.Sequential(conv(n_colors, num_features))
            self.body = nn.Sequential(*[ResBlock(w) for w in block_features], conv(num_features, num_features))
            stages, width = [], num_features
            for factor, out in upsample:
                stages += [conv(width, factor * factor * out), nn.PixelShuffle(factor)]
                width = out
            self.tail = nn.Sequential(nn.Sequential(*stages), conv(width, n_colors))

        def forward(self, x):
            if rgb_mean is not None:
                x = self.sub_mean(x)
            x = self.head(x)
            res = self.body(x)
            res += x
            x = self.tail(res)
            if rgb_mean is not None:
                x = self.add_mean(x)
            return x

    return EDSR().eval()
