"""3D U-Net for whole-volume segmentation.

Reference: O. Cicek, A. Abdulkadir, S. S. Lienkamp, T. Brox, O. Ronneberger, "3D U-Net:
Learning Dense Volumetric Segmentation from Sparse Annotation", MICCAI 2016, LNCS 9901,
pp. 424-432, arXiv:1606.06650.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from livgui.models.blocks import DoubleConv, SegmentationNet
from livgui.models.registry import register

__all__ = ["UNet3D"]


class _Up3D(nn.Module):
    """2 x 2 x 2 stride-2 transposed conv (width kept), concatenate skip, two convs."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose3d(in_ch, in_ch, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_ch + skip_ch, out_ch, dims=3)

    def forward(self, below: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([skip, self.up(below)], dim=1))


@register("unet3d", "3D U-Net (Cicek et al. 2016): 32-64 ... 256-512, BatchNorm, up-convolutions")
class UNet3D(SegmentationNet):
    """3D U-Net (Cicek et al., MICCAI 2016, arXiv:1606.06650).

    The paper's network: ``depth`` (3) analysis levels of two 3 x 3 x 3 conv + batch norm
    + ReLU, the second doubling the width (32-64, 64-128, 128-256 at ``base_c=32``), each
    followed by 2 x 2 x 2 max-pooling; a bottom level 256-512; ``depth`` synthesis levels
    of a 2 x 2 x 2 stride-2 up-convolution keeping the width, concatenation with the
    analysis skip and two 3 x 3 x 3 convs (256, 128, 64); a 1 x 1 x 1 conv to the classes
    (3, as in the paper and the study). Padded convolutions replace the paper's valid ones,
    so the output has the input's size. With the paper's 3 input channels the layers hold
    the paper's 19,069,955 parameters (see ``docs/networks.md``); with 1 channel this
    module has 19,071,459 (its batch norms carry a learnable scale and shift, its
    convolutions no bias).

    Parameters
    ----------
    in_channels : int, optional
        Input channels (default 1).
    num_classes : int
        Output logit channels (default 3: background, liver, lesion).
    base_c : int
        Width of the first convolution (default 32).
    depth : int
        Number of max-pooling steps (default 3).

    Input ``N x in_channels x D x H x W`` (any size; multiples of ``2 ** depth`` on every
    axis need no internal padding), output logits ``N x num_classes x D x H x W``.
    """

    def __init__(
        self,
        in_channels: int | None = None,
        num_classes: int = 3,
        *,
        base_c: int = 32,
        depth: int = 3,
    ) -> None:
        super().__init__(
            arch="unet3d",
            spatial_dims=3,
            in_channels=in_channels,
            num_classes=num_classes,
            base_c=base_c,
            depth=depth,
        )
        in_ch = self.in_channels
        w = [base_c * 2**i for i in range(depth + 2)]
        self.levels = nn.ModuleList(
            [DoubleConv(in_ch, w[1], w[0], dims=3)]
            + [
                nn.Sequential(nn.MaxPool3d(2), DoubleConv(w[i], w[i + 1], w[i], dims=3))
                for i in range(1, depth + 1)
            ]
        )
        self.ups = nn.ModuleList(
            _Up3D(w[i + 2], w[i + 1], w[i + 1]) for i in reversed(range(depth))
        )
        self.outc = nn.Conv3d(w[1], num_classes, kernel_size=1)

    def forward_padded(self, x: Tensor) -> Tensor:
        skips: list[Tensor] = []
        for level in self.levels:
            skips.append(level(x if not skips else skips[-1]))
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        return self.outc(y)
