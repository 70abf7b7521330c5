"""Reading CT and masks: the one-call facade of :mod:`livgui.imageio`.

Everything returned follows the memory convention of :mod:`livgui.core.geometry`
(``data[z, y, x]``, LPS).  Sources are recognised by content, not by name:

* :func:`load_image` -- a NIfTI or NRRD file, a DICOM folder / zip / DICOMDIR / file, a
  2D PNG/JPEG, or a dataset case folder (:mod:`livgui.imageio.datasets`).  A DICOM source
  with several image series raises :class:`SeriesChoiceRequired` (carrying the series list
  for a picker) unless ``series`` is given; localizers are never the default choice.
* :func:`load_mask` -- NIfTI, NRRD, DICOM SEG, a DICOM mask series (0/255, like
  3D-IRCADb), CHAOS-style PNG slice folders, a 2D PNG; put on the image grid.
* :func:`save_mask` -- a uint8 NIfTI mask in the image's own orientation, atomically.
* :func:`list_cases` / :func:`load_case` / :func:`detect_layout` -- public dataset layouts.

Readers are imported on first use so that ``import livgui.imageio`` stays quick (no
pydicom, nibabel, highdicom or PIL at import time).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livgui.core.progress import ProgressFn
from livgui.imageio.errors import ImageReadError, ImageWriteError, MissingDecoderError
from livgui.imageio.layouts_common import Case, CaseRef, SeriesChoiceRequired

if TYPE_CHECKING:
    from livgui.core.volume import LabelMap, Volume
    from livgui.imageio.dicom_scan import ScanResult, SeriesInfo

__all__ = [
    "Case",
    "CaseRef",
    "ImageReadError",
    "ImageWriteError",
    "MissingDecoderError",
    "SeriesChoiceRequired",
    "detect_layout",
    "list_cases",
    "list_series",
    "load_case",
    "load_cases",
    "load_image",
    "load_mask",
    "pair_case",
    "save_mask",
    "scan_dicom",
]

CancelFn = Callable[[], bool]


def load_image(
    path: str | Path,
    *,
    series: SeriesInfo | str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> Volume:
    """Read a CT volume (HU, ``data[z, y, x]``, LPS) from whatever ``path`` holds.

    Parameters
    ----------
    path
        NIfTI / NRRD file, DICOM file, folder (searched recursively), zip or DICOMDIR, a
        2D PNG/JPEG, or a folder holding one dataset case (its image is read).
    series
        For DICOM sources with several series: a :class:`SeriesInfo` from
        :func:`list_series`, its ``key`` or its SeriesInstanceUID.

    Raises
    ------
    SeriesChoiceRequired
        Several non-localizer series and no ``series`` given; ``err.series_list`` lists
        them for a picker.
    ImageReadError
        Naming the path and the problem (also for a folder holding several cases).
    """
    from livgui.imageio import datasets, layouts_files

    p = Path(path)
    if not p.exists():
        raise ImageReadError(p, "no such file or folder")
    if p.is_dir() and series is None:
        layout = datasets.detect_layout(p)
        if layout in datasets.LAYOUTS:
            refs = datasets.list_cases(p)
            if len(refs) != 1:
                raise ImageReadError(p, f"holds {len(refs)} {layout} cases: open one of them")
            if refs[0].layout == "slices2d":
                return datasets.load_case(refs[0], progress=progress, cancel=cancel).volume
            return layouts_files.read_image(refs[0].image_path, progress=progress, cancel=cancel)
    return layouts_files.read_image(p, series, progress=progress, cancel=cancel)


def load_mask(
    path: str | Path,
    like: Volume | None,
    *,
    keep: Mapping[float, int] | None = None,
    cancel: CancelFn | None = None,
) -> LabelMap:
    """Read a mask as a 0/1/2 label map on ``like``'s grid.

    Parameters
    ----------
    path
        NIfTI, NRRD, DICOM SEG, a DICOM mask series folder/zip (non-zero -> liver), a
        folder of CHAOS-style PNGs (paired with ``like``'s DICOM files by file-name
        order), a 2D PNG/JPEG for a one-slice image, or a one-case dataset folder (its
        reference).
    like
        The image the mask belongs to (required for SEG, DICOM and PNG masks).  Shapes
        must match; other geometry differences are warnings in ``labels.source.warnings``.
    keep
        ``{stored value: label}``; every other value becomes background (e.g. ``{5: 1}``
        for the liver of a TotalSegmentator label map).  Without it, file names naming
        several structures (``liver_spine_seg.nrrd``) are mapped in name order.
    """
    from livgui.imageio import datasets, layouts_files

    p = Path(path)
    if p.is_dir() and datasets.detect_layout(p) in datasets.LAYOUTS:
        refs = datasets.list_cases(p)
        if len(refs) == 1:
            case = datasets.load_case(refs[0], cancel=cancel)
            if case.reference is None:
                raise ImageReadError(p, "this case has no reference mask")
            return _on_grid_of(p, case.reference, like)
    return layouts_files.read_mask(p, like, keep=keep, cancel=cancel)


def _on_grid_of(path: Path, labels: LabelMap, like: Volume | None) -> LabelMap:
    """``labels`` checked against ``like`` the way every mask reader does: shapes must
    match; spacing/origin/direction differences become warnings; the result lies on
    ``like``'s grid."""
    if like is None:
        return labels
    from dataclasses import replace

    from livgui.core.volume import LabelMap
    from livgui.imageio.maskcheck import check_mask_shape, geometry_mismatch

    check_mask_shape(path, labels.data.shape, like)
    notes = tuple(geometry_mismatch(like, labels.geometry))
    source = labels.source
    if source is not None and notes:
        source = replace(source, warnings=(*source.warnings, *notes))
    return LabelMap(labels.data, like.geometry, labels.name, source)


