"""Building blocks shared by the segmentation networks of :mod:`livgui.models`.

Everything here is a plain :class:`torch.nn.Module` (no TorchScript, no custom autograd),
works for 2D (``N x C x H x W``) and 3D (``N x C x D x H x W``) tensors where a ``dims``
argument is taken, and accepts ``torch.channels_last`` inputs.

Convolutions directly followed by batch normalisation carry no bias: the normalisation's
own shift makes it redundant, so dropping it saves parameters and a memory pass without
changing what the network can represent.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = [
    "DoubleConv",
    "SegmentationNet",
    "conv_bn_relu",
    "crop_to",
    "fold_batchnorm",
    "pad_to_multiple",
    "resolve_in_channels",
]

_CONV: dict[int, type[nn.Module]] = {2: nn.Conv2d, 3: nn.Conv3d}
_BN: dict[int, type[nn.Module]] = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def conv_nd(dims: int) -> type[nn.Module]:
    """``nn.Conv2d`` for ``dims == 2``, ``nn.Conv3d`` for ``dims == 3``."""
    return _CONV[dims]


def bn_nd(dims: int) -> type[nn.Module]:
    """``nn.BatchNorm2d`` or ``nn.BatchNorm3d``."""
    return _BN[dims]


def conv_bn_relu(
    in_ch: int, out_ch: int, kernel: int = 3, *, dims: int = 2, relu: bool = True
) -> nn.Sequential:
    """``kernel``-sized 'same' convolution (no bias), batch norm and (in-place) ReLU."""
    layers: list[nn.Module] = [
        conv_nd(dims)(in_ch, out_ch, kernel, padding=kernel // 2, bias=False),
        bn_nd(dims)(out_ch),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DoubleConv(nn.Sequential):
    """Two (3 x 3 [x 3] conv, batch norm, ReLU) layers: ``in_ch -> mid_ch -> out_ch``.

    The basic stage of the U-Net family (Ronneberger et al. 2015; Cicek et al. 2016).
    """

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int | None = None, *, dims: int = 2):
        mid = out_ch if mid_ch is None else mid_ch
        super().__init__(
            *conv_bn_relu(in_ch, mid, dims=dims), *conv_bn_relu(mid, out_ch, dims=dims)
        )


def resolve_in_channels(in_channels: int | None, context_slices: int | None) -> int:
    """Number of input channels from ``in_channels`` and/or 2.5D ``context_slices``.

    A 2.5D model sees the slice being segmented plus ``context_slices`` neighbours on each
    side stacked as channels, so ``k = 2 * context_slices + 1``. Giving both is allowed
    only when they agree; giving neither means one channel.

    Raises
    ------
    ValueError
        Negative context, non-positive channel count, or the two disagree.
    """
    if context_slices is not None:
        if context_slices < 0:
            raise ValueError(f"context_slices must be >= 0, got {context_slices}")
        k = 2 * context_slices + 1
        if in_channels is not None and in_channels != k:
            raise ValueError(
                f"in_channels={in_channels} contradicts context_slices={context_slices} "
                f"(which means {k} channels)"
            )
        return k
    n = 1 if in_channels is None else in_channels
    if n < 1:
        raise ValueError(f"in_channels must be >= 1, got {n}")
    return n


def check_positive(**values: int) -> None:
    """Raise ``ValueError`` naming the first hyper-parameter that is not >= 1."""
    for name, v in values.items():
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad the spatial axes of ``x`` at their high end up to a multiple of ``multiple``.

    Edge values are replicated (so a normalised CT border does not meet an artificial zero
    step). ``x`` itself is returned, without a copy, when no padding is needed.
    """
    spatial = x.shape[2:]
    extra = [(-s) % multiple for s in spatial]
    if not any(extra):
        return x
    pad: list[int] = []
    for e in reversed(extra):  # F.pad lists the last axis first
        pad += [0, e]
    return F.pad(x, pad, mode="replicate")


