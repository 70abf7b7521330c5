"""Per-case metrics of a predicted label map against a reference (pure numpy + scipy).

Label maps hold 0 background, 1 liver, 2 lesion (LiTS).  "Liver" always means labels 1
and 2 together (the lesions lie inside the liver); "lesion" means label 2.

Conventions (also written into every JSON document under ``"conventions"``):

* **Empty masks.**  Dice and IoU are 1.0 when reference and prediction are both empty
  (noted as ``"both empty"``) and 0.0 when exactly one is empty.  HD95 and ASSD are
  ``null`` when either is empty.  Lesion recall is ``null`` when the reference has no
  lesion, precision ``null`` when the prediction has none.
* **Per-class IoU** (the study's table, ``../shared/docs/STUDY.md``): IoU of background
  (label 0), liver (1+2) and lesion (2); ``mean_iou`` is the mean over the classes present
  in the reference or the prediction (a class absent from both is reported with IoU 1.0
  but left out of the mean, so a lesion-free case is not rewarded for "finding" nothing).
* **Lesion detection**: see :mod:`livgui.core.lesions` for the component matching.
* JSON holds no NaN or Inf: undefined values are ``null``.
* Geometry: both maps must lie on the same grid (shape and affine), else ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livgui.core.lesions import DetectionMetrics, lesion_detection
from livgui.core.progress import ProgressFn, check_cancel
from livgui.core.surface import surface_distances
from livgui.core.volume import RESEARCH_NOTICE, LabelMap

__all__ = [
    "CONVENTIONS",
    "CaseMetrics",
    "RegionMetrics",
    "SliceFigures",
    "case_metrics",
    "check_same_grid",
    "dice_iou",
    "json_safe",
    "study_slice_metrics",
]

CONVENTIONS: dict[str, str] = {
    "liver": "labels 1 and 2 together; lesion = label 2",
    "empty_masks": "Dice/IoU 1.0 when both empty (note 'both empty'), 0.0 when one is empty; "
    "HD95/ASSD null when either is empty",
    "hd95": "max of the two directed 95th percentiles of surface-voxel distances, mm",
    "assd": "mean of all directed surface-voxel distances of both directions, mm",
    "mean_iou": "mean of per-class IoU (background, liver, lesion) over classes present in "
    "reference or prediction",
    "detection": "connected components of label 2; any-overlap: >= 1 shared voxel; "
    "overlap threshold: IoU of a lesion with the union of the components touching it",
    "recall_precision": "recall null without reference lesions; precision null without "
    "predicted lesions",
    "null": "undefined values are null (JSON has no NaN/Inf)",
}


def json_safe(value: Any) -> Any:
    """Recursively replace NaN/Inf floats by ``None`` and numpy scalars by Python ones."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def check_same_grid(reference: LabelMap, prediction: LabelMap) -> None:
    """Raise ``ValueError`` naming both grids when the label maps are not on one grid."""
    if not reference.geometry.same_grid(prediction.geometry):
        fields = ", ".join(reference.geometry.differences(prediction.geometry)) or "affine"
        raise ValueError(
            f"reference {reference.name or ''} {reference.geometry!r} and prediction "
            f"{prediction.name or ''} {prediction.geometry!r} are on different grids "
            f"({fields} differ); resample or pick matching masks"
        )


