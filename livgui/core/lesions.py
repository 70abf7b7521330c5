"""Lesion-level QA: connected components, detection counts and a per-lesion table.

A *lesion* is a connected component of label 2, with 26-connectivity by default (faces,
edges and corners touch) or 6-connectivity (faces only).

Detection (``lesion_detection``), in the spirit of the lesion-wise evaluation of LiTS
(Bilic et al., "The Liver Tumor Segmentation Benchmark (LiTS)", Medical Image Analysis 84
(2023) 102680), which counts a reference lesion as detected when a prediction overlaps it
enough; the exact rule used here is:

* **any overlap**: a reference lesion is detected (TP) when it shares at least one voxel
  with a predicted component; a predicted component is a false positive (FP) when it
  shares no voxel with any reference lesion.
* **at the overlap threshold** ``t`` (0.5 by default): a reference lesion ``R`` is
  detected when ``IoU(R, U) >= t`` where ``U`` is the union of all predicted components
  touching ``R`` (so a lesion split into pieces by the model still counts); symmetrically a
  predicted component ``P`` is correct when ``IoU(P, V) >= t`` with ``V`` the union of the
  reference lesions touching it, and an FP otherwise.

``recall = TP / reference lesions`` (``None`` without reference lesions) and
``precision = correct predicted components / predicted components`` (``None`` without
predicted lesions); ``FN = reference lesions - TP``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from livgui.core.surface import bounding_box
from livgui.core.volume import LabelMap, Volume

__all__ = [
    "DetectionCounts",
    "DetectionMetrics",
    "Lesion",
    "components",
    "lesion_detection",
    "lesion_table",
]


def _structure(connectivity: int) -> NDArray[np.bool_]:
    if connectivity not in (6, 26):
        raise ValueError(f"connectivity must be 6 or 26, got {connectivity}")
    out: NDArray[np.bool_] = ndimage.generate_binary_structure(3, 1 if connectivity == 6 else 3)
    return out


def components(mask: NDArray[np.bool_], connectivity: int = 26) -> tuple[NDArray[np.int32], int]:
    """Label the connected components of ``mask`` (``(labels, count)``; 0 = background)."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    count = ndimage.label(mask, structure=_structure(connectivity), output=labels)
    return labels, int(count)


@dataclass(frozen=True)
class DetectionCounts:
    """TP/FP/FN, recall and precision under one matching rule."""

    true_positives: int
    false_negatives: int
    false_positives: int
    recall: float | None
    precision: float | None


@dataclass(frozen=True)
class DetectionMetrics:
    """Lesion detection at any overlap and at the IoU threshold (see module docstring)."""

    connectivity: int
    overlap_threshold: float
    reference_lesions: int
    predicted_lesions: int
    any_overlap: DetectionCounts
    at_threshold: DetectionCounts

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _matched_iou(
    sizes_a: NDArray[np.int64],
    sizes_b: NDArray[np.int64],
    pairs: NDArray[np.int64],
    pair_counts: NDArray[np.int64],
) -> NDArray[np.float64]:
    """For each component of A, IoU with the union of the B components touching it.

    ``pairs[k] = (a_label, b_label)`` with ``pair_counts[k]`` shared voxels; labels start at
    1 and ``sizes[l]`` is the voxel count of label ``l`` (``sizes[0]`` unused).
    """
    n_a = sizes_a.size - 1
    inter = np.bincount(pairs[:, 0], weights=pair_counts, minlength=n_a + 1)
    union_b = np.bincount(pairs[:, 0], weights=sizes_b[pairs[:, 1]], minlength=n_a + 1)
    denom = sizes_a + union_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(denom > 0, inter / np.maximum(denom, 1), 0.0)
    out: NDArray[np.float64] = iou[1:]
    return out


def _counts(hit_ref: NDArray[np.bool_], ok_pred: NDArray[np.bool_]) -> DetectionCounts:
    n_ref, n_pred = hit_ref.size, ok_pred.size
    tp, correct = int(hit_ref.sum()), int(ok_pred.sum())
    return DetectionCounts(
        true_positives=tp,
        false_negatives=n_ref - tp,
        false_positives=n_pred - correct,
        recall=tp / n_ref if n_ref else None,
        precision=correct / n_pred if n_pred else None,
    )


