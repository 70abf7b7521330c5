"""``livgui metrics REFERENCE PREDICTION``: per-case metrics of two label maps as JSON.

Both masks are read with :func:`livgui.imageio.load_mask` (NIfTI, NRRD, or a one-case
dataset folder such as a 3D-IRCADb patient, whose reference is used).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from livgui import imageio
from livgui.cli.main import emit_json
from livgui.core.lesions import lesion_table
from livgui.core.metrics import case_metrics, study_slice_metrics
from livgui.core.volume import LabelMap

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


def load_labels(path: Path) -> LabelMap:
    """Read a label map from a mask file, or the reference of a one-case folder."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    return imageio.load_mask(path, like=None)


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
