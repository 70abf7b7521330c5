"""Volumes and label maps with their geometry (see :mod:`livgui.core.geometry`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livgui.core.geometry import Geometry, Reorientation

__all__ = [
    "BACKGROUND",
    "LABEL_NAMES",
    "LESION",
    "LIVER",
    "LabelMap",
    "SourceInfo",
    "Volume",
    "check_label_values",
]

BACKGROUND = 0
LIVER = 1
LESION = 2
#: LiTS convention; lesion voxels also count as liver for liver Dice.
LABEL_NAMES: dict[int, str] = {BACKGROUND: "background", LIVER: "liver", LESION: "lesion"}

RESEARCH_NOTICE = "research use only, not for diagnosis"  # shown and written everywhere


@dataclass(frozen=True)
class SourceInfo:
    """Where a volume came from and how to write data back in the file's own layout.

    Attributes
    ----------
    path
        The file or folder read (never written by LivGUI).
    format
        ``"nifti"``, ``"dicom"``, ``"nrrd"``, ``"png-slices"`` ...
    reorientation
        How the file array axes were permuted/flipped into memory order.
    file_shape
        Spatial shape of the array as stored in the file.
    header
        Format-specific facts needed to write a matching mask (e.g. NIfTI qform/sform and
        their codes, as plain Python/numpy values).  Opaque to the core.
    warnings
        Human-readable notes produced while reading (tilt, qform/sform mismatch, ...).
    """

    path: str
    format: str
    reorientation: Reorientation = field(default_factory=Reorientation)
    file_shape: tuple[int, ...] = ()
    header: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


@dataclass(eq=False)
class Volume:
    """A CT volume ``data[z, y, x]`` in Hounsfield units with its geometry.

    ``data`` keeps a compact dtype (int16 where the file allows, else float32); use
    :meth:`hu` for a float view.
    """

    data: NDArray[Any]
    geometry: Geometry
    source: SourceInfo | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise ValueError(f"volume must be 3-D (z, y, x), got shape {self.data.shape}")
        if tuple(self.data.shape) != self.geometry.shape:
            raise ValueError(
                f"data shape {self.data.shape} does not match geometry shape {self.geometry.shape}"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.geometry.shape

    @property
    def spacing(self) -> tuple[float, float, float]:
        return self.geometry.spacing

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def hu(self) -> NDArray[np.float32]:
        """The data as float32 HU (a copy unless already float32)."""
        return np.asarray(self.data, dtype=np.float32)

    def finite_range(self) -> tuple[float, float]:
        """Min and max over finite voxels (NaN/Inf ignored); ``(0, 0)`` when none are finite."""
        d = self.data
        if np.issubdtype(d.dtype, np.floating):
            finite = d[np.isfinite(d)]
            if finite.size == 0:
                return (0.0, 0.0)
            return (float(finite.min()), float(finite.max()))
        return (float(d.min()), float(d.max()))

    def has_non_finite(self) -> bool:
        return bool(
            np.issubdtype(self.data.dtype, np.floating) and not np.all(np.isfinite(self.data))
        )


def check_label_values(array: NDArray[Any], allowed: tuple[int, ...] = (0, 1, 2)) -> list[float]:
    """Values in ``array`` that are not allowed labels (sorted; empty when the mask is valid).

    Non-integral floats count as unexpected.  Works in chunks to keep memory flat.
    """
    unexpected: set[float] = set()
    flat = array.reshape(-1)
    step = 1 << 24
    for start in range(0, flat.size, step):
        chunk = flat[start : start + step]
        values = np.unique(chunk)
        for v in values.tolist():
            if v not in allowed:
                unexpected.add(float(v))
    return sorted(unexpected)


@dataclass(eq=False)
class LabelMap:
    """A uint8 label map ``data[z, y, x]`` (0 background, 1 liver, 2 lesion) on a grid."""

    data: NDArray[np.uint8]
    geometry: Geometry
    name: str = ""
    source: SourceInfo | None = None

    def __post_init__(self) -> None:
        if self.data.dtype != np.uint8:
            raise TypeError(f"label map must be uint8, got {self.data.dtype}")
        if tuple(self.data.shape) != self.geometry.shape:
            raise ValueError(
                f"label map shape {self.data.shape} does not match geometry {self.geometry.shape}"
            )

    @classmethod
    def empty_like(cls, volume: Volume, name: str = "") -> LabelMap:
        return cls(np.zeros(volume.shape, dtype=np.uint8), volume.geometry, name=name)

    def liver(self) -> NDArray[np.bool_]:
        """Liver including lesions (labels 1 and 2)."""
        return self.data > 0

    def lesion(self) -> NDArray[np.bool_]:
        return self.data == LESION

    def copy(self, name: str | None = None) -> LabelMap:
        return LabelMap(
            self.data.copy(), self.geometry, self.name if name is None else name, self.source
        )