def lesion_detection(
    reference: NDArray[np.bool_],
    prediction: NDArray[np.bool_],
    *,
    connectivity: int = 26,
    overlap_threshold: float = 0.5,
) -> DetectionMetrics:
    """Lesion-wise detection of ``prediction`` against ``reference`` (boolean ``[z, y, x]``)."""
    box = bounding_box(reference | prediction, margin=1)
    if box is not None:  # components never leave the box of the union: work inside it
        reference, prediction = reference[box], prediction[box]
    ref_lab, n_ref = components(reference, connectivity)
    pred_lab, n_pred = components(prediction, connectivity)
    both = (ref_lab > 0) & (pred_lab > 0)
    key = ref_lab[both].astype(np.int64) * (n_pred + 1) + pred_lab[both]
    uniq, pair_counts = np.unique(key, return_counts=True)
    pairs = np.stack([uniq // (n_pred + 1), uniq % (n_pred + 1)], axis=1)
    ref_sizes = np.bincount(ref_lab.ravel(), minlength=n_ref + 1).astype(np.int64)
    pred_sizes = np.bincount(pred_lab.ravel(), minlength=n_pred + 1).astype(np.int64)
    touched_ref = np.zeros(n_ref + 1, dtype=bool)
    touched_pred = np.zeros(n_pred + 1, dtype=bool)
    touched_ref[pairs[:, 0]] = True
    touched_pred[pairs[:, 1]] = True
    iou_ref = _matched_iou(ref_sizes, pred_sizes, pairs, pair_counts.astype(np.int64))
    iou_pred = _matched_iou(pred_sizes, ref_sizes, pairs[:, ::-1], pair_counts.astype(np.int64))
    return DetectionMetrics(
        connectivity=connectivity,
        overlap_threshold=float(overlap_threshold),
        reference_lesions=n_ref,
        predicted_lesions=n_pred,
        any_overlap=_counts(touched_ref[1:], touched_pred[1:]),
        at_threshold=_counts(iou_ref >= overlap_threshold, iou_pred >= overlap_threshold),
    )


# --- the per-lesion table ------------------------------------------------------------------


@dataclass(frozen=True)
class Lesion:
    """One lesion (connected component of label 2).

    Attributes
    ----------
    id
        1-based rank by volume (largest first).
    longest_axial_diameter_mm, perpendicular_diameter_mm
        RECIST-like: on the axial slice where the lesion's longest in-plane diameter is
        largest (``axial_slice``, a z index), the longest diameter and the longest chord
        perpendicular to it, both measured edge to edge (pixel-centre distance plus one
        pixel's extent along the line), in mm.
    centroid_zyx
        Mean voxel index ``(z, y, x)``; ``centroid_lps_mm`` the same point in world LPS mm.
    bbox_zyx
        ``(z0, y0, x0, z1, y1, x1)`` with exclusive upper bounds.
    mean_hu
        Mean HU inside the lesion when a volume was given, else ``None``.
    """

    id: int
    voxels: int
    volume_ml: float
    longest_axial_diameter_mm: float
    perpendicular_diameter_mm: float
    axial_slice: int
    mean_hu: float | None
    centroid_zyx: tuple[float, float, float]
    centroid_lps_mm: tuple[float, float, float]
    bbox_zyx: tuple[int, int, int, int, int, int]

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        if self.mean_hu is not None and not np.isfinite(self.mean_hu):
            doc["mean_hu"] = None
        return doc


def _farthest_pair(points: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
    """Longest distance between ``points`` (``(n, 2)`` mm) and its unit direction."""
    candidates = points
    if points.shape[0] > 3:
        try:
            candidates = points[ConvexHull(points).vertices]
        except QhullError:  # collinear points: all of them are candidates
            candidates = points
    diff = candidates[:, None, :] - candidates[None, :, :]
    d2 = np.einsum("ijk,ijk->ij", diff, diff)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    length = float(np.sqrt(d2[i, j]))
    if length == 0.0:
        return 0.0, np.array([0.0, 1.0])
    return length, diff[i, j] / length


def _edge_allowance(direction: NDArray[np.float64], pixel: tuple[float, float]) -> float:
    """Extent of one pixel (``pixel = (sy, sx)`` mm) along a unit ``(y, x)`` direction."""
    return float(abs(direction[0]) * pixel[0] + abs(direction[1]) * pixel[1])


def _perpendicular(
    points: NDArray[np.float64], direction: NDArray[np.float64], pixel: tuple[float, float]
) -> float:
    """Longest chord of the pixel set perpendicular to ``direction`` (mm, edge to edge)."""
    normal = np.array([-direction[1], direction[0]])
    along = points @ direction
    across = points @ normal
    step = min(pixel)
    bins = np.floor((along - along.min()) / step + 0.5).astype(np.int64)
    lo = np.full(bins.max() + 1, np.inf)
    hi = np.full(bins.max() + 1, -np.inf)
    np.minimum.at(lo, bins, across)
    np.maximum.at(hi, bins, across)
    valid = np.isfinite(lo)
    return float((hi[valid] - lo[valid]).max()) + _edge_allowance(normal, pixel)


def _axial_diameters(
    mask: NDArray[np.bool_], pixel: tuple[float, float]
) -> tuple[float, float, int]:
    """Longest and perpendicular diameters (mm) and the z offset of the slice measured."""
    best = (-1.0, 0.0, 0)
    for k in range(mask.shape[0]):
        sl = mask[k]
        if not sl.any():
            continue
        pts = np.argwhere(sl).astype(np.float64) * np.asarray(pixel)
        edge = sl & ~ndimage.binary_erosion(sl, border_value=0)
        length, direction = _farthest_pair(np.argwhere(edge).astype(np.float64) * pixel)
        longest = length + _edge_allowance(direction, pixel)
        if longest > best[0]:
            best = (longest, _perpendicular(pts, direction, pixel), k)
    return best


def _bbox(box: tuple[slice, ...]) -> tuple[int, int, int, int, int, int]:
    z, y, x = box
    return (int(z.start), int(y.start), int(x.start), int(z.stop), int(y.stop), int(x.stop))


def _measure(
    mask: NDArray[np.bool_],
    box: tuple[slice, ...],
    labels: LabelMap,
    volume: Volume | None,
) -> Lesion:
    """One lesion from its mask cropped to ``box`` (absolute slices of the full grid)."""
    geom = labels.geometry
    origin = np.array([s.start for s in box], dtype=np.float64)
    c = np.argwhere(mask).mean(axis=0) + origin
    w = geom.index_to_world(c)
    longest, perp, k = _axial_diameters(mask, (geom.spacing[1], geom.spacing[2]))
    hu = None if volume is None else float(volume.data[box][mask].astype(np.float64).mean())
    n = int(np.count_nonzero(mask))
    return Lesion(
        id=0,
        voxels=n,
        volume_ml=n * geom.voxel_volume_ml,
        longest_axial_diameter_mm=longest,
        perpendicular_diameter_mm=perp,
        axial_slice=int(box[0].start + k),
        mean_hu=hu,
        centroid_zyx=(float(c[0]), float(c[1]), float(c[2])),
        centroid_lps_mm=(float(w[0]), float(w[1]), float(w[2])),
        bbox_zyx=_bbox(box),
    )


def lesion_table(
    labels: LabelMap, volume: Volume | None = None, *, connectivity: int = 26
) -> list[Lesion]:
    """The lesions of ``labels`` (label 2 components), largest volume first.

    Parameters
    ----------
    labels
        Label map ``data[z, y, x]``.
    volume
        Optional CT on the same grid for the mean HU of each lesion.
    connectivity
        6 or 26.
    """
    if volume is not None and not volume.geometry.same_grid(labels.geometry):
        raise ValueError(
            f"volume {volume.geometry!r} and labels {labels.geometry!r} are on different grids"
        )
    lesion = labels.lesion()
    outer = bounding_box(lesion)
    if outer is None:
        return []
    lab, _ = components(lesion[outer], connectivity)  # labelled inside the lesions' box only
    found = []
    for index, inner in enumerate(ndimage.find_objects(lab), start=1):
        if inner is None:
            continue
        box = tuple(
            slice(o.start + i.start, o.start + i.stop) for o, i in zip(outer, inner, strict=True)
        )
        found.append(_measure(lab[inner] == index, box, labels, volume))
    found.sort(key=lambda les: -les.voxels)
    return [replace(les, id=i) for i, les in enumerate(found, start=1)]
