"""2D Attention U-Net: a U-Net whose encoder skips pass through additive attention gates.

Reference: O. Oktay, J. Schlemper, L. Le Folgoc, M. Lee, M. Heinrich, K. Misawa, K. Mori,
S. McDonagh, N. Y. Hammerla, B. Kainz, B. Glocker, D. Rueckert, "Attention U-Net: Learning
Where to Look for the Pancreas", MIDL 2018, arXiv:1804.03999.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from livgui.models.blocks import (
    DoubleConv,
    SegmentationNet,
    conv_bn_relu,
)
from livgui.models.registry import register

__all__ = ["AttentionGate", "AttentionUNet2D"]


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018, Fig. 2) on one encoder skip.

    ``alpha = sigmoid(psi(relu(W_g g + W_x x)))`` with 1 x 1 convolutions (+ batch norm)
    ``W_g``, ``W_x`` to ``inter_ch`` channels and ``psi`` to one channel; the gate returns
    ``x * alpha``. Here the gating signal ``g`` is the decoder map already up-sampled to the
    skip's resolution (the form of the gate in common PyTorch ports, which the study used),
    so no resampling of the coefficients is needed.
    """

    def __init__(self, g_ch: int, x_ch: int, inter_ch: int) -> None:
        super().__init__()
        self.w_g = conv_bn_relu(g_ch, inter_ch, 1, relu=False)
        self.w_x = conv_bn_relu(x_ch, inter_ch, 1, relu=False)
        self.psi = nn.Sequential(*conv_bn_relu(inter_ch, 1, 1, relu=False), nn.Sigmoid())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, g: Tensor, x: Tensor) -> Tensor:
        alpha = self.psi(self.relu(self.w_g(g) + self.w_x(x)))
        return x * alpha


class _AttUp(nn.Module):
    """Up-sample x2 + 3 x 3 conv, gate the skip, concatenate, two conv-BN-ReLU layers."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.up = nn.Sequential(nn.Upsample(scale_factor=2), *conv_bn_relu(in_ch, out_ch))
        self.gate = AttentionGate(out_ch, out_ch, out_ch // 2)
        self.conv = DoubleConv(2 * out_ch, out_ch)

    def forward(self, below: Tensor, skip: Tensor) -> Tensor:
        g = self.up(below)
        return self.conv(torch.cat([self.gate(g, skip), g], dim=1))


@register("attention_unet2d", "Attention U-Net (Oktay et al. 2018): gated skips, 64-1024 wide")
class AttentionUNet2D(SegmentationNet):
    """2D Attention U-Net (Oktay et al., MIDL 2018, arXiv:1804.03999).

    A U-Net with widths ``base_c * 2 ** i`` (64-1024 at the default ``base_c=64``,
    ``depth=4``): each encoder stage is two 3 x 3 conv + batch norm + ReLU after a 2 x 2
    max-pool; each decoder stage up-samples x2 (nearest) followed by a 3 x 3 conv, passes
    the encoder skip through an additive attention gate (:class:`AttentionGate`,
    intermediate width half the skip's) driven by that up-sampled map, concatenates both
    and applies two convs; a 1 x 1 conv gives the logits. About 34.9 M parameters at the
    defaults with 1 input channel and 2 classes.

    Parameters
    ----------
    in_channels : int, optional
        Input channels (default 1; 2.5D: the number of stacked slices).
    num_classes : int
        Output logit channels (default 2).
    base_c : int
        Width of the first stage (default 64).
    depth : int
        Number of down-sampling stages, each with a gated skip (default 4).
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
        base_c: int = 64,
        depth: int = 4,
        context_slices: int | None = None,
    ) -> None:
        super().__init__(
            arch="attention_unet2d",
            spatial_dims=2,
            in_channels=in_channels,
            num_classes=num_classes,
            base_c=base_c,
            depth=depth,
            context_slices=context_slices,
        )
        in_ch = self.in_channels
        w = [base_c * 2**i for i in range(depth + 1)]
        self.inc = DoubleConv(in_ch, w[0])
        self.downs = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), DoubleConv(w[i], w[i + 1])) for i in range(depth)
        )
        self.ups = nn.ModuleList(_AttUp(w[i + 1], w[i]) for i in reversed(range(depth)))
        self.outc = nn.Conv2d(w[0], num_classes, kernel_size=1)

    def forward_padded(self, x: Tensor) -> Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        return self.outc(y)
