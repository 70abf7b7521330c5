"""2D U-Net in the configurable form the study used.

Reference: O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for
Biomedical Image Segmentation", MICCAI 2015, LNCS 9351, pp. 234-241, arXiv:1505.04597.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from livgui.models.blocks import DoubleConv, SegmentationNet
from livgui.models.registry import register

__all__ = ["UNet2D"]


class _Up(nn.Module):
    """Up-sample the coarser map x2, concatenate the skip, two conv-BN-ReLU layers."""

    def __init__(self, in_ch: int, out_ch: int, *, bilinear: bool) -> None:
        super().__init__()
        self.up: nn.Module
        if bilinear:
            # The coarser map already has in_ch // 2 channels (the skip's width).
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(in_ch, out_ch, in_ch // 2)
        else:
            self.up = nn.ConvTranspose2d(in_ch, in_ch // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_ch, out_ch)

    def forward(self, below: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([skip, self.up(below)], dim=1))


@register("unet2d", "U-Net (Ronneberger et al. 2015), the study's base_c/depth/bilinear variant")
class UNet2D(SegmentationNet):
    """2D U-Net (Ronneberger et al., MICCAI 2015, arXiv:1505.04597), the study's variant.

    ``depth`` down-sampling stages (2 x 2 max-pool, then two padded 3 x 3 conv + batch norm
    + ReLU), as many up-sampling stages (up-sample x2, concatenate the encoder skip, two
    convs) and a 1 x 1 output convolution. Stage widths are
    ``base_c * (1, 2, ..., 2 ** (depth - 1), 2 ** depth // factor)`` with ``factor = 2``
    when ``bilinear`` (bilinear up-sampling followed by the convs, as in the widely used
    PyTorch U-Net the study trained) and ``factor = 1`` otherwise (2 x 2 transposed
    convolutions, as in the paper). Padded convolutions replace the paper's valid ones so
    the output has the input's size.

    Parameters
    ----------
    in_channels : int, optional
        Input channels (default 1; 2.5D: the number of stacked slices).
    num_classes : int
        Output logit channels (default 2).
    base_c : int
        Width of the first stage (default 64; 16 is the CPU-sized model).
    depth : int
        Number of down-sampling stages (default 4).
    bilinear : bool
        Bilinear up-sampling (default, about 17.3 M parameters at base 64) or transposed
        convolutions (about 31.0 M).
    context_slices : int, optional
        2.5D input: neighbours on each side of the segmented slice, so
        ``in_channels = 2 * context_slices + 1``.

    Input ``N x in_channels x H x W`` (any H, W; multiples of ``2 ** depth`` need no
    internal padding), output logits ``N x num_classes x H x W``.
    """

    def __init__(
        self,
        in_channels: int | None = None,
        num_classes: int = 2,
        *,
        base_c: int = 64,
        depth: int = 4,
        bilinear: bool = True,
        context_slices: int | None = None,
    ) -> None:
        super().__init__(
            arch="unet2d",
            spatial_dims=2,
            in_channels=in_channels,
            num_classes=num_classes,
            base_c=base_c,
            depth=depth,
            bilinear=bilinear,
            context_slices=context_slices,
        )
        in_ch = self.in_channels
        factor = 2 if bilinear else 1
        w = [base_c * 2**i for i in range(depth + 1)]
        self.inc = DoubleConv(in_ch, w[0])
        self.downs = nn.ModuleList(
            nn.Sequential(
                nn.MaxPool2d(2), DoubleConv(w[i], w[i + 1] // (factor if i == depth - 1 else 1))
            )
            for i in range(depth)
        )
        self.ups = nn.ModuleList(
            _Up(w[i + 1], w[i] // factor if i > 0 else w[0], bilinear=bilinear)
            for i in reversed(range(depth))
        )
        self.outc = nn.Conv2d(w[0], num_classes, kernel_size=1)

    def forward_padded(self, x: Tensor) -> Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        return self.outc(y)