def dice_iou(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> tuple[float, float, int]:
    """Dice, IoU and intersection voxel count of two boolean masks (empty conventions above)."""
    na, nb = int(np.count_nonzero(a)), int(np.count_nonzero(b))
    if na == 0 and nb == 0:
        return 1.0, 1.0, 0
    inter = int(np.count_nonzero(a & b))
    return 2.0 * inter / (na + nb), inter / (na + nb - inter), inter


def _empty_note(n_ref: int, n_pred: int) -> str | None:
    if n_ref == 0 and n_pred == 0:
        return "both empty"
    if n_ref == 0:
        return "reference empty"
    if n_pred == 0:
        return "prediction empty"
    return None


@dataclass(frozen=True)
class RegionMetrics:
    """Overlap, volume and surface metrics of one region (``liver`` or ``lesion``).

    Volumes in ml (1 ml = 1000 mm^3), distances in mm.
    """

    name: str
    dice: float
    iou: float
    reference_voxels: int
    prediction_voxels: int
    intersection_voxels: int
    reference_ml: float
    prediction_ml: float
    hd95_mm: float | None
    assd_mm: float | None
    hausdorff_mm: float | None
    note: str | None

    @property
    def volume_difference_ml(self) -> float:
        """Prediction minus reference volume, ml."""
        return self.prediction_ml - self.reference_ml


def region_metrics(
    name: str,
    ref: NDArray[np.bool_],
    pred: NDArray[np.bool_],
    labels: LabelMap,
    *,
    surface: bool = True,
    cancel: Callable[[], bool] | None = None,
) -> RegionMetrics:
    """Metrics of one boolean region; ``labels`` supplies the grid (spacing, voxel volume)."""
    dice, iou, inter = dice_iou(ref, pred)
    n_ref, n_pred = int(np.count_nonzero(ref)), int(np.count_nonzero(pred))
    ml = labels.geometry.voxel_volume_ml
    dist = surface_distances(ref, pred, labels.geometry.spacing, cancel=cancel) if surface else None
    return RegionMetrics(
        name=name,
        dice=dice,
        iou=iou,
        reference_voxels=n_ref,
        prediction_voxels=n_pred,
        intersection_voxels=inter,
        reference_ml=n_ref * ml,
        prediction_ml=n_pred * ml,
        hd95_mm=dist.hd95_mm if dist else None,
        assd_mm=dist.assd_mm if dist else None,
        hausdorff_mm=dist.max_mm if dist else None,
        note=_empty_note(n_ref, n_pred),
    )


@dataclass(frozen=True)
class CaseMetrics:
    """All per-case metrics of a prediction against a reference (3-D, whole case)."""

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    liver: RegionMetrics
    lesion: RegionMetrics
    iou_per_class: tuple[tuple[str, float], ...]
    classes_present: tuple[str, ...]
    mean_iou: float | None
    detection: DetectionMetrics

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (no NaN/Inf; undefined values are ``None``)."""
        liver = asdict(self.liver) | {"volume_difference_ml": self.liver.volume_difference_ml}
        lesion = asdict(self.lesion) | {"volume_difference_ml": self.lesion.volume_difference_ml}
        doc = {
            "notice": RESEARCH_NOTICE,
            "shape_zyx": list(self.shape),
            "spacing_zyx_mm": list(self.spacing_mm),
            "liver": liver,
            "lesion": lesion,
            "iou_per_class": dict(self.iou_per_class),
            "classes_present": list(self.classes_present),
            "mean_iou": self.mean_iou,
            "lesion_detection": self.detection.to_json(),
            "conventions": CONVENTIONS,
        }
        out: dict[str, Any] = json_safe(doc)
        return out


def _class_ious(
    reference: LabelMap, prediction: LabelMap, liver: RegionMetrics, lesion: RegionMetrics
) -> tuple[tuple[tuple[str, float], ...], tuple[str, ...], float | None]:
    """Per-class IoU (background, liver, lesion), the classes present and their mean."""
    ref_bg, pred_bg = reference.data == 0, prediction.data == 0
    bg_iou = dice_iou(ref_bg, pred_bg)[1]
    pairs = (("background", bg_iou), ("liver", liver.iou), ("lesion", lesion.iou))
    present = []
    if ref_bg.any() or pred_bg.any():
        present.append("background")
    for region in (liver, lesion):
        if region.reference_voxels or region.prediction_voxels:
            present.append(region.name)
    values = [v for k, v in pairs if k in present]
    mean = float(np.mean(values)) if values else None
    return pairs, tuple(present), mean


def case_metrics(
    reference: LabelMap,
    prediction: LabelMap,
    *,
    connectivity: int = 26,
    overlap_threshold: float = 0.5,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
) -> CaseMetrics:
    """Compare ``prediction`` with ``reference`` (both ``data[z, y, x]``, labels 0/1/2).

    Parameters
    ----------
    reference, prediction
        Label maps on the same grid (else ``ValueError`` naming both grids).
    connectivity
        6 (faces) or 26 (faces, edges, corners) for lesion components.
    overlap_threshold
        IoU a lesion needs with the components touching it to count at the threshold.
    progress, cancel
        Optional progress sink ``(fraction, message)`` and cancel check.
    """
    check_same_grid(reference, prediction)
    report = progress or (lambda f, m: None)
    report(0.0, "liver metrics")
    liver = region_metrics("liver", reference.liver(), prediction.liver(), reference, cancel=cancel)
    check_cancel(cancel)
    report(0.5, "lesion metrics")
    ref_les, pred_les = reference.lesion(), prediction.lesion()
    lesion = region_metrics("lesion", ref_les, pred_les, reference, cancel=cancel)
    check_cancel(cancel)
    report(0.8, "lesion detection")
    detection = lesion_detection(
        ref_les, pred_les, connectivity=connectivity, overlap_threshold=overlap_threshold
    )
    pairs, present, mean = _class_ious(reference, prediction, liver, lesion)
    report(1.0, "metrics done")
    return CaseMetrics(
        shape=reference.geometry.shape,
        spacing_mm=reference.geometry.spacing,
        liver=liver,
        lesion=lesion,
        iou_per_class=pairs,
        classes_present=present,
        mean_iou=mean,
        detection=detection,
    )


# --- the study's 2-D slice-level figures -------------------------------------------------


@dataclass(frozen=True)
class SliceFigures:
    """The dissertation's table columns for one binary task over a set of axial slices.

    ``dice`` and the IoUs are *pooled*: voxel counts summed over the slices first (the
    dissertation's aggregation is not stated; pooling is what a confusion matrix over a
    validation set gives).  ``mean_slice_*`` average the per-slice values instead (a slice
    with the class absent from both masks scores 1.0).  IoUs are fractions, not percent.
    """

    task: str
    selection: str
    slices_used: int
    dice: float | None
    iou_background: float | None
    iou_foreground: float | None
    miou: float | None
    mean_slice_dice: float | None
    mean_slice_miou: float | None


def _pooled(inter: float, n_ref: float, n_pred: float) -> tuple[float, float]:
    if n_ref + n_pred == 0:
        return 1.0, 1.0
    return 2.0 * inter / (n_ref + n_pred), inter / (n_ref + n_pred - inter)


def _slice_figures(
    task: str, selection: str, counts: NDArray[np.int64], pixels: int
) -> SliceFigures:
    """Figures from per-slice counts ``counts[k] = (intersection, n_ref, n_pred)``."""
    if counts.shape[0] == 0:
        return SliceFigures(task, selection, 0, None, None, None, None, None, None)
    inter, n_ref, n_pred = (counts[:, i].astype(np.float64) for i in range(3))
    union = n_ref + n_pred - inter
    bg_inter = pixels - union  # pixels outside both foregrounds
    bg_union = pixels - inter
    dice, iou_fg = _pooled(inter.sum(), n_ref.sum(), n_pred.sum())
    iou_bg = float(bg_inter.sum() / bg_union.sum()) if bg_union.sum() else 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        s_dice = np.where(n_ref + n_pred > 0, 2 * inter / (n_ref + n_pred), 1.0)
        s_fg = np.where(union > 0, inter / union, 1.0)
        s_bg = np.where(bg_union > 0, bg_inter / bg_union, 1.0)
    return SliceFigures(
        task=task,
        selection=selection,
        slices_used=int(counts.shape[0]),
        dice=dice,
        iou_background=iou_bg,
        iou_foreground=iou_fg,
        miou=(iou_bg + iou_fg) / 2.0,
        mean_slice_dice=float(s_dice.mean()),
        mean_slice_miou=float(((s_bg + s_fg) / 2.0).mean()),
    )


def study_slice_metrics(reference: LabelMap, prediction: LabelMap) -> dict[str, Any]:
    """The study's slice-level Dice / IoU bg / IoU fg / MIoU, for comparison with STUDY.md.

    Two binary tasks as in the dissertation's tables: ``liver`` (labels 1+2 against the
    rest, table d) and ``lesion`` (label 2 against the rest, table a).  Each is given over
    two slice selections: ``all`` axial slices of the case, and ``reference_foreground``
    (only slices whose reference contains the task's class, closer to a slice data set
    built from annotated slices; the dissertation does not say which it used).

    Returns a JSON-ready dict (no NaN): ``{task: {selection: figures}}`` plus a note.
    """
    check_same_grid(reference, prediction)
    pixels = int(reference.data.shape[1] * reference.data.shape[2])
    out: dict[str, Any] = {
        "notice": RESEARCH_NOTICE,
        "note": "2-D slice-level figures pooled over axial slices, as the dissertation "
        "reports them; optimistic compared with per-case 3-D Dice",
    }
    for task, ref, pred in (
        ("liver", reference.liver(), prediction.liver()),
        ("lesion", reference.lesion(), prediction.lesion()),
    ):
        counts = np.stack(
            [(ref & pred).sum(axis=(1, 2)), ref.sum(axis=(1, 2)), pred.sum(axis=(1, 2))], axis=1
        ).astype(np.int64)
        chosen = counts[counts[:, 1] > 0]
        out[task] = {
            "all": asdict(_slice_figures(task, "all", counts, pixels)),
            "reference_foreground": asdict(
                _slice_figures(task, "reference_foreground", chosen, pixels)
            ),
        }
    result: dict[str, Any] = json_safe(out)
    return result