def save_mask(labels: LabelMap, path: str | Path, like: Volume) -> str:
    """Write ``labels`` as a uint8 NIfTI mask matching ``like``; returns its SHA-256.

    Delegates to :func:`livgui.imageio.nifti.write_mask_nifti` (atomic, re-read and
    verified, "research use only" in the description, never over a source file).
    """
    from livgui.imageio.nifti import write_mask_nifti

    return write_mask_nifti(labels, path, like)


def scan_dicom(
    path: str | Path | Sequence[str | Path],
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> ScanResult:
    """Scan DICOM headers: series found, files skipped / unreadable / refused."""
    from livgui.imageio.dicom_scan import scan_dicom as _scan

    return _scan(path, progress=progress, cancel=cancel)


def list_series(
    path: str | Path | Sequence[str | Path],
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> list[SeriesInfo]:
    """The image series of a DICOM source, non-localizers first, largest first."""
    return list(scan_dicom(path, progress=progress, cancel=cancel).series)


def detect_layout(path: str | Path) -> str | None:
    """Dataset layout name at ``path`` (see :mod:`livgui.imageio.datasets`)."""
    from livgui.imageio.datasets import detect_layout as _detect

    return _detect(path)


def list_cases(path: str | Path) -> list[CaseRef]:
    """Cases under ``path`` (one case, one dataset, or a folder of datasets)."""
    from livgui.imageio.datasets import list_cases as _list

    return _list(path)


def load_case(
    ref_or_path: CaseRef | str | Path,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> Case:
    """Load one case: CT plus its reference label map (0/1/2) on the same grid."""
    from livgui.imageio.datasets import load_case as _load

    return _load(ref_or_path, progress=progress, cancel=cancel)


def load_cases(
    refs: Sequence[CaseRef],
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> list[Case]:
    """Load many cases in one call (all 2D slices of a folder in about a second)."""
    from livgui.imageio.datasets import load_cases as _load_all

    return _load_all(refs, progress=progress, cancel=cancel)


def pair_case(
    image: str | Path, mask: str | Path | None = None, case_id: str | None = None
) -> CaseRef:
    """A case made of an image and its mask given explicitly (layout ``pair``)."""
    from livgui.imageio.datasets import pair_case as _pair

    return _pair(image, mask, case_id)


def __getattr__(name: str) -> Any:
    """``SeriesInfo`` and ``ScanResult`` on first use (they pull in pydicom)."""
    if name in ("SeriesInfo", "ScanResult"):
        from livgui.imageio import dicom_scan

        return getattr(dicom_scan, name)
    raise AttributeError(f"module 'livgui.imageio' has no attribute {name!r}")
