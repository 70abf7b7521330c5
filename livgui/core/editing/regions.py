"""Volume-wide editing operations: connected components, slice interpolation, accepting a
model prediction.  Same conventions as :mod:`livgui.core.editing.tools` (labels
``[z, y, x]`` uint8, label rules, in-place change, an :class:`Edit` returned).

Components use 26-connectivity (``scipy.ndimage.label`` with a full 3x3x3 structure).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from livgui.core.editing.delta import Edit
from livgui.core.editing.tools import Plane, apply_region, class_mask, label_op, plane_axes
from livgui.core.geometry import Geometry
from livgui.core.lesions import components
from livgui.core.volume import LABEL_NAMES, LESION

__all__ = [
    "AcceptResult",
    "accept_prediction",
    "interpolate_slices",
    "keep_largest",
    "remove_island",
    "remove_small",
    "touched_mask",
]


def _components(mask: NDArray[np.bool_]) -> tuple[NDArray[np.int32], int]:
    return components(mask, connectivity=26)  # the lesion table's own labelling


def _erase_components(
    labels: NDArray[np.uint8], lab: NDArray[np.int32], ids: Iterable[int], label: int
) -> Edit:
    """Erase (by the label rules) the components ``ids`` of ``lab``."""
    ids = sorted(set(ids))
    if not ids:
        return Edit.empty()
    boxes = ndimage.find_objects(lab, max_label=max(ids))
    chosen = [boxes[i - 1] for i in ids if boxes[i - 1] is not None]
    lo = [min(b[a].start for b in chosen) for a in range(3)]
    hi = [max(b[a].stop for b in chosen) for a in range(3)]
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    region = np.isin(lab[sl], ids)
    return apply_region(labels, (lo[0], lo[1], lo[2]), region, label, erase=True)


def remove_island(labels: NDArray[np.uint8], zyx: tuple[int, int, int], label: int) -> Edit:
    """Erase the 26-connected island of ``label`` under voxel ``zyx`` (empty when none)."""
    mask = class_mask(labels, label)
    if not mask[zyx]:
        return Edit.empty()
    lab, _ = _components(mask)
    return _erase_components(labels, lab, [int(lab[zyx])], label)


def keep_largest(labels: NDArray[np.uint8], label: int) -> Edit:
    """Erase every island of ``label`` except the largest (ties: the first found)."""
    lab, n = _components(class_mask(labels, label))
    if n < 2:
        return Edit.empty()
    sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    keep = int(np.argmax(sizes)) + 1
    return _erase_components(labels, lab, (i for i in range(1, n + 1) if i != keep), label)


def remove_small(labels: NDArray[np.uint8], geometry: Geometry, label: int, min_ml: float) -> Edit:
    """Erase islands of ``label`` smaller than ``min_ml`` millilitres."""
    lab, n = _components(class_mask(labels, label))
    if n == 0:
        return Edit.empty()
    sizes_ml = np.bincount(lab.ravel(), minlength=n + 1)[1:] * geometry.voxel_volume_ml
    return _erase_components(
        labels, lab, (int(i) + 1 for i in np.flatnonzero(sizes_ml < min_ml)), label
    )


def _signed_distance(mask: NDArray[np.bool_], sampling: tuple[float, float]) -> NDArray[np.float64]:
    """Signed distance in mm, positive inside: distance to the outside minus to the inside."""
    inside = ndimage.distance_transform_edt(mask, sampling=sampling)
    outside = ndimage.distance_transform_edt(~mask, sampling=sampling)
    return np.asarray(inside - outside, dtype=np.float64)


def interpolate_slices(
    labels: NDArray[np.uint8],
    geometry: Geometry,
    plane: Plane,
    key_slices: Sequence[int],
    label: int,
) -> Edit:
    """Fill the slices between edited key slices by shape-based interpolation.

    For each pair of consecutive keys the in-plane ``label`` masks are turned into signed
    distance maps (mm, positive inside); a slice a fraction ``t`` of the way between them
    gets the voxels where ``(1 - t) * d_a + t * d_b > 0``.  This is the shape-based
    interpolation of Raya & Udupa, "Shape-based interpolation of multidimensional objects",
    IEEE Trans. Med. Imaging 9(1):32-42, 1990.

    Interpolation only adds ``label`` (it never erases in the gap).  Pairs where either key
    slice has no ``label`` are skipped (a gap between separate objects); ``ValueError``
    when fewer than two keys are given.
    """
    keys = sorted({int(k) for k in key_slices})
    if len(keys) < 2:
        raise ValueError("interpolation needs at least two edited key slices")
    n_ax, r_ax, c_ax = plane_axes(plane)
    if keys[0] < 0 or keys[-1] >= labels.shape[n_ax]:
        raise IndexError(f"key slices {keys} outside 0..{labels.shape[n_ax] - 1} on {plane}")
    sampling = (geometry.spacing[r_ax], geometry.spacing[c_ax])
    lo, hi = keys[0] + 1, keys[-1]
    if hi <= lo:
        return Edit.empty()
    view = np.moveaxis(labels, n_ax, 0)  # slab[k] is the in-plane slice k
    old = view[lo:hi].copy()
    new = old.copy()
    for a, b in itertools.pairwise(keys):
        ma, mb = class_mask(view[a], label), class_mask(view[b], label)
        if b - a < 2 or not ma.any() or not mb.any():
            continue
        da, db = _signed_distance(ma, sampling), _signed_distance(mb, sampling)
        for k in range(a + 1, b):
            t = (k - a) / (b - a)
            region = ((1.0 - t) * da + t * db) > 0
            new[k - lo] = label_op(new[k - lo], region, label, erase=False)
    origin = [0, 0, 0]
    origin[n_ax] = lo
    edit = Edit.from_boxes(
        (origin[0], origin[1], origin[2]), np.moveaxis(old, 0, n_ax), np.moveaxis(new, 0, n_ax)
    )
    edit.apply(labels)
    return edit


def touched_mask(edits: Iterable[Edit], shape: tuple[int, int, int]) -> NDArray[np.bool_]:
    """Boolean ``[z, y, x]`` mask of voxels changed by ``edits`` (manual work to protect)."""
    mask = np.zeros(shape, dtype=bool)
    for e in edits:
        e.mark(mask)
    return mask


@dataclass(frozen=True)
class AcceptResult:
    """What accepting a prediction did: the edit, and manual voxels kept against it."""

    edit: Edit
    kept_manual: int


def accept_prediction(
    labels: NDArray[np.uint8],
    prediction: NDArray[np.uint8],
    protect: NDArray[np.bool_] | None = None,
    lesion_at: tuple[int, int, int] | None = None,
    overwrite: bool = False,
) -> AcceptResult:
    """Copy the model ``prediction`` into the editable ``labels``, whole or one lesion.

    With ``lesion_at`` only the 26-connected predicted lesion (label 2) containing that
    voxel is accepted (its voxels become 2).  Voxels in ``protect`` (manual edits, e.g. from
    :func:`touched_mask`) that the prediction would change are kept and counted in
    ``kept_manual`` unless ``overwrite`` is given: manual work is never replaced silently
    (RELIABILITY row 29).  The caller records the returned edit as one undo step.
    """
    if prediction.shape != labels.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from labels {labels.shape}")
    if lesion_at is not None:
        return _accept_lesion(labels, prediction, protect, lesion_at, overwrite)
    diff = labels != prediction
    if not diff.any():
        return AcceptResult(Edit.empty(), 0)
    nz = [np.flatnonzero(diff.any(axis=ax)) for ax in ((1, 2), (0, 2), (0, 1))]
    sl = tuple(slice(int(a[0]), int(a[-1]) + 1) for a in nz)
    old, new = labels[sl], prediction[sl].copy()
    kept = 0
    if protect is not None and not overwrite:
        keep = protect[sl] & diff[sl]
        kept = int(np.count_nonzero(keep))
        new[keep] = old[keep]
    edit = Edit.from_boxes((sl[0].start, sl[1].start, sl[2].start), old, new)
    edit.apply(labels)
    return AcceptResult(edit, kept)


def _accept_lesion(
    labels: NDArray[np.uint8],
    prediction: NDArray[np.uint8],
    protect: NDArray[np.bool_] | None,
    zyx: tuple[int, int, int],
    overwrite: bool,
) -> AcceptResult:
    pred_lesion = prediction == LESION
    if not pred_lesion[zyx]:
        raise ValueError(f"no predicted {LABEL_NAMES[LESION]} at voxel (z, y, x) = {zyx}")
    lab, _ = _components(pred_lesion)
    k = int(lab[zyx])
    box = ndimage.find_objects(lab, max_label=k)[k - 1]
    assert box is not None
    region = lab[box] == k
    old = labels[box]
    kept = 0
    if protect is not None and not overwrite:
        keep = region & protect[box] & (old != LESION)
        kept = int(np.count_nonzero(keep))
        region &= ~keep
    origin = (box[0].start, box[1].start, box[2].start)
    return AcceptResult(apply_region(labels, origin, region, LESION), kept)
