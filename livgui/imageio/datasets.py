"""Public dataset layouts: find the cases in a folder and load each as image + label map.

Every layout maps its own label convention to LivGUI's 0 background / 1 liver / 2 lesion
on the image's grid (facts in ``../shared/data/README.md``):

================================  ==========================================================
``lits``                          ``volume-N.nii`` + ``segmentation-N.nii``
``msd``                           ``imagesTr/liver_N.nii.gz`` + ``labelsTr/liver_N.nii.gz``
``chaos``                         ``CT/<case>/DICOM_anon`` + ``Ground/*.png`` (file-name order)
``ircadb``                        ``3Dircadb1.N/PATIENT_DICOM`` + ``MASKS_DICOM`` (zip or not)
``slices2d``                      ``images/`` + ``masks/`` PNG/JPEG, one-slice cases
``totalsegmentator``              ``sNNNN/ct.nii.gz`` + ``segmentations/liver.nii.gz``
``totalsegmentator-examples``     ``example_ct*`` + model-output ``example_seg*`` (prediction)
``dicom-with-masks``              a DICOM series folder with NRRD / NIfTI / SEG masks beside it
``pair``                          an image and a mask given explicitly
``nifti-folder``                  loose ``X.nii.gz`` (+ ``X_seg.nii.gz`` / ``_mask`` ...)
``image``                         a lone NIfTI / NRRD / DICOM image (no reference)
================================  ==========================================================

:func:`list_cases` on a folder that matches no layout looks into its sub-folders (up to
six levels), so pointing it at a collection of datasets lists them all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from livgui.core.progress import ProgressFn
from livgui.imageio import layouts_dicom as _dicom
from livgui.imageio import layouts_files as _files
from livgui.imageio import layouts_loose as _loose
from livgui.imageio import layouts_nifti as _nifti
from livgui.imageio import slices2d as _slices
from livgui.imageio.errors import ImageReadError
from livgui.imageio.layouts_common import Case, CaseRef, is_hidden, natural_key

__all__ = [
    "LAYOUTS",
    "Case",
    "CaseRef",
    "detect_layout",
    "list_cases",
    "load_case",
    "load_cases",
    "pair_case",
]

log = logging.getLogger(__name__)

CancelFn = Callable[[], bool]
Lister = Callable[[Path], list[CaseRef]]
Loader = Callable[..., Case]

#: name -> (detector, lister, loader), tried in this order by :func:`detect_layout`.
LAYOUTS: dict[str, tuple[Callable[[Path], bool], Lister, Loader]] = {
    "slices2d": (
        _slices.is_slice_folder,
        _slices.list_slice_refs,
        lambda ref, **_: _slices.load_slice_case(ref),
    ),
    "msd": (_nifti.is_msd, _nifti.list_msd, _nifti.load_nifti_case),
    "lits": (_nifti.is_lits, _nifti.list_lits, _nifti.load_nifti_case),
    "chaos": (_dicom.is_chaos, _dicom.list_chaos, _dicom.load_chaos_case),
    "ircadb": (_dicom.is_ircadb, _dicom.list_ircadb, _dicom.load_ircadb_case),
    "totalsegmentator": (
        _nifti.is_totalseg_subjects,
        _nifti.list_totalseg_subjects,
        _nifti.load_nifti_case,
    ),
    "totalsegmentator-examples": (
        _nifti.is_totalseg_examples,
        _nifti.list_totalseg_examples,
        _nifti.load_nifti_case,
    ),
    "dicom-with-masks": (
        _files.is_dicom_with_masks,
        _files.list_dicom_with_masks,
        _files.load_file_case,
    ),
    "nifti-folder": (
        _loose.is_loose_nifti_folder,
        _loose.list_loose_nifti,
        _nifti.load_nifti_case,
    ),
}
_FILE_LOADERS: dict[str, Loader] = {"pair": _files.load_file_case, "image": _files.load_file_case}
_MAX_DEPTH = 6


def detect_layout(path: str | Path) -> str | None:
    """The layout of a dataset folder (or a single case), ``image`` for a lone image,
    ``None`` when nothing LivGUI reads is recognised at this level."""
    p = Path(path)
    if not p.exists():
        raise ImageReadError(p, "no such file or folder")
    for name, (detect, _, _) in LAYOUTS.items():
        if detect(p):
            return name
    if _files.sniff(p) in ("nifti", "nrrd", "dicom"):
        return "image"
    return None


def list_cases(path: str | Path) -> list[CaseRef]:
    """The cases under ``path``: one dataset, one case, or a folder of datasets.

    Nothing is decoded; headers are read only where pairing needs them (TotalSegmentator
    example files).  Case ids are unique in the result (prefixed with their folder when
    two datasets share one).
    """
    root = Path(path)
    found = _collect(root, 0)
    if not found and not root.exists():
        raise ImageReadError(root, "no such file or folder")
    return _unique_ids(root, found)


def _collect(path: Path, depth: int) -> list[tuple[Path, CaseRef]]:
    """``(dataset folder, ref)`` pairs found at ``path`` or below it."""
    layout = detect_layout(path)
    if layout == "nifti-folder" and depth > 0:
        # Loose files met while walking a collection could be masks of a layout that was
        # not recognised: only the folder the user chose is read as loose images.
        layout = None
    if layout in LAYOUTS:
        return [(path, ref) for ref in LAYOUTS[layout][1](path)]
    if layout == "image":
        name = _nifti.nifti_stem(path) if path.is_file() else path.name
        return [(path.parent, CaseRef(name, "image", path))]
    if not path.is_dir() or depth >= _MAX_DEPTH:
        return []
    out: list[tuple[Path, CaseRef]] = []
    for sub in sorted(path.iterdir(), key=lambda p: natural_key(p.name)):
        if sub.is_dir() and not is_hidden(sub):
            out += _collect(sub, depth + 1)
    return out


def _unique_ids(root: Path, found: list[tuple[Path, CaseRef]]) -> list[CaseRef]:
    """Ids seen more than once get their dataset folder (relative to ``root``) as prefix."""
    counts: dict[str, int] = {}
    for _, ref in found:
        counts[ref.case_id] = counts.get(ref.case_id, 0) + 1
    out = []
    for folder, ref in found:
        if counts[ref.case_id] > 1:
            rel = folder.relative_to(root) if folder.is_relative_to(root) else folder
            ref = replace(ref, case_id=f"{rel.as_posix()}/{ref.case_id}")  # noqa: PLW2901
        out.append(ref)
    return out


def pair_case(
    image: str | Path, mask: str | Path | None = None, case_id: str | None = None
) -> CaseRef:
    """A case made of an image and (optionally) its mask, given explicitly."""
    image_path = Path(image)
    name = case_id or (_nifti.nifti_stem(image_path) if image_path.is_file() else image_path.name)
    return CaseRef(
        name,
        "pair" if mask is not None else "image",
        image_path,
        None if mask is None else Path(mask),
    )


def load_case(
    ref_or_path: CaseRef | str | Path,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> Case:
    """Load one case: its CT and its reference (0/1/2) on the CT's grid.

    Parameters
    ----------
    ref_or_path
        A :class:`CaseRef` from :func:`list_cases`, or a path holding exactly one case.

    Raises
    ------
    ImageReadError
        Naming the file and the problem; a path with several cases lists how many.
    """
    if isinstance(ref_or_path, CaseRef):
        ref = ref_or_path
    else:
        refs = list_cases(ref_or_path)
        if len(refs) != 1:
            raise ImageReadError(
                ref_or_path, f"holds {len(refs)} cases, not one: use list_cases() and pick"
            )
        ref = refs[0]
    loader = LAYOUTS[ref.layout][2] if ref.layout in LAYOUTS else _FILE_LOADERS.get(ref.layout)
    if loader is None:
        raise ImageReadError(ref.image_path, f"unknown layout {ref.layout!r}")
    log.info("loading case %s (%s)", ref.case_id, ref.layout)
    return loader(ref, progress=progress, cancel=cancel)


def load_cases(
    refs: Sequence[CaseRef],
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> list[Case]:
    """Load many cases in one call (progress over the whole list)."""
    slices = [r for r in refs if r.layout == "slices2d"]
    if len(slices) == len(refs):
        return _slices.load_slice_cases(slices, progress=progress, cancel=cancel)
    out = []
    for i, ref in enumerate(refs):
        out.append(load_case(ref, cancel=cancel))
        if progress is not None:
            progress((i + 1) / len(refs), f"case {i + 1} of {len(refs)}: {ref.case_id}")
    return out
