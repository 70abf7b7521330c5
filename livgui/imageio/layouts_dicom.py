"""DICOM dataset layouts: CHAOS CT and 3D-IRCADb-01 (facts in ``../shared/data/README.md``).

* **CHAOS CT**: ``CT/<case>/DICOM_anon/*.dcm`` + ``CT/<case>/Ground/liver_GT_NNN.png``
  (0/255).  PNG ``k`` pairs with the ``k``-th DICOM *file in file-name order* (which runs
  from the top slice down), not with the ``k``-th slice by position.  Each PNG is put on
  the slice its DICOM file became, using that file's own position and orientation, so the
  pairing survives any sorting and reorientation done by the reader.  The slice spacing is
  the step between positions (the DICOM reader's rule), not SliceThickness.
* **3D-IRCADb-01**: ``3Dircadb1.N/PATIENT_DICOM`` + ``MASKS_DICOM/<structure>``, each a
  folder or a zip holding one; masks are DICOM slices at the CT's positions, 0/255.  Label 1
  where ``liver``, 2 where any ``livertumor*`` (tumour folders are named differently across
  patients: matched by prefix).  Zipped masks are extracted to a private temporary folder
  (root-confined member names) and deleted after reading.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livgui.core.geometry import Geometry
from livgui.core.progress import ProgressFn, check_cancel
from livgui.core.volume import LESION, LIVER, LabelMap, SourceInfo, Volume
from livgui.imageio.errors import ImageReadError
from livgui.imageio.layouts_common import Case, CaseRef, choose_series, is_hidden, natural_key

__all__ = [
    "is_chaos",
    "is_ircadb",
    "list_chaos",
    "list_ircadb",
    "load_chaos_case",
    "load_ircadb_case",
    "place_dicom_plane",
    "read_chaos_ground",
]

log = logging.getLogger(__name__)

CancelFn = Callable[[], bool]
_LIVER_FOLDER = "liver"
_TUMOUR_PREFIX = "livertumor"


def _subdirs(path: Path) -> list[Path]:
    if not path.is_dir():
        return []
    dirs = (p for p in path.iterdir() if p.is_dir() and not is_hidden(p))
    return sorted(dirs, key=lambda p: natural_key(p.name))


def _read_series(path: Path, progress: ProgressFn | None, cancel: CancelFn | None) -> Volume:
    from livgui.imageio.dicom import read_dicom_series

    series = choose_series(path, cancel=cancel)
    return read_dicom_series(series, progress=progress, cancel=cancel)


# ------------------------------------------------------------------ CHAOS


def _all_cases(folder: Path, is_case: Callable[[Path], bool]) -> list[Path]:
    """Sub-folders of ``folder`` when every one of them is a case (a dataset folder)."""
    subs = _subdirs(folder)
    cases = [d for d in subs if is_case(d)]
    return cases if cases and len(cases) == len(subs) else []


def _chaos_case_dirs(path: Path) -> list[Path]:
    if (path / "DICOM_anon").is_dir():
        return [path]
    base = path / "CT" if (path / "CT").is_dir() else path
    return _all_cases(base, lambda d: (d / "DICOM_anon").is_dir())


def is_chaos(path: Path) -> bool:
    """A CHAOS case folder, its ``CT`` folder or the training-set root."""
    return path.is_dir() and bool(_chaos_case_dirs(path))


def list_chaos(path: Path) -> list[CaseRef]:
    refs = []
    for case in _chaos_case_dirs(path):
        ground = case / "Ground"
        refs.append(
            CaseRef(
                case.name,
                "chaos",
                case / "DICOM_anon",
                ground if ground.is_dir() else None,
                {"patient_id": case.name},
            )
        )
    return refs


def place_dicom_plane(
    plane: NDArray[Any],
    *,
    position: Sequence[float],
    orientation: Sequence[float],
    pixel_spacing: Sequence[float],
    geometry: Geometry,
    path: str | Path,
) -> tuple[int, NDArray[Any]]:
    """Where a 2D array in DICOM pixel order lands in a memory-ordered volume.

    Parameters
    ----------
    plane
        ``(rows, columns)`` as the DICOM file stores its pixels (a CHAOS PNG has exactly
        the DICOM's rows and columns).
    position, orientation, pixel_spacing
        ImagePositionPatient (LPS mm), ImageOrientationPatient (row then column cosines)
        and PixelSpacing (row spacing, column spacing) of that DICOM file.
    geometry
        The grid of the volume the series was read into.

    Returns
    -------
    z, yx
        The memory slice index and the plane re-laid as ``(y, x)`` for ``volume[z]``.
    """
    row_cos = np.asarray(orientation[:3], dtype=np.float64)
    col_cos = np.asarray(orientation[3:], dtype=np.float64)
    p0 = np.asarray(position, dtype=np.float64)
    corners = np.stack(
        [p0, p0 + row_cos * pixel_spacing[1], p0 + col_cos * pixel_spacing[0]]
    )  # pixel (0, 0), one column on, one row on
    idx = geometry.world_to_index(corners)  # (3, zyx)
    d_col, d_row = idx[1] - idx[0], idx[2] - idx[0]
    z = float(idx[0][0])
    axes = (int(np.argmax(np.abs(d_row))), int(np.argmax(np.abs(d_col))))
    if (
        abs(z - round(z)) > 0.1
        or not 0 <= round(z) < geometry.shape[0]
        or sorted(axes) != [1, 2]
        or not np.allclose(np.abs([d_row[axes[0]], d_col[axes[1]]]), 1.0, atol=1e-2)
    ):
        raise ImageReadError(path, "mask slice does not lie on a slice of the image grid")
    out = plane if axes[0] == 1 else plane.T
    sign_y = d_row[1] if axes[0] == 1 else d_col[1]
    sign_x = d_col[2] if axes[1] == 2 else d_row[2]
    out = out[:: -1 if sign_y < 0 else 1, :: -1 if sign_x < 0 else 1]
    if out.shape != geometry.shape[1:]:
        raise ImageReadError(
            path, f"mask slice {plane.shape} does not fit the image slice {geometry.shape[1:]}"
        )
    return round(z), np.ascontiguousarray(out)


def read_chaos_ground(ground: Path, volume: Volume, cancel: CancelFn | None = None) -> LabelMap:
    """CHAOS ``Ground/*.png`` (0/255) onto ``volume``'s grid, pairing by file-name order."""
    from livgui.imageio.slices2d import read_mask_image

    if volume.source is None or "files" not in volume.source.header:
        raise ImageReadError(ground, "the CT was not read from a DICOM series")
    header = volume.source.header
    pngs = sorted(
        (p for p in ground.iterdir() if p.suffix.lower() == ".png" and not is_hidden(p)),
        key=lambda p: natural_key(p.name),
    )
    files = [str(f) for f in header["files"]]
    by_name = sorted(range(len(files)), key=lambda i: natural_key(PurePosixPath(files[i]).name))
    if len(pngs) != len(files):
        raise ImageReadError(
            ground, f"{len(pngs)} PNG masks for {len(files)} DICOM files: cannot pair them"
        )
    out = np.zeros(volume.shape, dtype=np.uint8)
    for png, file_index in zip(pngs, by_name, strict=True):
        check_cancel(cancel)
        labels, _ = read_mask_image(png)
        z, yx = place_dicom_plane(
            (labels > 0).astype(np.uint8),
            position=header["positions"][file_index],
            orientation=header["orientation"],
            pixel_spacing=header["pixel_spacing"],
            geometry=volume.geometry,
            path=png,
        )
        out[z] = yx
    source = SourceInfo(str(ground), "chaos-png", file_shape=(len(pngs), *volume.shape[1:]))
    return LabelMap(out, volume.geometry, name="reference", source=source)


def load_chaos_case(
    ref: CaseRef, *, progress: ProgressFn | None = None, cancel: CancelFn | None = None
) -> Case:
    volume = _read_series(ref.image_path, progress, cancel)
    warnings = list(volume.source.warnings) if volume.source else []
    reference = None
    if ref.reference_path is not None:
        reference = read_chaos_ground(ref.reference_path, volume, cancel)
        warnings.append(
            "Ground PNGs paired with the DICOM files in file-name order (CHAOS convention); "
            "liver -> 1 (CHAOS CT has no lesion label)"
        )
    else:
        warnings.append("no Ground folder: no reference mask")
    return Case(ref.case_id, "chaos", volume, reference, warnings, ref.patient_id)


# ------------------------------------------------------------------ 3D-IRCADb-01


def _part(case: Path, name: str) -> Path | None:
    for candidate in (case / name, case / f"{name}.zip"):
        if candidate.exists():
            return candidate
    return None


def _is_ircadb_case(path: Path) -> bool:
    return _part(path, "PATIENT_DICOM") is not None


def is_ircadb(path: Path) -> bool:
    """A 3D-IRCADb-01 case folder (zipped or not) or a folder of ``3Dircadb1.N`` cases."""
    return path.is_dir() and bool(_ircadb_case_dirs(path))


def _ircadb_case_dirs(path: Path) -> list[Path]:
    return [path] if _is_ircadb_case(path) else _all_cases(path, _is_ircadb_case)


def list_ircadb(path: Path) -> list[CaseRef]:
    cases = _ircadb_case_dirs(path)
    refs = []
    for case in cases:
        image = _part(case, "PATIENT_DICOM")
        assert image is not None
        refs.append(
            CaseRef(
                case.name, "ircadb", image, _part(case, "MASKS_DICOM"), {"patient_id": case.name}
            )
        )
    return refs


def _wanted(structure: str) -> bool:
    low = structure.lower()
    return low == _LIVER_FOLDER or low.startswith(_TUMOUR_PREFIX)


@contextmanager
def _mask_folders(masks: Path) -> Iterator[dict[str, Path]]:
    """``{structure: folder}`` for liver and livertumor* (a zip is extracted to a temp dir)."""
    if masks.is_dir():
        yield {d.name: d for d in _subdirs(masks) if _wanted(d.name)}
        return
    from livgui.imageio.safepaths import confined_path, safe_zip_members

    tmp = Path(tempfile.mkdtemp(prefix="livgui-ircadb-"))
    try:
        found: dict[str, Path] = {}
        with zipfile.ZipFile(masks) as zf:
            safe, refused = safe_zip_members(zf)
            for name, why in refused:
                log.warning("%s: refused member %r: %s", masks, name, why)
            for info in safe:
                parts = PurePosixPath(info.filename.replace("\\", "/")).parts
                if len(parts) < 2 or not _wanted(parts[-2]):
                    continue
                target = confined_path(tmp, [parts[-2], parts[-1]])
                target.parent.mkdir(exist_ok=True)
                with zf.open(info) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                found[parts[-2]] = target.parent
        yield found
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _structure_mask(folder: Path, volume: Volume, cancel: CancelFn | None) -> NDArray[np.bool_]:
    from livgui.imageio.maskcheck import check_mask_shape, geometry_mismatch

    mask = _read_series(folder, None, cancel)
    check_mask_shape(folder, mask.shape, volume)
    problems = geometry_mismatch(volume, mask.geometry)
    if problems:
        raise ImageReadError(
            folder, "mask slices are not at the CT's positions: " + "; ".join(problems)
        )
    return np.asarray(mask.data > 0)


def read_ircadb_masks(
    masks: Path, volume: Volume, cancel: CancelFn | None = None
) -> tuple[LabelMap, list[str]]:
    """Liver (1) and ``livertumor*`` (2) mask series of one case as a label map."""
    notes: list[str] = []
    out = np.zeros(volume.shape, dtype=np.uint8)
    with _mask_folders(masks) as folders:
        names = {n.lower(): n for n in folders}
        if _LIVER_FOLDER not in names:
            raise ImageReadError(masks, "no 'liver' mask folder")
        liver = _structure_mask(folders[names[_LIVER_FOLDER]], volume, cancel)
        out[liver] = LIVER
        tumours = sorted(
            (n for n in folders if n.lower().startswith(_TUMOUR_PREFIX)), key=natural_key
        )
        outside = 0
        for name in tumours:
            tumour = _structure_mask(folders[name], volume, cancel)
            outside += int(np.count_nonzero(tumour & ~liver))
            out[tumour] = LESION
    notes.append(f"liver from 'liver', lesions from {', '.join(tumours) or 'no tumour folder'}")
    if outside:
        notes.append(f"{outside} tumour voxel(s) lie outside the liver mask (kept as lesion)")
    source = SourceInfo(str(masks), "ircadb-masks", header={"tumour_folders": tumours})
    return LabelMap(out, volume.geometry, name="reference", source=source), notes


def load_ircadb_case(
    ref: CaseRef, *, progress: ProgressFn | None = None, cancel: CancelFn | None = None
) -> Case:
    volume = _read_series(ref.image_path, progress, cancel)
    warnings = list(volume.source.warnings) if volume.source else []
    reference = None
    if ref.reference_path is not None:
        reference, notes = read_ircadb_masks(ref.reference_path, volume, cancel)
        warnings += notes
    else:
        warnings.append("no MASKS_DICOM: no reference mask")
    return Case(ref.case_id, "ircadb", volume, reference, warnings, ref.patient_id)
