"""Plain files: what a path holds, any mask onto an image, and small folder layouts.

* :func:`sniff` tells NIfTI, NRRD, DICOM (file, folder, zip, DICOMDIR), DICOM SEG and 2D
  images apart by content (magic bytes), not by the file name alone.
* :func:`read_mask` puts any supported mask on an image grid.
* ``dicom-with-masks``: a folder holding one DICOM series sub-folder and mask files beside
  it (dcmqi's ``ct-3slice/`` + ``liver_seg.nrrd`` / ``liver_spine_seg.nrrd`` / ``liver.dcm``).
* ``pair``: an image and a mask given explicitly; ``image``: an image alone.

Multi-structure masks named after their structures (``liver_spine_seg.nrrd``) are read
with label ``k`` = the ``k``-th structure of the name: liver -> 1, tumour/lesion -> 2,
anything else (the spine) -> background, and a warning says so.
"""

from __future__ import annotations

import gzip
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from livgui.core.geometry import Geometry
from livgui.core.progress import ProgressFn
from livgui.core.volume import LabelMap, SourceInfo, Volume
from livgui.imageio.errors import ImageReadError
from livgui.imageio.layouts_common import Case, CaseRef, choose_series, is_hidden, natural_key

__all__ = [
    "is_dicom_with_masks",
    "list_dicom_with_masks",
    "load_file_case",
    "name_label_mapping",
    "read_mask",
    "sniff",
]

CancelFn = Callable[[], bool]
_SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
_GENERIC_WORDS = {"seg", "segmentation", "segmentations", "mask", "masks", "label", "labels"}
_LIVER_WORDS = ("liver",)
_LESION_WORDS = ("tumor", "tumour", "lesion", "lesions", "tumors", "tumours", "metastasis")
_IMAGE_2D = (".png", ".jpg", ".jpeg")


