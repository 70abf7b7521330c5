"""The one preprocessing definition shared by inference and training.

A :class:`Preprocessing` is recorded in every bundle manifest, so a model is always fed
exactly what it was trained on:

1. HU are clipped to ``hu_window`` (the study mapped every slice to 0-255; the MSD 2D
   slices are HU clipped to [0, 255], i.e. ``hu_window=(0, 255)``);
2. normalised (``"minmax"``: the window to [0, 1]; ``"zscore"``: ``(hu - mean) / std``
   after clipping);
3. resampled in-plane to ``target_size`` pixels (rows, columns) or to ``target_spacing``
   mm per pixel (rows, columns); neither means the native grid;
4. ``context_slices`` neighbours on each side become extra channels (2.5D input:
   ``2 * context_slices + 1`` channels, the centre slice in the middle channel);
5. 3D networks read patches of ``patch_size`` voxels ``(z, y, x)`` (``None`` for 2D).

All arrays here are ``[z, y, x]`` (or ``[batch, channel, y, x]`` tensors).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

__all__ = ["NORMALISATIONS", "Preprocessing", "PreprocessingError"]

NORMALISATIONS = ("minmax", "zscore")


class PreprocessingError(ValueError):
    """A preprocessing description is malformed (names the field and the problem)."""


def _pair(value: Any, name: str, kind: type) -> tuple[Any, Any] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise PreprocessingError(f"{name} must be a pair, got {value!r}")
    try:
        a, b = kind(value[0]), kind(value[1])
    except (TypeError, ValueError):
        raise PreprocessingError(f"{name} must hold numbers, got {value!r}") from None
    if not (math.isfinite(float(a)) and math.isfinite(float(b))):
        raise PreprocessingError(f"{name} must be finite, got {value!r}")
    return (a, b)


@dataclass(frozen=True)
class Preprocessing:
    """How HU become a network input (see the module docstring for the steps).

    Attributes
    ----------
    hu_window
        ``(low, high)`` HU clip window.
    normalisation
        ``"minmax"`` (window to [0, 1]) or ``"zscore"`` (uses ``mean``/``std`` in HU).
    mean, std
        Z-score parameters in HU (ignored for ``"minmax"``).
    target_size
        In-plane network grid ``(rows, columns)`` in pixels, or ``None``.
    target_spacing
        In-plane pixel size ``(row, column)`` in mm, or ``None`` (used when no size).
    context_slices
        Neighbouring slices on each side given as extra channels (0: plain 2D).
    patch_size
        3D sliding-window patch ``(z, y, x)`` in voxels; ``None`` for 2D networks.
    """

    hu_window: tuple[float, float] = (-200.0, 250.0)
    normalisation: str = "minmax"
    mean: float = 0.0
    std: float = 1.0
    target_size: tuple[int, int] | None = (256, 256)
    target_spacing: tuple[float, float] | None = None
    context_slices: int = 0
    patch_size: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        lo, hi = self.hu_window
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise PreprocessingError(f"hu_window must be finite with high > low: {self.hu_window}")
        if self.normalisation not in NORMALISATIONS:
            raise PreprocessingError(
                f"normalisation must be one of {NORMALISATIONS}, got {self.normalisation!r}"
            )
        if self.normalisation == "zscore" and not (math.isfinite(self.std) and self.std > 0):
            raise PreprocessingError(f"std must be positive, got {self.std}")
        if self.target_size is not None and min(self.target_size) < 1:
            raise PreprocessingError(f"target_size must be positive, got {self.target_size}")
        if self.target_spacing is not None and min(self.target_spacing) <= 0:
            raise PreprocessingError(f"target_spacing must be positive: {self.target_spacing}")
        if self.context_slices < 0:
            raise PreprocessingError(f"context_slices must be >= 0, got {self.context_slices}")
        if self.patch_size is not None and (len(self.patch_size) != 3 or min(self.patch_size) < 1):
            raise PreprocessingError(f"patch_size must be 3 positive ints: {self.patch_size}")

    # -- serialisation -------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_json(cls, data: Any) -> Preprocessing:
        """Strictly parse :meth:`to_json` output; unknown or malformed fields raise."""
        if not isinstance(data, dict):
            raise PreprocessingError(f"preprocessing must be an object, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise PreprocessingError(f"unknown preprocessing fields: {', '.join(unknown)}")
        kw: dict[str, Any] = {}
        if "hu_window" in data:
            kw["hu_window"] = _pair(data["hu_window"], "hu_window", float)
        if "normalisation" in data:
            kw["normalisation"] = str(data["normalisation"])
        for key in ("mean", "std"):
            if key in data:
                kw[key] = _number(data[key], key)
        if "target_size" in data:
            kw["target_size"] = _pair(data["target_size"], "target_size", int)
        if "target_spacing" in data:
            kw["target_spacing"] = _pair(data["target_spacing"], "target_spacing", float)
        if "context_slices" in data:
            kw["context_slices"] = int(_number(data["context_slices"], "context_slices"))
        if data.get("patch_size") is not None:
            ps = data["patch_size"]
            if not isinstance(ps, list | tuple) or len(ps) != 3:
                raise PreprocessingError(f"patch_size must be 3 ints, got {ps!r}")
            kw["patch_size"] = tuple(int(v) for v in ps)
        return cls(**kw)

    # -- the steps -----------------------------------------------------------------
    @property
    def in_channels(self) -> int:
        """Number of input channels the network expects."""
        return 2 * self.context_slices + 1

    @property
    def background_value(self) -> float:
        """Normalised value of the window's low end (what masked-out voxels become)."""
        return float(self.normalise(np.array([self.hu_window[0]], dtype=np.float32))[0])

    def normalise(self, hu: NDArray[Any]) -> NDArray[np.float32]:
        """Clip HU to the window and normalise; returns float32 of the same shape."""
        lo, hi = self.hu_window
        x = np.clip(np.asarray(hu, dtype=np.float32), lo, hi)
        if self.normalisation == "minmax":
            return ((x - lo) / (hi - lo)).astype(np.float32, copy=False)
        return ((x - self.mean) / self.std).astype(np.float32, copy=False)

    def normalise_tensor(self, hu: torch.Tensor) -> torch.Tensor:
        """Torch version of :meth:`normalise` (any shape, float result)."""
        lo, hi = self.hu_window
        x = hu.float().clamp(lo, hi)
        if self.normalisation == "minmax":
            return (x - lo) / (hi - lo)
        return (x - self.mean) / self.std

    def model_grid(
        self, shape_yx: tuple[int, int], spacing_yx: tuple[float, float]
    ) -> tuple[int, int]:
        """In-plane size ``(rows, columns)`` the network sees for a slice of ``shape_yx``."""
        if self.target_size is not None:
            return (int(self.target_size[0]), int(self.target_size[1]))
        if self.target_spacing is not None:
            return (
                max(1, round(shape_yx[0] * spacing_yx[0] / self.target_spacing[0])),
                max(1, round(shape_yx[1] * spacing_yx[1] / self.target_spacing[1])),
            )
        return (int(shape_yx[0]), int(shape_yx[1]))

    def context_indices(self, z: int, depth: int) -> list[int]:
        """Slice indices feeding the channels for centre slice ``z`` (edges repeated)."""
        k = self.context_slices
        return [min(max(z + d, 0), depth - 1) for d in range(-k, k + 1)]


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PreprocessingError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise PreprocessingError(f"{name} must be finite, got {value!r}")
    return float(value)


def resize_planes(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``[batch, channel, y, x]`` in-plane to ``size`` (bilinear, pixel centres kept).

    ``align_corners=False`` keeps pixel centres aligned for both directions, so a down- and
    up-sampling round trip does not shift the image.  Shrinking by more than 2x uses
    anti-aliasing (plain bilinear would skip pixels); up to 2x plain bilinear already
    averages every input pixel and blurs less.
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] * 2 < x.shape[-2] or size[1] * 2 < x.shape[-1]
    if shrink and x.device.type in ("cpu", "cuda"):
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


__all__ += ["resize_planes"]
