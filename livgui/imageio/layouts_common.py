"""Case records shared by every dataset layout, and small helpers the layouts share.

A *layout* is the way a public dataset stores its images and reference masks on disk
(LiTS, MSD Task03, CHAOS CT, 3D-IRCADb-01, 2D slice folders, TotalSegmentator ...).
:class:`CaseRef` is the cheap description found by scanning a folder (paths only, nothing
decoded); :class:`Case` is the loaded result: the CT volume and its label map
(0 background, 1 liver, 2 lesion) on the same grid.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livgui.core.progress import ProgressFn
from livgui.core.volume import LabelMap, Volume
from livgui.imageio.errors import ImageReadError

if TYPE_CHECKING:
    from livgui.imageio.dicom_scan import SeriesInfo

__all__ = [
    "Case",
    "CaseRef",
    "SeriesChoiceRequired",
    "choose_series",
    "is_hidden",
    "natural_key",
]

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


class SeriesChoiceRequired(ImageReadError):
    """A DICOM source holds several image series: the caller must pick one.

    The GUI catches this to show a picker, then calls again with ``series=`` set to one
    of :attr:`series_list` (a :class:`~livgui.imageio.dicom_scan.SeriesInfo`, its ``key``
    or its SeriesInstanceUID).  Localizers are listed last and never chosen by default.
    """

    def __init__(self, path: str | Path, series_list: Sequence[SeriesInfo]) -> None:
        self.series_list = tuple(series_list)
        labels = "; ".join(s.label for s in self.series_list if not s.is_localizer)
        n = sum(1 for s in self.series_list if not s.is_localizer)
        super().__init__(path, f"holds {n} image series, pick one: {labels}")


def choose_series(
    path: str | Path | Sequence[str | Path],
    series: SeriesInfo | str | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
) -> SeriesInfo:
    """Scan a DICOM folder / zip / DICOMDIR and return the series to read.

    Parameters
    ----------
    series
        ``None``: the only non-localizer series (else :class:`SeriesChoiceRequired`);
        a :class:`SeriesInfo` (returned as is), or a series ``key`` or SeriesInstanceUID.
    """
    from livgui.imageio.dicom_scan import SeriesInfo, scan_dicom

    if isinstance(series, SeriesInfo):
        return series
    result = scan_dicom(path, progress=progress, cancel=cancel)
    shown = path if isinstance(path, str | Path) else "selected files"
    if series is not None:
        for s in result.series:
            if series in (s.key, s.series_uid):
                return s
        raise ImageReadError(shown, f"no series {series!r} here")
    candidates = [s for s in result.series if not s.is_localizer]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates and not result.series:
        why = ", ".join(f"{n} {r}" for r, n in result.skip_counts().items()) or "no files"
        raise ImageReadError(shown, f"no DICOM image series found ({why})")
    raise SeriesChoiceRequired(shown, result.series)
