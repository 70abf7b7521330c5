"""Case records shared by every dataset layout, and small helpers the layouts share.

A *layout* is the way a public dataset stores its images and reference masks on disk
(LiTS, MSD Task03, CHAOS CT, 3D-IRCADb-01, 2D slice folders, TotalSegmentator ...).
:class:`CaseRef` is the cheap description found by scanning a folder (paths only, nothing
decoded); :class:`Case` is the loaded result: the CT volume and its label map
(0 background, 1 liver, 2 lesion) on the same grid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livgui.core.geometry import Geometry
from livgui.core.volume import LabelMap, Volume
from livgui.imageio.errors import ImageReadError

__all__ = [
    "GEOMETRY_TOLERANCE_MM",
    "Case",
    "CaseRef",
    "check_same_grid",
    "is_hidden",
    "labels_from_values",
    "natural_key",
]

#: Mask and image grids closer than this (affine entries, mm) count as the same grid.
#: TotalSegmentator masks differ from their CT by about 1e-4 mm.
GEOMETRY_TOLERANCE_MM = 1e-2

_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class CaseRef:
    """Where one case of a dataset lives (nothing is read until :func:`load_case`).

    Attributes
    ----------
    case_id
        Short id unique within the dataset (``volume-3``, ``liver_7``, ``3Dircadb1.17``,
        ``10001_103`` ...), built from file or folder names, never from header strings.
    layout
        Layout name (see :data:`livgui.imageio.datasets.LAYOUTS`).
    image_path
        The CT file or folder (NIfTI file, DICOM folder, zip, 2D image file).
    reference_path
        The reference mask file or folder, ``None`` when the case has none.
    extra
        Layout-specific facts (patient id, prediction path, mask folders, flips ...).
    """

    case_id: str
    layout: str
    image_path: Path
    reference_path: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def patient_id(self) -> str | None:
        value = self.extra.get("patient_id")
        return None if value is None else str(value)


@dataclass(eq=False)
class Case:
    """A loaded case: the CT and its label map on the same grid.

    Attributes
    ----------
    volume
        CT in HU, memory order ``(z, y, x)``, LPS.
    reference
        Manual reference label map (0/1/2) aligned with ``volume``, or ``None``.
    warnings
        Everything a reviewer should know about how the case was read (label mapping,
        assumed spacing, collapsed duplicates, geometry tolerances ...).
    patient_id
        Patient grouping key when the layout defines one (for patient-wise splits).
    prediction
        A model output shipped with the data (TotalSegmentator's example segmentations):
        never presented as a manual reference.
    """

    case_id: str
    layout: str
    volume: Volume
    reference: LabelMap | None
    warnings: list[str] = field(default_factory=list)
    patient_id: str | None = None
    prediction: LabelMap | None = None


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders ``image_2`` before ``image_10`` (numbers compared as numbers)."""
    parts = _DIGITS.split(name)
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts))


def is_hidden(path: Path) -> bool:
    """Hidden files and macOS resource forks (``._liver_0.nii.gz`` in the MSD tarball)."""
    return path.name.startswith(".")


def labels_from_values(
    values: NDArray[Any], mapping: Mapping[int, int], path: str | Path
) -> NDArray[np.uint8]:
    """Map file label values to LivGUI labels; values absent from ``mapping`` become 0.

    Parameters
    ----------
    values
        Integer-valued array (any dtype) as stored in the file, memory order.
    mapping
        File value -> LivGUI label (0, 1 or 2).
    path
        Named in the error when ``values`` holds non-integral numbers.
    """
    if np.issubdtype(values.dtype, np.floating):
        finite = np.isfinite(values)
        if not np.all(finite) or np.any(values[finite] != np.round(values[finite])):
            raise ImageReadError(path, "mask holds non-integral values; not a label map")
    out = np.zeros(values.shape, dtype=np.uint8)
    for file_value, label in mapping.items():
        if label:
            out[values == file_value] = label
    return out


def check_same_grid(mask: Geometry, image: Geometry, path: str | Path) -> list[str]:
    """Verify a mask lies on the image grid; returns warnings for tiny differences.

    Raises
    ------
    ImageReadError
        When the shapes differ (both named) or the affines differ by more than
        :data:`GEOMETRY_TOLERANCE_MM`.
    """
    if mask.shape != image.shape:
        raise ImageReadError(
            path, f"mask shape {mask.shape} differs from image shape {image.shape} (z, y, x)"
        )
    delta = float(np.max(np.abs(mask.affine - image.affine)))
    if delta > GEOMETRY_TOLERANCE_MM:
        fields = ", ".join(mask.differences(image)) or "affine"
        raise ImageReadError(
            path, f"mask grid differs from the image grid ({fields}; up to {delta:.3g} mm)"
        )
    if delta > 1e-6:
        return [f"{Path(path).name}: mask affine differs from the image by {delta:.2g} mm"]
    return []
