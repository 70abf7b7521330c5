"""NIfTI dataset layouts: LiTS, MSD Task03, TotalSegmentator subjects and example files.

Facts (``../shared/data/README.md``):

* **LiTS**: ``volume-N.nii`` + ``segmentation-N.nii`` (0 / 1 liver / 2 lesion); the volumes
  do not share one orientation, so each file's affine is trusted (the NIfTI reader
  reorients by permutations and flips only).
* **MSD Task03**: ``imagesTr/liver_N.nii.gz`` + ``labelsTr/liver_N.nii.gz``, same labels;
  ``imagesTs`` has no labels.  The tarball carries macOS ``._liver_N.nii.gz`` resource
  forks, which are skipped.
* **TotalSegmentator** subjects: ``sNNNN/ct.nii.gz`` + ``sNNNN/segmentations/liver.nii.gz``
  (binary: liver -> 1).
* **TotalSegmentator example files**: ``example_ct*.nii.gz`` with ``example_seg*.nii.gz``
  (multi-label *model output*, liver = 5) and ``example_ct_dicom/`` with
  ``example_seg_dicom.nii.gz`` (stored LAS while the DICOM is LPS).  These segmentations are
  loaded as :attr:`Case.prediction`, never as a reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from livgui.core.progress import ProgressFn
from livgui.core.volume import LabelMap, Volume
from livgui.imageio.layouts_common import Case, CaseRef, is_hidden, natural_key

__all__ = [
    "NIFTI_SUFFIXES",
    "TOTALSEG_LIVER_LABEL",
    "is_lits",
    "is_msd",
    "is_nifti_name",
    "is_totalseg_examples",
    "is_totalseg_subjects",
    "list_lits",
    "list_msd",
    "list_totalseg_examples",
    "list_totalseg_subjects",
    "load_nifti_case",
    "nifti_stem",
]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: TotalSegmentator v2 class map: 5 = liver.
TOTALSEG_LIVER_LABEL = 5
_LITS_VOLUME = re.compile(r"^volume-(\d+)\.nii(\.gz)?$", re.IGNORECASE)
_LITS_SEG = re.compile(r"^segmentation-(\d+)\.nii(\.gz)?$", re.IGNORECASE)
_PREDICTION_NOTE = (
    "{name}: TotalSegmentator model output (liver = {label}), not a manual reference; "
    "loaded as a prediction"
)

CancelFn = Callable[[], bool]


def is_nifti_name(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES) and not is_hidden(path)


def nifti_stem(path: Path) -> str:
    """``liver_3.nii.gz`` -> ``liver_3``."""
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem


def _niftis(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.iterdir() if is_nifti_name(p) and p.is_file()),
        key=lambda p: natural_key(p.name),
    )


# ------------------------------------------------------------------ LiTS


def _lits_files(folders: list[Path], pattern: re.Pattern[str]) -> dict[int, Path]:
    """``{N: file}`` for files matching ``pattern`` in ``folders`` (first folder wins)."""
    found: dict[int, Path] = {}
    for folder in folders:
        for p in _niftis(folder):
            match = pattern.match(p.name)
            if match:
                found.setdefault(int(match.group(1)), p)
    return found


def is_lits(path: Path) -> bool:
    """A ``volume-N.nii`` file, or a folder holding such files."""
    if path.is_file():
        return bool(_LITS_VOLUME.match(path.name))
    return path.is_dir() and bool(_lits_files([path], _LITS_VOLUME))


def _seg_folders(folder: Path) -> list[Path]:
    """Where segmentations are looked for: the volumes' folder, then its siblings
    (the Kaggle copy keeps ``volume_pt1`` ... beside ``segmentations``)."""
    siblings = sorted(p for p in folder.parent.iterdir() if p.is_dir() and not is_hidden(p))
    return [folder, *[s for s in siblings if s != folder]]


def list_lits(path: Path) -> list[CaseRef]:
    """LiTS cases, ``volume-N`` paired with ``segmentation-N``."""
    folder = path.parent if path.is_file() else path
    volumes = _lits_files([folder], _LITS_VOLUME)
    if path.is_file():
        volumes = {n: p for n, p in volumes.items() if p == path}
    segs = _lits_files(_seg_folders(folder), _LITS_SEG)
    return [_lits_ref(n, volumes[n], segs.get(n)) for n in sorted(volumes)]


def _lits_ref(number: int, image: Path, seg: Path | None) -> CaseRef:
    return CaseRef(f"volume-{number}", "lits", image, seg, {"labels": "lits"})


# ------------------------------------------------------------------ MSD Task03


def is_msd(path: Path) -> bool:
    return path.is_dir() and bool(_niftis(path / "imagesTr") or _niftis(path / "imagesTs"))


def list_msd(path: Path) -> list[CaseRef]:
    """MSD cases: ``imagesTr`` with ``labelsTr`` of the same name, then ``imagesTs``."""
    refs = []
    for images, labels in (("imagesTr", "labelsTr"), ("imagesTs", None)):
        for image in _niftis(path / images):
            label = path / labels / image.name if labels else None
            reference = label if label is not None and label.is_file() else None
            case_id = nifti_stem(image) if images == "imagesTr" else f"{images}/{nifti_stem(image)}"
            refs.append(CaseRef(case_id, "msd", image, reference, {"labels": "lits"}))
    return refs


# ------------------------------------------------------------------ TotalSegmentator


def _is_subject(path: Path) -> bool:
    return (path / "ct.nii.gz").is_file() and (path / "segmentations").is_dir()


def _subject_dirs(path: Path) -> list[Path]:
    if _is_subject(path):
        return [path]
    subs = sorted(
        (p for p in path.iterdir() if p.is_dir() and not is_hidden(p)),
        key=lambda p: natural_key(p.name),
    )
    subjects = [p for p in subs if _is_subject(p)]
    return subjects if subjects and len(subjects) == len(subs) else []


def is_totalseg_subjects(path: Path) -> bool:
    """A subject folder (``ct.nii.gz`` + ``segmentations/``) or a folder of only those."""
    return path.is_dir() and bool(_subject_dirs(path))


def list_totalseg_subjects(path: Path) -> list[CaseRef]:
    subjects = _subject_dirs(path)
    refs = []
    for subject in subjects:
        liver = subject / "segmentations" / "liver.nii.gz"
        refs.append(
            CaseRef(
                subject.name,
                "totalsegmentator",
                subject / "ct.nii.gz",
                liver if liver.is_file() else None,
                {"labels": "binary-liver", "patient_id": subject.name},
            )
        )
    return refs


def is_totalseg_examples(path: Path) -> bool:
    if not path.is_dir():
        return False
    return (path / "example_ct_dicom").is_dir() or any(
        p.name.startswith("example_ct") for p in _niftis(path)
    )


def _grid_shape(path: Path) -> tuple[int, ...]:
    from livgui.imageio.nifti import read_nifti_header

    return tuple(read_nifti_header(path).file_shape)


def _pick_prediction(
    image_stem: str, image_shape: tuple[int, ...] | None, segs: list[Path]
) -> Path | None:
    """The segmentation of ``example_ct<suffix>``: ``example_seg<suffix>``, then the others.

    A NIfTI image takes the first candidate stored on its grid size (``example_seg`` is the
    output for the 30-slice ``example_ct_sm``, not for the 112-slice ``example_ct``); the
    DICOM example (``image_shape=None``) takes the name match only.
    """
    suffix = image_stem[len("example_ct") :]
    wanted = f"example_seg{suffix}"
    ordered = sorted(
        segs,
        key=lambda s: (
            nifti_stem(s) != wanted,
            nifti_stem(s) != "example_seg",
            natural_key(s.name),
        ),
    )
    for seg in ordered:
        if image_shape is None:
            if nifti_stem(seg) == wanted:
                return seg
        elif _grid_shape(seg) == image_shape:
            return seg
    return None


def list_totalseg_examples(path: Path) -> list[CaseRef]:
    """TotalSegmentator's test files: each ``example_ct*`` with its model output."""
    segs = [p for p in _niftis(path) if p.name.startswith("example_seg")]
    refs = []
    for image in _niftis(path):
        if not image.name.startswith("example_ct"):
            continue
        stem = nifti_stem(image)
        seg = _pick_prediction(stem, _grid_shape(image), segs)
        refs.append(_example_ref(stem, image, seg))
    dicom = path / "example_ct_dicom"
    if dicom.is_dir():
        refs.append(
            _example_ref(
                "example_ct_dicom", dicom, _pick_prediction("example_ct_dicom", None, segs)
            )
        )
    return refs


