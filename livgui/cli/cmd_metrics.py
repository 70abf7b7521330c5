"""``livgui metrics REFERENCE PREDICTION``: per-case metrics of two label maps as JSON.

Both masks are read with :func:`livgui.imageio.load_mask` (a case folder with a reference,
such as a 3D-IRCADb patient, is read with the dataset readers).  Until the readers are
installed, NIfTI masks are read directly with nibabel (reoriented to the memory convention).
"""

from __future__ import annotations

import argparse
import importlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from livgui.cli.main import emit_json
from livgui.core.geometry import Geometry, ras_to_lps, reorientation_to_lps
from livgui.core.lesions import lesion_table
from livgui.core.metrics import case_metrics, study_slice_metrics
from livgui.core.volume import LabelMap, check_label_values

__all__ = ["add_parser", "load_labels", "run"]

log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "metrics",
        help="per-case metrics of a predicted mask against a reference",
        description="Dice/IoU (liver = labels 1+2, lesion = 2), per-class IoU and mean IoU, "
        "volumes (ml), HD95/ASSD (mm), lesion detection and lesion tables, plus the "
        "study's slice-level figures.  JSON on stdout.",
    )
    p.add_argument("reference", type=Path, help="reference mask file or case folder")
    p.add_argument("prediction", type=Path, help="predicted mask file or case folder")
    p.add_argument("--connectivity", type=int, choices=(6, 26), default=26)
    p.add_argument(
        "--overlap-threshold",
        type=float,
        default=0.5,
        help="IoU a lesion needs to count as detected at the threshold (default 0.5)",
    )
    p.set_defaults(func=run)


def _imageio_attr(name: str) -> Any:
    return getattr(importlib.import_module("livgui.imageio"), name, None)


def _read_nifti_mask(path: Path) -> LabelMap:
    """NIfTI mask -> LabelMap (permutations and flips only), values must be 0/1/2."""
    import nibabel as nib

    try:
        img: Any = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable NIfTI mask ({exc})") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: a mask must be 3-D, got shape {data.shape}")
    bad = check_label_values(data)
    if bad:
        raise ValueError(f"{path}: unexpected label values {bad[:10]} (expected 0, 1, 2)")
    reo, affine = reorientation_to_lps(ras_to_lps(img.affine), data.shape)
    memory = np.ascontiguousarray(reo.to_memory(data.astype(np.uint8)))
    shape = (int(memory.shape[0]), int(memory.shape[1]), int(memory.shape[2]))
    return LabelMap(memory, Geometry(shape, affine), name=path.name)


def _reference_of_case(path: Path) -> LabelMap:
    list_cases, load_case = _imageio_attr("list_cases"), _imageio_attr("load_case")
    if list_cases is None or load_case is None:
        raise ValueError(f"{path}: a folder needs the dataset readers, which are not installed")
    refs = list(list_cases(path))
    if len(refs) != 1:
        raise ValueError(f"{path}: holds {len(refs)} cases; give the folder of one case")
    case = load_case(refs[0])
    if case.reference is None:
        raise ValueError(f"{path}: this case has no reference mask")
    labels: LabelMap = case.reference
    return labels


def load_labels(path: Path) -> LabelMap:
    """Read a label map from a mask file, or the reference of a one-case folder."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        return _reference_of_case(path)
    load_mask = _imageio_attr("load_mask")
    if load_mask is not None:
        labels: LabelMap = load_mask(path, like=None)
        return labels
    if path.name.lower().endswith((".nii", ".nii.gz")):
        return _read_nifti_mask(path)
    raise ValueError(f"{path}: only NIfTI masks can be read until the image readers are installed")


def run(args: argparse.Namespace) -> int:
    reference = load_labels(args.reference)
    prediction = load_labels(args.prediction)
    metrics = case_metrics(
        reference,
        prediction,
        connectivity=args.connectivity,
        overlap_threshold=args.overlap_threshold,
        progress=lambda f, m: log.info("%3.0f%% %s", 100 * f, m),
    )
    lesions = {
        name: [les.to_json() for les in lesion_table(labels, connectivity=args.connectivity)]
        for name, labels in (("reference", reference), ("prediction", prediction))
    }
    emit_json(
        {
            "command": "metrics",
            "reference": str(args.reference),
            "prediction": str(args.prediction),
            "metrics": metrics.to_json(),
            "lesions": lesions,
            "study_slice_metrics": study_slice_metrics(reference, prediction),
        }
    )
    return 0
