"""2D ResUNet++: residual U-Net with squeeze-excitation, ASPP and attention.

Reference: D. Jha, P. H. Smedsrud, M. A. Riegler, D. Johansen, T. de Lange, P. Halvorsen,
H. D. Johansen, "ResUNet++: An Advanced Architecture for Medical Image Segmentation",
IEEE International Symposium on Multimedia (ISM) 2019, pp. 225-230, arXiv:1911.07067.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from livgui.models.blocks import SegmentationNet
from livgui.models.registry import register

__all__ = ["ASPP", "ResUNetPP2D"]


def _bn_relu_conv(in_ch: int, out_ch: int, stride: int = 1, *, bias: bool = True) -> nn.Sequential:
    """Pre-activation unit: batch norm, ReLU, 3 x 3 conv."""
    return nn.Sequential(
        nn.BatchNorm2d(in_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=bias),
    )


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): channel gates from global average pooling.

    Two bias-free fully connected layers ``ch -> ch // ratio -> ch`` (ReLU, sigmoid).
    """

    def __init__(self, ch: int, ratio: int = 8) -> None:
        super().__init__()
        hidden = max(1, ch // ratio)
        self.fc = nn.Sequential(
            nn.Linear(ch, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, ch, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        gate = self.fc(x.mean(dim=(2, 3)))
        return x * gate[:, :, None, None]


class _ResidualBlock(nn.Module):
    """Residual unit + SE: two BN-ReLU-conv units, 1 x 1 conv + BN shortcut, sum, SE.

    ``stem=True`` gives the paper's first block: conv-BN-ReLU-conv on the raw input (no
    leading pre-activation). ``stride=2`` halves the resolution in the first conv and the
    shortcut.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, *, stem: bool = False) -> None:
        super().__init__()
        first: nn.Module
        if stem:
            first = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
            )
        else:
            first = _bn_relu_conv(in_ch, out_ch, stride, bias=False)
        self.body = nn.Sequential(first, _bn_relu_conv(out_ch, out_ch))
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
        )
        self.se = SqueezeExcite(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return self.se(self.body(x) + self.shortcut(x))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (Chen et al. 2018) as ResUNet++ uses it.

    Four parallel 3 x 3 convolutions + batch norm at dilation rates 6, 12, 18 and 1,
    summed, then a 1 x 1 convolution.
    """

    def __init__(self, in_ch: int, out_ch: int, rates: tuple[int, ...] = (6, 12, 18, 1)) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 3, padding=r, dilation=r, bias=False),
                nn.BatchNorm2d(out_ch),
            )
            for r in rates
        )
        self.project = nn.Conv2d(out_ch, out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.branches[0](x)
        for branch in self.branches[1:]:
            y = y + branch(x)
        return self.project(y)


class _DecoderAttention(nn.Module):
    """ResUNet++ attention: weights the coarser decoder map ``x`` by the finer skip ``g``.

    ``g`` (BN-ReLU-conv, then 2 x 2 max-pool to ``x``'s scale) plus ``x`` (BN-ReLU-conv),
    then BN-ReLU-conv; the result multiplies ``x`` element-wise.
    """

    def __init__(self, g_ch: int, x_ch: int) -> None:
        super().__init__()
        self.g = nn.Sequential(_bn_relu_conv(g_ch, x_ch), nn.MaxPool2d(2))
        self.x = _bn_relu_conv(x_ch, x_ch)
        self.out = _bn_relu_conv(x_ch, x_ch)

    def forward(self, g: Tensor, x: Tensor) -> Tensor:
        return self.out(self.g(g) + self.x(x)) * x


class _DecoderStage(nn.Module):
    """Attention, nearest x2 up-sampling, concatenation with the skip, residual block."""

    def __init__(self, x_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.attention = _DecoderAttention(skip_ch, x_ch)
        self.up = nn.Upsample(scale_factor=2)
        self.block = _ResidualBlock(x_ch + skip_ch, out_ch)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        y = self.up(self.attention(skip, x))
        return self.block(torch.cat([y, skip], dim=1))


@register("resunetpp2d", "ResUNet++ (Jha et al. 2019): residual + SE encoder, ASPP, attention")
class ResUNetPP2D(SegmentationNet):
    """2D ResUNet++ (Jha et al., IEEE ISM 2019, arXiv:1911.07067).

    As in the paper's Fig. 2: a stem block (two 3 x 3 convs with a 1 x 1 shortcut) of
    ``base_c`` channels (16), ``depth`` (3) stride-2 residual blocks of ``base_c * 2 ** i``
    channels (32/64/128), each block followed by squeeze-excitation; an ASPP bridge of
    ``base_c * 2 ** (depth + 1)`` channels (256); ``depth`` decoder stages of attention
    (encoder skip x decoder map), nearest x2 up-sampling, concatenation with the skip and
    a residual block (128/64/32); then ASPP to ``base_c`` channels (16) and a 1 x 1 conv
    to the logits. The layer details (SE ratio 8, ASPP rates 6/12/18 plus a plain 3 x 3
    branch, the attention unit's BN-ReLU-conv layers) follow the authors' reference code;
    convolutions directly followed by batch norm carry no bias. 4,060,674 trainable
    parameters at the defaults with 1 input channel and 2 classes (derived in
    ``docs/networks.md``; the paper states no count).

    Parameters
    ----------
    in_channels : int, optional
        Input channels (default 1; 2.5D: the number of stacked slices).
    num_classes : int
        Output logit channels (default 2).
    base_c : int
        Stem width (default 16).
    depth : int
        Number of stride-2 residual blocks (default 3).
    context_slices : int, optional
        2.5D input: ``in_channels = 2 * context_slices + 1``.

    Input ``N x in_channels x H x W`` (any H, W; multiples of ``2 ** depth`` need no
    internal padding), output logits ``N x num_classes x H x W``.
    """

    def __init__(
        self,
        in_channels: int | None = None,
        num_classes: int = 2,
        *,
        base_c: int = 16,
        depth: int = 3,
        context_slices: int | None = None,
    ) -> None:
        super().__init__(
            arch="resunetpp2d",
            spatial_dims=2,
            in_channels=in_channels,
            num_classes=num_classes,
            base_c=base_c,
            depth=depth,
            context_slices=context_slices,
        )
        in_ch = self.in_channels
        w = [base_c * 2**i for i in range(depth + 2)]
        self.stem = _ResidualBlock(in_ch, w[0], stem=True)
        self.encoder = nn.ModuleList(
            _ResidualBlock(w[i - 1], w[i], stride=2) for i in range(1, depth + 1)
        )
        self.bridge = ASPP(w[depth], w[depth + 1])
        self.decoder = nn.ModuleList(
            _DecoderStage(w[depth + 1] if k == depth else w[k + 1], w[k - 1], w[k])
            for k in range(depth, 0, -1)
        )
        self.head = nn.Sequential(ASPP(w[1], w[0]), nn.Conv2d(w[0], num_classes, 1))

    def forward_padded(self, x: Tensor) -> Tensor:
        skips = [self.stem(x)]
        for block in self.encoder:
            skips.append(block(skips[-1]))
        y = self.bridge(skips.pop())
        for stage in self.decoder:
            y = stage(y, skips.pop())
        return self.head(y)