def _example_ref(case_id: str, image: Path, seg: Path | None) -> CaseRef:
    extra: dict[str, Any] = {"labels": "totalseg-multilabel"}
    if seg is not None:
        extra["prediction_path"] = seg
    return CaseRef(case_id, "totalsegmentator-examples", image, None, extra)


# ------------------------------------------------------------------ loading


def _read_image(ref: CaseRef, progress: ProgressFn | None, cancel: CancelFn | None) -> Volume:
    if ref.image_path.is_dir():
        from livgui.imageio.dicom import read_dicom_series

        return read_dicom_series(ref.image_path, progress=progress, cancel=cancel)
    from livgui.imageio.nifti import read_nifti

    return read_nifti(ref.image_path, progress=progress, cancel=cancel)


def load_nifti_case(
    ref: CaseRef, *, progress: ProgressFn | None = None, cancel: CancelFn | None = None
) -> Case:
    """Load a LiTS, MSD or TotalSegmentator case (image, reference or prediction)."""
    from livgui.imageio.nifti import read_nifti_labels

    volume = _read_image(ref, progress, cancel)
    warnings = list(volume.source.warnings) if volume.source else []
    reference: LabelMap | None = None
    prediction: LabelMap | None = None
    labels = ref.extra.get("labels")
    if ref.reference_path is not None:
        keep: dict[float, int] | None = {1: 1} if labels == "binary-liver" else None
        reference = read_nifti_labels(ref.reference_path, volume, keep=keep, cancel=cancel)
        reference.name = "reference"
        warnings += _mask_notes(reference)
        if not reference.data.any():
            warnings.append(f"{ref.reference_path.name}: reference has no liver voxels")
    elif ref.layout in ("lits", "msd"):
        warnings.append("no reference mask found for this image")
    pred_path = ref.extra.get("prediction_path")
    if pred_path is not None:
        pred = Path(pred_path)
        prediction = read_nifti_labels(pred, volume, keep={TOTALSEG_LIVER_LABEL: 1}, cancel=cancel)
        prediction.name = "prediction"
        warnings.append(_PREDICTION_NOTE.format(name=pred.name, label=TOTALSEG_LIVER_LABEL))
        warnings += _mask_notes(prediction)
    return Case(ref.case_id, ref.layout, volume, reference, warnings, ref.patient_id, prediction)


def _mask_notes(labels: LabelMap) -> list[str]:
    if labels.source is None:
        return []
    name = Path(labels.source.path).name
    return [f"{name}: {w}" for w in labels.source.warnings]
