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
from livgui.core.volume import LabelMap, Volume

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
    p.add_argument(
        "--image",
        type=Path,
        default=None,
        help="the CT both masks belong to: needed for DICOM SEG, DICOM and PNG masks; "
        "adds mean HU to the lesion tables",
    )
    for which in ("reference", "prediction"):
        p.add_argument(
            f"--{which}-values",
            type=_value_map,
            default=None,
            metavar="V:L[,V:L]",
            help=f"map stored values of the {which} to labels, others become background "
            "(e.g. 5:1 for the liver of a TotalSegmentator label map)",
        )
    p.set_defaults(func=run)


def _value_map(text: str) -> dict[float, int]:
    """``"5:1,6:2"`` -> ``{5.0: 1, 6.0: 2}`` (labels must be 1 or 2)."""
    out: dict[float, int] = {}
    for item in text.split(","):
        value, sep, label = item.partition(":")
        try:
            if not sep or int(label) not in (1, 2):
                raise ValueError(item)
            out[float(value)] = int(label)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{item!r}: expected VALUE:LABEL with LABEL 1 (liver) or 2 (lesion)"
            ) from None
    return out


def load_labels(
    path: Path, like: Volume | None = None, keep: dict[float, int] | None = None
) -> LabelMap:
    """Read a label map from a mask file, or the reference of a one-case folder.

    ``like`` is the image the mask belongs to (required by DICOM SEG / DICOM / PNG masks);
    ``keep`` maps stored values to labels (all others become background).
    """
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    return imageio.load_mask(path, like, keep=keep)


def _warnings(labels: LabelMap) -> list[str]:
    return [] if labels.source is None else list(labels.source.warnings)


def run(args: argparse.Namespace) -> int:
    image = imageio.load_image(args.image) if args.image is not None else None
    reference = load_labels(args.reference, image, args.reference_values)
    prediction = load_labels(args.prediction, image, args.prediction_values)
    metrics = case_metrics(
        reference,
        prediction,
        connectivity=args.connectivity,
        overlap_threshold=args.overlap_threshold,
        progress=lambda f, m: log.info("%3.0f%% %s", 100 * f, m),
    )
    lesions = {
        name: [les.to_json() for les in lesion_table(labels, image, connectivity=args.connectivity)]
        for name, labels in (("reference", reference), ("prediction", prediction))
    }
    emit_json(
        {
            "command": "metrics",
            "reference": str(args.reference),
            "prediction": str(args.prediction),
            "image": None if args.image is None else str(args.image),
            "warnings": {
                "reference": _warnings(reference),
                "prediction": _warnings(prediction),
            },
            "metrics": metrics.to_json(),
            "lesions": lesions,
            "study_slice_metrics": study_slice_metrics(reference, prediction),
        }
    )
    return 0
