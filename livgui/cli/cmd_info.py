"""``livgui info PATH``: what LivGUI sees in a file or folder, as JSON.

For every case found (dataset layouts: LiTS, MSD, CHAOS, 3D-IRCADb, 2D slices ...): shape,
spacing, orientation codes, HU range and the readers' warnings; with a reference mask the
voxel count, volume (ml) and mean HU of each label.  DICOM folders and zips also list the
series found (localizers, problems, undecodable syntaxes).  A path no dataset layout
recognises is read as one image.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livgui import imageio
from livgui.cli.main import emit_json
from livgui.core.volume import LABEL_NAMES, LabelMap, Volume

__all__ = ["add_parser", "image_info", "label_stats", "run"]

log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "info",
        help="describe a CT file, DICOM folder or dataset folder",
        description="Shape, spacing, orientation, HU range, DICOM series and warnings; "
        "per-label voxel counts, volumes and mean HU where a reference mask exists.",
    )
    p.add_argument("path", type=Path)
    p.add_argument(
        "--max-cases", type=int, default=20, help="read at most this many cases (default 20)"
    )
    p.set_defaults(func=run)


def _imageio(name: str) -> Any:
    """A reader of the :mod:`livgui.imageio` facade (looked up at call time)."""
    return getattr(imageio, name, None)


def image_info(volume: Volume) -> dict[str, Any]:
    """Grid and intensity facts of a volume (spacing ``(z, y, x)`` mm, HU range)."""
    geom = volume.geometry
    lo, hi = volume.finite_range()
    info: dict[str, Any] = {
        "shape_zyx": list(geom.shape),
        "spacing_zyx_mm": [round(s, 6) for s in geom.spacing],
        "orientation_memory": "".join(geom.orientation),
        "origin_lps_mm": [round(o, 4) for o in geom.origin],
        "oblique": geom.is_oblique,
        "dtype": str(volume.data.dtype),
        "hu_range": [lo, hi],
        "non_finite_voxels": volume.has_non_finite(),
    }
    if volume.source is not None:
        info["format"] = volume.source.format
        info["file_shape"] = list(volume.source.file_shape)
        info["warnings"] = list(volume.source.warnings)
    return info


def _hu_sums(
    labels: LabelMap, volume: Volume, slab: int = 16
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Sum of finite HU and count of finite voxels per label 0/1/2, a slab of slices at a
    time so memory stays flat on large volumes."""
    sums = np.zeros(3, dtype=np.float64)
    counts = np.zeros(3, dtype=np.int64)
    for k in range(0, labels.data.shape[0], slab):
        lab, hu = labels.data[k : k + slab], volume.data[k : k + slab]
        finite = np.isfinite(hu) if np.issubdtype(hu.dtype, np.floating) else None
        for label in range(3):
            sel = lab == label if finite is None else (lab == label) & finite
            sums[label] += hu[sel].sum(dtype=np.float64)
            counts[label] += int(np.count_nonzero(sel))
    return sums, counts


def label_stats(labels: LabelMap, volume: Volume | None) -> dict[str, Any]:
    """Per label (and liver = 1+2): voxel count, volume (ml) and mean HU over the volume.

    The mean HU is over the finite voxels of the label; ``None`` without voxels or when no
    volume on the same grid is given.
    """
    counts = np.bincount(labels.data.ravel(), minlength=3).astype(np.int64)
    hu_sums, hu_counts = None, None
    if volume is not None and volume.geometry.same_grid(labels.geometry):
        hu_sums, hu_counts = _hu_sums(labels, volume)
    ml = labels.geometry.voxel_volume_ml
    out: dict[str, Any] = {}
    groups = {LABEL_NAMES[i]: [i] for i in range(3)} | {"liver_including_lesions": [1, 2]}
    for name, members in groups.items():
        n = int(counts[members].sum())
        mean = None
        if hu_sums is not None and hu_counts is not None and hu_counts[members].sum():
            mean = float(hu_sums[members].sum() / hu_counts[members].sum())
        out[name] = {"voxels": n, "volume_ml": n * ml, "mean_hu": mean}
    return out


def _case_info(ref: Any, load_case: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "case_id": str(ref.case_id),
        "layout": str(ref.layout),
        "image_path": str(ref.image_path),
        "reference_path": None if ref.reference_path is None else str(ref.reference_path),
    }
    try:
        case = load_case(ref)
    except Exception as exc:  # one unreadable case is reported; the others still are
        doc["error"] = str(exc)
        return doc
    doc["image"] = image_info(case.volume)
    doc["warnings"] = list(case.warnings)
    if case.reference is not None:
        doc["labels"] = label_stats(case.reference, case.volume)
    return doc


def _series_info(path: Path) -> dict[str, Any] | None:
    scan_dicom = _imageio("scan_dicom")
    if scan_dicom is None or not (path.is_dir() or path.suffix.lower() == ".zip"):
        return None
    try:
        result = scan_dicom(path)
    except Exception as exc:  # a folder of NIfTI files holds no DICOM: not an error here
        log.info("no DICOM series in %s: %s", path, exc)
        return None
    if not result.series and not result.unreadable:
        return None
    series = [
        {
            key: _plain(getattr(s, key, None))
            for key in (
                "label",
                "description",
                "modality",
                "n_files",
                "shape",
                "is_localizer",
                "transfer_syntax",
                "slice_spacing",
                "decodable",
                "problems",
            )
        }
        for s in result.series
    ]
    return {
        "series": series,
        "skipped": dict(result.skip_counts()),
        "unreadable_files": [list(u) for u in result.unreadable][:50],
        "refused": [list(r) for r in result.refused][:50],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _cases(path: Path, max_cases: int) -> tuple[list[dict[str, Any]], int, str | None]:
    """Info of up to ``max_cases`` cases found by the dataset readers, the total, an error."""
    list_cases, load_case = _imageio("list_cases"), _imageio("load_case")
    if list_cases is None or load_case is None:
        return [], 0, "dataset readers not installed"
    try:
        refs = list(list_cases(path))
    except Exception as exc:  # not a dataset layout: fall back to reading one image
        return [], 0, str(exc)
    return [_case_info(r, load_case) for r in refs[:max_cases]], len(refs), None


def _single_image(path: Path, problem: str | None, *, keep_going: bool) -> dict[str, Any]:
    """Info of ``path`` read as one image; with ``keep_going`` a failure is reported inline
    (the DICOM series list is still worth printing), else raised."""
    load_image = _imageio("load_image")
    try:
        if load_image is None:
            raise RuntimeError(f"{path}: the image readers are not installed ({problem})")
        return image_info(load_image(path))
    except Exception as exc:
        if not keep_going:
            raise
        return {"error": str(exc)}


def run(args: argparse.Namespace) -> int:
    path: Path = args.path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    doc: dict[str, Any] = {"command": "info", "path": str(path)}
    dicom = _series_info(path)
    if dicom is not None:
        doc["dicom"] = dicom
    cases, total, problem = _cases(path, args.max_cases)
    if cases:
        doc["cases_found"] = total
        doc["cases"] = cases
    else:
        doc["image"] = _single_image(path, problem, keep_going=dicom is not None)
    emit_json(doc)
    return 0
