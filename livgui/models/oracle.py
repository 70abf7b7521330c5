"""Oracle networks: hand-set weights that threshold HU, to prove geometry end to end.

A random network cannot reveal a flipped, transposed or shifted mask; a network whose
output is known in closed form can.  ``oracle_threshold`` is a single 1x1 convolution whose
weights are set by hand so that, on the normalised centre channel ``x``,

* class 1 wins where ``x > t1`` (e.g. "body above -200 HU" for a liver stage),
* class 2 (three-class models) wins where ``x > t2 > t1`` (e.g. "bone above 300 HU").

The logits are ``l0 = 0``, ``l1 = g (x - t1)``, ``l2 = g (x - t1) + g (x - t2)`` with a
gain ``g``: smooth, so resampling the logits behaves like resampling a real network's.
:func:`oracle_bundle` turns HU thresholds into such a bundle for a given preprocessing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from livgui.models.preprocess import Preprocessing
from livgui.models.registry import build, register

if TYPE_CHECKING:
    from livgui.models.bundle import Bundle

__all__ = ["OracleThreshold", "oracle_bundle"]


@register("oracle_threshold", "Hand-set HU threshold (1x1 conv): geometry tests only")
class OracleThreshold(nn.Module):
    """1x1 convolution thresholding the centre input channel (2D or 3D input).

    Parameters
    ----------
    in_channels
        Input channels (2.5D context); only the centre one is used.
    num_classes
        2 (one threshold) or 3 (two increasing thresholds).
    thresholds
        Thresholds in *normalised* input units, increasing, ``num_classes - 1`` of them.
    gain
        Logit slope per normalised unit.
    spatial_dims
        2 for slices ``[b, c, y, x]``, 3 for patches ``[b, c, z, y, x]``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        thresholds: tuple[float, ...] | list[float] = (0.5,),
        gain: float = 50.0,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        ts = [float(t) for t in thresholds]
        if num_classes not in (2, 3) or len(ts) != num_classes - 1 or ts != sorted(ts):
            raise ValueError(
                "oracle needs num_classes in (2, 3) and that many - 1 increasing thresholds"
            )
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        self.conv = conv(in_channels, num_classes, kernel_size=1)
        centre = in_channels // 2
        weight, bias = self.conv.weight, self.conv.bias
        assert bias is not None
        with torch.no_grad():
            weight.zero_()
            bias.zero_()
            for cls in range(1, num_classes):
                # class c sums the ramps of thresholds 1..c
                for t in ts[:cls]:
                    weight[cls, centre] += gain
                    bias[cls] -= gain * t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(x)
        return out


def oracle_bundle(
    name: str,
    stage: str,
    hu_thresholds: tuple[float, ...],
    preprocessing: Preprocessing,
    gain: float = 50.0,
) -> tuple[Bundle, nn.Module]:
    """An oracle bundle (not yet saved) and its network for HU thresholds.

    The thresholds must lie inside ``preprocessing.hu_window``; they are converted to the
    normalised units the network sees.
    """
    from livgui.models.bundle import Bundle  # bundle imports this module (registration)

    lo, hi = preprocessing.hu_window
    if not all(lo < t < hi for t in hu_thresholds):
        raise ValueError(f"thresholds {hu_thresholds} must lie inside the window {(lo, hi)}")
    norm = preprocessing.normalise(torch.tensor(hu_thresholds).numpy()).tolist()
    hp = {
        "in_channels": preprocessing.in_channels,
        "num_classes": len(hu_thresholds) + 1,
        "thresholds": [float(t) for t in norm],
        "gain": gain,
        "spatial_dims": 3 if preprocessing.patch_size is not None else 2,
    }
    names = {"liver": ["background", "liver"], "lesion": ["background", "lesion"]}
    labels = names.get(stage, ["background", "liver", "lesion"])
    bundle = Bundle(
        name=name,
        architecture="oracle_threshold",
        hyperparameters=hp,
        stage=stage,
        labels=dict(enumerate(labels[: len(hu_thresholds) + 1])),
        preprocessing=preprocessing,
        provenance={"kind": "oracle", "hu_thresholds": list(hu_thresholds)},
    )
    return bundle, build("oracle_threshold", **hp)