def _head(path: Path, n: int = 512) -> bytes:
    with path.open("rb") as f:
        block = f.read(n)
    if block[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as g:
                return g.read(n)
        except (OSError, EOFError):
            return b""
    return block


def _is_dicom_file(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _is_seg(path: Path) -> bool:
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:
        return False
    return str(ds.get("SOPClassUID", "")) == _SEG_CLASS


def _has_dicom_files(folder: Path, probe: int = 8) -> bool:
    checked = 0
    for p in sorted(folder.iterdir()):
        if p.is_file() and not is_hidden(p):
            if _is_dicom_file(p) or p.name.upper() == "DICOMDIR":
                return True
            checked += 1
            if checked >= probe:
                break
    return False


def sniff(path: str | Path) -> str | None:
    """What a path holds: ``nifti``, ``nrrd``, ``dicom-seg``, ``dicom`` (file, folder, zip,
    DICOMDIR), ``image2d``, ``folder`` (anything else that is a folder) or ``None``."""
    p = Path(path)
    if p.is_dir():
        return "dicom" if _has_dicom_files(p) else "folder"
    if not p.is_file():
        return None
    head = _head(p)
    if head[:4] == b"NRRD":
        return "nrrd"
    if len(head) >= 348 and (head[344:348] in (b"n+1\0", b"ni1\0") or head[4:8] == b"n+2\0"):
        return "nifti"
    if _is_dicom_file(p) or p.name.upper() == "DICOMDIR":
        return "dicom-seg" if _is_seg(p) else "dicom"
    if zipfile.is_zipfile(p):
        return "dicom"
    if p.suffix.lower() in _IMAGE_2D:
        return "image2d"
    return None


# ------------------------------------------------------------------ masks


def name_label_mapping(path: str | Path) -> tuple[dict[float, int] | None, str]:
    """``keep=`` mapping read from a multi-structure file name, and a note for the user.

    ``liver_spine_seg.nrrd`` -> ``{1: 1}`` (2 = spine -> background).  Names naming one
    structure (``liver_seg``) or none give ``(None, "")``: values are used as they are.
    """
    stem = re.sub(r"(\.nii)?(\.gz)?$", "", Path(path).name.lower())
    stem = re.sub(r"\.(nrrd|nhdr|dcm)$", "", stem)
    words = [w for w in re.split(r"[^a-z0-9]+", stem) if w and w not in _GENERIC_WORDS]
    if len(words) < 2 or not all(w.isalpha() for w in words) or "liver" not in words:
        return None, ""
    keep: dict[float, int] = {}
    parts = []
    for k, word in enumerate(words, start=1):
        label = 1 if word in _LIVER_WORDS else 2 if word in _LESION_WORDS else 0
        keep[float(k)] = label
        parts.append(f"{k} {word} -> {('background', 'liver', 'lesion')[label]}")
    note = (
        f"{Path(path).name}: labels read in the order of the names in the file name: "
        + ", ".join(parts)
    )
    return keep, note


def _dicom_mask_series(path: Path, like: Volume, cancel: CancelFn | None) -> LabelMap:
    """A DICOM mask series (0/255 slices at the CT's positions, like 3D-IRCADb)."""
    from livgui.imageio.dicom import read_dicom_series
    from livgui.imageio.maskcheck import check_mask_shape, geometry_mismatch

    mask = read_dicom_series(choose_series(path, cancel=cancel), cancel=cancel)
    check_mask_shape(path, mask.shape, like)
    problems = geometry_mismatch(like, mask.geometry)
    if problems:
        raise ImageReadError(
            path, "mask slices are not at the image's positions: " + "; ".join(problems)
        )
    source = SourceInfo(
        str(path), "dicom-mask", warnings=("DICOM mask series: every non-zero pixel -> liver (1)",)
    )
    return LabelMap((mask.data > 0).astype(np.uint8), like.geometry, "mask", source)


def _png_stack(path: Path, like: Volume | None, cancel: CancelFn | None) -> LabelMap:
    from livgui.imageio.layouts_dicom import read_chaos_ground

    if like is None:
        raise ImageReadError(path, "a folder of PNG masks needs the image it belongs to")
    if like.source is not None and "files" in like.source.header:
        return read_chaos_ground(path, like, cancel)
    if like.shape[0] == 1:
        files = sorted(
            (p for p in path.iterdir() if p.suffix.lower() in _IMAGE_2D),
            key=lambda p: natural_key(p.name),
        )
        if len(files) == 1:
            return _single_png(files[0], like)
    raise ImageReadError(path, "PNG mask folders are paired with DICOM series (CHAOS) only")


def _single_png(path: Path, like: Volume) -> LabelMap:
    from livgui.imageio.slices2d import read_mask_image

    labels, how = read_mask_image(path)
    if like.shape != (1, *labels.shape):
        raise ImageReadError(path, f"mask {labels.shape} does not fit the image {like.shape}")
    source = SourceInfo(str(path), "2d-mask", warnings=(how,))
    return LabelMap(labels[np.newaxis].copy(), like.geometry, "mask", source)


def read_mask(
    path: str | Path,
    like: Volume | None,
    *,
    keep: Mapping[float, int] | None = None,
    cancel: CancelFn | None = None,
) -> LabelMap:
    """Read a mask of any supported kind onto ``like``'s grid (see :func:`sniff`)."""
    p = Path(path)
    kind = sniff(p)
    note = ""
    if keep is None and kind in ("nifti", "nrrd"):
        keep, note = name_label_mapping(p)
    if kind == "nifti":
        from livgui.imageio.nifti import read_nifti_labels

        out = read_nifti_labels(p, like, keep=keep, cancel=cancel)
    elif kind == "nrrd":
        from livgui.imageio.nrrd import read_nrrd_labels

        out = read_nrrd_labels(p, like, keep=keep)
    elif kind == "dicom-seg":
        from livgui.imageio.dicom_seg import read_dicom_seg

        if like is None:
            raise ImageReadError(p, "a DICOM SEG needs the image it was drawn on")
        out = read_dicom_seg(p, like)
    elif kind == "dicom" and like is not None:
        out = _dicom_mask_series(p, like, cancel)
    elif kind == "folder":
        out = _png_stack(p, like, cancel)
    elif kind == "image2d" and like is not None:
        out = _single_png(p, like)
    else:
        raise ImageReadError(
            p, "not a mask LivGUI can read (NIfTI, NRRD, DICOM SEG, DICOM mask series, PNG)"
        )
    if note:
        src = out.source or SourceInfo(str(p), kind or "mask")
        out.source = SourceInfo(
            src.path,
            src.format,
            src.reorientation,
            src.file_shape,
            src.header,
            (*src.warnings, note),
        )
    return out


# ------------------------------------------------------------------ dicom-with-masks


def _mask_files(folder: Path) -> list[Path]:
    out = []
    for p in sorted(folder.iterdir(), key=lambda q: natural_key(q.name)):
        if not p.is_file() or is_hidden(p):
            continue
        name = p.name.lower()
        if name.endswith((".nrrd", ".nii", ".nii.gz")) or (name.endswith(".dcm") and _is_seg(p)):
            out.append(p)
    return out


def _dicom_subfolders(folder: Path) -> list[Path]:
    return [
        d
        for d in sorted(folder.iterdir())
        if d.is_dir() and not is_hidden(d) and _has_dicom_files(d)
    ]


def is_dicom_with_masks(path: Path) -> bool:
    """One DICOM series sub-folder with mask files (NRRD, NIfTI, DICOM SEG) beside it."""
    return path.is_dir() and len(_dicom_subfolders(path)) == 1 and bool(_mask_files(path))


def _preference(mask: Path) -> tuple[int, int, str]:
    keep, _ = name_label_mapping(mask)
    return (keep is not None, mask.name.lower().endswith(".dcm"), mask.name)


def list_dicom_with_masks(path: Path) -> list[CaseRef]:
    (series,) = _dicom_subfolders(path)
    masks = sorted(_mask_files(path), key=_preference)
    extra = {"other_references": tuple(str(m) for m in masks[1:])}
    return [CaseRef(series.name, "dicom-with-masks", series, masks[0], extra)]


# ------------------------------------------------------------------ loading


def read_image(
    path: Path,
    series: object = None,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> Volume:
    """Read a CT from a NIfTI, NRRD or DICOM source (content-sniffed)."""
    kind = sniff(path)
    if kind == "nifti":
        from livgui.imageio.nifti import read_nifti

        return read_nifti(path, progress=progress, cancel=cancel)
    if kind == "nrrd":
        from livgui.imageio.nrrd import read_nrrd

        return read_nrrd(path)
    if kind in ("dicom", "folder"):  # a folder is searched recursively for DICOM
        from livgui.imageio.dicom import read_dicom_series
        from livgui.imageio.dicom_scan import SeriesInfo

        chosen = choose_series(
            path, series if isinstance(series, SeriesInfo | str) else None, cancel=cancel
        )
        return read_dicom_series(chosen, progress=progress, cancel=cancel)
    if kind == "image2d":
        return _read_2d_image(path)
    raise ImageReadError(path, "not an image LivGUI can read (NIfTI, NRRD, DICOM, PNG/JPEG)")


def _read_2d_image(path: Path) -> Volume:
    from livgui.imageio.slices2d import _read_intensity

    grey, _ = _read_intensity(path)
    geometry = Geometry.from_spacing((1, grey.shape[0], grey.shape[1]))
    notes = ("not axial: plane unknown; shown as stored", "pixel spacing not stored: 1 mm assumed")
    source = SourceInfo(str(path), "2d-image", file_shape=grey.shape, warnings=notes)
    return Volume(grey[np.newaxis].copy(), geometry, source, name=path.stem)


def load_file_case(
    ref: CaseRef, *, progress: ProgressFn | None = None, cancel: CancelFn | None = None
) -> Case:
    """Load an ``image``, ``pair`` or ``dicom-with-masks`` case."""
    volume = read_image(ref.image_path, progress=progress, cancel=cancel)
    warnings = list(volume.source.warnings) if volume.source else []
    reference = None
    if ref.reference_path is not None:
        reference = read_mask(ref.reference_path, volume, cancel=cancel)
        reference.name = "reference"
        if reference.source is not None:
            warnings += [
                f"{Path(reference.source.path).name}: {w}" for w in reference.source.warnings
            ]
    others = ref.extra.get("other_references") or ()
    if others:
        warnings.append("other masks for this image: " + ", ".join(Path(o).name for o in others))
    return Case(ref.case_id, ref.layout, volume, reference, warnings, ref.patient_id)
