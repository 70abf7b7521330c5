"""2D UNet 3+ ("UNet+++" in the study): full-scale skip connections.

Reference: H. Huang, L. Lin, R. Tong, H. Hu, Q. Zhang, Y. Iwamoto, X. Han, Y.-W. Chen,
J. Wu, "UNet 3+: A Full-Scale Connected UNet for Medical Image Segmentation", ICASSP 2020,
pp. 1055-1059, arXiv:2004.08790.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from livgui.models.blocks import (
    DoubleConv,
    SegmentationNet,
    conv_bn_relu,
    crop_to,
    pad_to_multiple,
    upsample,
)
from livgui.models.registry import register

__all__ = ["UNet3Plus2D"]


class _Rescale(nn.Module):
    """Bring a map from scale ``src`` to decoder scale ``dst`` (max-pool or bilinear up)."""

    def __init__(self, src: int, dst: int) -> None:
        super().__init__()
        self.src, self.dst = src, dst
        self.pool = nn.MaxPool2d(2 ** (dst - src)) if dst > src else None

    def forward(self, x: Tensor) -> Tensor:
        if self.pool is not None:
            return self.pool(x)
        return upsample(x, 2 ** (self.src - self.dst), "bilinear")


class _FullScaleStage(nn.Module):
    """One decoder stage: every scale rescaled, 3 x 3 conv to ``cat_ch``, concatenated, fused.

    ``sources[j]`` is the channel count of the map at scale ``j`` (encoder maps for
    ``j <= level``, decoder maps above, the bottom encoder map last).
    """

    def __init__(self, level: int, sources: list[int], cat_ch: int) -> None:
        super().__init__()
        self.rescale = nn.ModuleList(_Rescale(j, level) for j in range(len(sources)))
        self.convs = nn.ModuleList(conv_bn_relu(c, cat_ch) for c in sources)
        up_ch = cat_ch * len(sources)
        self.fuse = conv_bn_relu(up_ch, up_ch)

    def forward(self, maps: list[Tensor]) -> Tensor:
        parts = [
            conv(rescale(m))
            for m, rescale, conv in zip(maps, self.rescale, self.convs, strict=True)
        ]
        return self.fuse(torch.cat(parts, dim=1))


@register("unet3plus2d", "UNet 3+ (Huang et al. 2020): full-scale skips, 5 x 64-channel decoder")
class UNet3Plus2D(SegmentationNet):
    """2D UNet 3+ (Huang et al., ICASSP 2020, arXiv:2004.08790).

    A VGG-style encoder of ``depth + 1`` stages (two 3 x 3 conv + batch norm + ReLU each,
    2 x 2 max-pool between; widths ``base_c * (1, 2, 4, 8, 16)`` = 64-1024 at the defaults)
    and ``depth`` decoder stages. Every decoder stage takes *all* scales: finer encoder maps
    max-pooled down, the same-scale encoder map, coarser decoder maps (and the bottom
    encoder map) bilinearly up-sampled; each goes through a 3 x 3 conv to ``base_c``
    channels, the ``depth + 1`` results are concatenated (320 channels at the defaults) and
    fused by a 3 x 3 conv + batch norm + ReLU. The finest decoder map gives the logits
    through a 3 x 3 conv. About 27.0 M parameters at the defaults (1 channel, 2 classes).

    Deep supervision (a 3 x 3 conv head on every decoder stage and on the bottom map,
    up-sampled to full size) and the classification-guided module (CGM: dropout, 1 x 1
    conv, global max-pool, sigmoid on the bottom map, predicting whether the organ is
    present at all) are optional and off by default; see :meth:`forward_deep`.

    Parameters
    ----------
    in_channels : int, optional
        Input channels (default 1; 2.5D: the number of stacked slices).
    num_classes : int
        Output logit channels (default 2).
    base_c : int
        Width of the first encoder stage and of each decoder branch (default 64).
    depth : int
        Number of down-sampling stages (default 4, the paper's five scales).
    deep_supervision : bool
        Build the side-output heads used by :meth:`forward_deep` (default False).
    cgm : bool
        Build the classification-guided module (default False). When on, :meth:`forward`
        zeroes the logits of images the CGM judges empty (all classes tie, so an argmax
        gives class 0, background).
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
        deep_supervision: bool = False,
        cgm: bool = False,
        context_slices: int | None = None,
    ) -> None:
        super().__init__(
            arch="unet3plus2d",
            spatial_dims=2,
            in_channels=in_channels,
            num_classes=num_classes,
            base_c=base_c,
            depth=depth,
            deep_supervision=deep_supervision,
            cgm=cgm,
            context_slices=context_slices,
        )
        in_ch = self.in_channels
        w = [base_c * 2**i for i in range(depth + 1)]
        up_ch = base_c * (depth + 1)
        self.encoder = nn.ModuleList(
            [DoubleConv(in_ch, w[0])]
            + [
                nn.Sequential(nn.MaxPool2d(2), DoubleConv(w[i - 1], w[i]))
                for i in range(1, depth + 1)
            ]
        )
        self.decoder = nn.ModuleList(
            _FullScaleStage(
                level, w[: level + 1] + [up_ch] * (depth - 1 - level) + [w[depth]], base_c
            )
            for level in reversed(range(depth))
        )
        self.outc = nn.Conv2d(up_ch, num_classes, kernel_size=3, padding=1)
        self.side_heads = (
            nn.ModuleList(
                [nn.Conv2d(up_ch, num_classes, 3, padding=1) for _ in range(depth - 1)]
                + [nn.Conv2d(w[depth], num_classes, 3, padding=1)]
            )
            if deep_supervision
            else None
        )
        self.cgm = (
            nn.Sequential(
                nn.Dropout(p=0.5),
                nn.Conv2d(w[depth], 2, kernel_size=1),
                nn.AdaptiveMaxPool2d(1),
                nn.Flatten(),
                nn.Sigmoid(),
            )
            if cgm
            else None
        )

    def _decode(self, x: Tensor) -> tuple[list[Tensor], Tensor | None]:
        """Decoder maps (finest first, bottom encoder map last) and CGM probabilities."""
        enc: list[Tensor] = []
        for stage in self.encoder:
            enc.append(stage(x if not enc else enc[-1]))
        depth = len(enc) - 1
        dec: list[Tensor] = [enc[depth]]  # coarsest first while decoding
        for level, stage in zip(reversed(range(depth)), self.decoder, strict=True):
            dec.insert(0, stage(enc[: level + 1] + dec))
        probs = self.cgm(enc[depth]) if self.cgm is not None else None
        return dec, probs

    @staticmethod
    def _gate(logits: Tensor, probs: Tensor | None) -> Tensor:
        if probs is None:
            return logits
        present = probs.argmax(dim=1).to(logits.dtype)
        return logits * present.view(-1, *([1] * (logits.dim() - 1)))

    def forward_padded(self, x: Tensor) -> Tensor:
        dec, probs = self._decode(x)
        return self._gate(self.outc(dec[0]), probs)

    def forward_deep(self, x: Tensor) -> tuple[list[Tensor], Tensor | None]:
        """All side outputs, for deep-supervised training (needs ``deep_supervision=True``).

        Returns
        -------
        logits : list of Tensor
            ``depth + 1`` maps ``N x num_classes x H x W``: the main output first, then
            each coarser decoder stage and the bottom encoder map, bilinearly up-sampled
            to the input size (not CGM-gated, as in training).
        probs : Tensor or None
            CGM probabilities ``N x 2`` (index 1: organ present), ``None`` without CGM.
        """
        if self.side_heads is None:
            raise ValueError("unet3plus2d was built with deep_supervision=False")
        self.check_input(x)
        size = x.shape[2:]
        dec, probs = self._decode(pad_to_multiple(x, self.size_divisor))
        outs = [self.outc(dec[0])]
        for level, (head, m) in enumerate(zip(self.side_heads, dec[1:], strict=True), start=1):
            outs.append(upsample(head(m), 2**level, "bilinear"))
        return [crop_to(o, size) for o in outs], probs