def crop_to(x: Tensor, size: torch.Size | tuple[int, ...]) -> Tensor:
    """The low-end ``size`` region of the spatial axes of ``x`` (a view, no copy)."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    index = (slice(None), slice(None), *(slice(0, s) for s in size))
    return x[index]


class SegmentationNet(nn.Module):
    """Common base: input checks, internal padding and the hyper-parameter record.

    Subclasses implement :meth:`forward_padded` for inputs whose spatial sizes are
    multiples of :attr:`size_divisor`; :meth:`forward` accepts any size, pads the high end
    of each spatial axis by edge replication when needed and crops the logits back, so the
    output always has the input's spatial size.

    Attributes
    ----------
    arch : str
        Registry key of the network.
    spatial_dims : int
        2 (input ``N x C x H x W``) or 3 (input ``N x C x D x H x W``).
    in_channels, num_classes : int
        Input channels (2.5D: slices) and output logit channels.
    size_divisor : int
        Spatial sizes that are multiples of this need no internal padding (``2 ** depth``).
    hparams : dict
        The resolved keyword hyper-parameters; ``registry.build(arch, **hparams)``
        rebuilds the same architecture.
    """

    def __init__(
        self,
        *,
        arch: str,
        spatial_dims: int,
        in_channels: int | None,
        num_classes: int,
        base_c: int,
        depth: int,
        **options: Any,
    ) -> None:
        """Resolve the input channels (2.5D ``context_slices`` among ``options``), check the
        widths and record every hyper-parameter; subclasses build their layers after this
        with :attr:`in_channels`."""
        super().__init__()
        in_ch = resolve_in_channels(in_channels, options.get("context_slices"))
        check_positive(num_classes=num_classes, base_c=base_c, depth=depth)
        self.arch = arch
        self.spatial_dims = spatial_dims
        self.in_channels = in_ch
        self.num_classes = num_classes
        self.size_divisor = 2**depth
        self.hparams: dict[str, Any] = {
            "in_channels": in_ch,
            "num_classes": num_classes,
            "base_c": base_c,
            "depth": depth,
            **options,
        }

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is a batch of this network's input layout."""
        want = 2 + self.spatial_dims
        if x.dim() != want or x.shape[1] != self.in_channels:
            axes = "N x C x H x W" if self.spatial_dims == 2 else "N x C x D x H x W"
            raise ValueError(
                f"{self.arch} expects a {axes} tensor with C={self.in_channels}, "
                f"got shape {tuple(x.shape)}"
            )

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``N x num_classes x <spatial size of x>`` (unnormalised scores)."""
        self.check_input(x)
        size = x.shape[2:]
        y = self.forward_padded(pad_to_multiple(x, self.size_divisor))
        return crop_to(y, size)

    def forward_padded(self, x: Tensor) -> Tensor:
        """Logits for ``x`` whose spatial sizes are multiples of :attr:`size_divisor`."""
        raise NotImplementedError


def upsample(x: Tensor, scale: int, mode: str) -> Tensor:
    """Scale the spatial axes of ``x`` by an integer factor (``mode``: nearest/bilinear)."""
    if scale == 1:
        return x
    if mode == "nearest":
        return F.interpolate(x, scale_factor=scale, mode="nearest")
    return F.interpolate(x, scale_factor=scale, mode=mode, align_corners=False)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every batch norm that directly follows a convolution into that convolution.

    For inference only: in evaluation mode a batch norm is a fixed per-channel affine map,
    so ``conv -> bn`` equals one convolution with rescaled weights and a bias. This removes
    a full read-and-write pass over each feature map (about a third of a U-Net's CPU time).
    Batch norms that do not directly follow a convolution inside an ``nn.Sequential``
    (ResUNet++'s pre-activation units) are left in place.

    The model is switched to evaluation mode and modified in place (fold a copy if the
    original is still to be trained or saved: the folded state dict has other keys).

    Returns
    -------
    nn.Module
        ``model`` itself.
    """
    model.train(False)  # evaluation mode
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in itertools.pairwise(names):
            conv, bn = seq._modules[a], seq._modules[b]
            if (
                isinstance(conv, nn.Conv2d | nn.Conv3d)
                and isinstance(bn, nn.BatchNorm2d | nn.BatchNorm3d)
                and bn.running_mean is not None
                and bn.running_var is not None
                and bn.num_features == conv.out_channels
            ):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = nn.Identity()
    return model
