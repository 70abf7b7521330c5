"""Slice editing tools on a ``labels[z, y, x]`` uint8 array (0 background, 1 liver, 2 lesion).

Every tool takes voxel coordinates on a plane (:class:`PlanePoint`), sizes in mm, changes
``labels`` in place and returns the :class:`~livgui.core.editing.delta.Edit` it made (a
delta inside its bounding box, empty when nothing changed) for the undo history.

Planes and in-plane coordinates (array indices, whatever the screen flips):

============  ===========  ===================
plane         slice index  (row, col)
============  ===========  ===================
``axial``     z            (y, x)
``coronal``   y            (z, x)
``sagittal``  x            (z, y)
============  ===========  ===================

Label semantics (shown in the help sheet)
-----------------------------------------
* **Paint liver** sets background to liver and leaves lesion voxels alone (a lesion lies
  inside the liver; remove it with the lesion eraser).
* **Paint lesion** sets 2 anywhere, also outside the current liver: a lesion voxel counts
  as liver too (LiTS convention), so painting lesion implies liver.
* **Erase lesion** gives liver back (2 -> 1); background and liver are untouched.
* **Erase liver** clears liver and any lesion under it (1, 2 -> 0).

Fills use face connectivity (4 in a slice, 6 in 3-D) so that they do not leak through
diagonal gaps; component operations use 26-connectivity (:mod:`.regions`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from livgui.core.editing.delta import Edit
from livgui.core.geometry import Geometry
from livgui.core.volume import BACKGROUND, LABEL_NAMES, LESION, LIVER

__all__ = [
    "PLANES",
    "BrushOptions",
    "FillRule",
    "Plane",
    "PlanePoint",
    "apply_region",
    "brush",
    "class_mask",
    "flood_fill_2d",
    "label_op",
    "plane_axes",
    "polygon_fill",
    "rasterize_polygon",
    "step_name",
    "stroke_points",
    "threshold_fill",
]

Plane = Literal["axial", "coronal", "sagittal"]
PLANES: tuple[Plane, ...] = ("axial", "coronal", "sagittal")
FillRule = Literal["even-odd", "nonzero"]
_NORMAL = {"axial": 0, "coronal": 1, "sagittal": 2}
_T = TypeVar("_T", bound=np.generic)
_CROSS4 = ndimage.generate_binary_structure(2, 1)
_CROSS6 = ndimage.generate_binary_structure(3, 1)


def plane_axes(plane: Plane) -> tuple[int, int, int]:
    """``(normal, row, col)`` array axes of a plane (see the module table)."""
    if plane not in _NORMAL:
        raise ValueError(f"unknown plane {plane!r}; expected one of {PLANES}")
    n = _NORMAL[plane]
    r, c = (a for a in range(3) if a != n)
    return n, r, c


@dataclass(frozen=True)
class PlanePoint:
    """A cursor position: slice ``index`` on ``plane`` and in-plane voxel ``(row, col)``.

    ``row`` and ``col`` are fractional voxel indices (voxel centres at integers).
    """

    plane: Plane
    index: int
    row: float
    col: float

    def zyx_float(self) -> tuple[float, float, float]:
        """The point as fractional ``(z, y, x)`` array indices."""
        n, r, c = plane_axes(self.plane)
        out = [0.0, 0.0, 0.0]
        out[n], out[r], out[c] = float(self.index), float(self.row), float(self.col)
        return (out[0], out[1], out[2])

    def zyx(self) -> tuple[int, int, int]:
        """The voxel under the point as integer ``(z, y, x)``."""
        z, y, x = (math.floor(v + 0.5) for v in self.zyx_float())
        return (z, y, x)


@dataclass(frozen=True)
class BrushOptions:
    """Brush settings: ``size_mm`` is the brush *diameter* in mm (what the slider shows).

    ``sphere`` paints a 3-D ball instead of a disc in the plane; ``hu_range`` (low, high HU,
    inclusive) limits painting to voxels whose HU lies inside it.
    """

    size_mm: float = 6.0
    label: int = LIVER
    erase: bool = False
    sphere: bool = False
    hu_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not self.size_mm > 0:
            raise ValueError(f"brush size must be positive, got {self.size_mm} mm")
        _check_label(self.label)


def _check_label(label: int) -> None:
    if label not in (LIVER, LESION):
        raise ValueError(f"editable labels are {LIVER} (liver) and {LESION} (lesion), got {label}")


def class_mask(labels: NDArray[np.uint8], label: int) -> NDArray[np.bool_]:
    """Voxels of a class: liver includes lesions (``labels > 0``), lesion is ``== 2``."""
    _check_label(label)
    return labels > 0 if label == LIVER else labels == LESION


def label_op(
    old: NDArray[np.uint8], region: NDArray[np.bool_], label: int, erase: bool
) -> NDArray[np.uint8]:
    """New values of a box after painting/erasing ``label`` in ``region`` (module rules)."""
    _check_label(label)
    new = old.copy()
    if erase and label == LESION:
        new[region & (old == LESION)] = LIVER
    elif erase:
        new[region] = BACKGROUND
    elif label == LESION:
        new[region] = LESION
    else:
        new[region & (old == BACKGROUND)] = LIVER
    return new


def apply_region(
    labels: NDArray[np.uint8],
    origin: tuple[int, int, int],
    region: NDArray[np.bool_],
    label: int,
    erase: bool = False,
) -> Edit:
    """Paint or erase ``label`` in a boolean ``region`` box whose corner is ``origin``."""
    sl = tuple(slice(o, o + s) for o, s in zip(origin, region.shape, strict=True))
    old = labels[sl]
    edit = Edit.from_boxes(origin, old, label_op(old, region, label, erase))
    edit.apply(labels)
    return edit


def _in_bounds(zyx: tuple[int, int, int], shape: tuple[int, ...]) -> bool:
    return all(0 <= v < s for v, s in zip(zyx, shape, strict=True))


def brush(
    labels: NDArray[np.uint8],
    geometry: Geometry,
    at: PlanePoint,
    options: BrushOptions,
    hu: NDArray[Any] | None = None,
) -> Edit:
    """One dab: a disc in the plane (or a ball) of diameter ``options.size_mm``.

    Under anisotropic spacing ``geometry.spacing`` (z, y, x mm) the dab is an ellipse in
    voxels.  The voxel under the cursor is always included, so tiny brushes paint one
    voxel.  ``hu`` (same shape as ``labels``) is required when ``options.hu_range`` is set.
    """
    centre = at.zyx_float()
    if not _in_bounds(at.zyx(), labels.shape):
        return Edit.empty()
    sp = np.asarray(geometry.spacing, dtype=np.float64)
    r = options.size_mm / 2.0
    half = r / sp
    if not options.sphere:
        half[plane_axes(at.plane)[0]] = 0.0
    lo = [max(0, math.ceil(c - h)) for c, h in zip(centre, half, strict=True)]
    hi = [min(s, math.floor(c + h) + 1) for c, h, s in zip(centre, half, labels.shape, strict=True)]
    grids = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, sp, strict=True))
    region = np.asarray(d2 <= r * r + 1e-9)
    cz, cy, cx = at.zyx()
    if lo[0] <= cz < hi[0] and lo[1] <= cy < hi[1] and lo[2] <= cx < hi[2]:
        region[cz - lo[0], cy - lo[1], cx - lo[2]] = True
    origin = (lo[0], lo[1], lo[2])
    if options.hu_range is not None:
        region &= _hu_ok(hu, labels.shape, options.hu_range, origin, region.shape)
    return apply_region(labels, origin, region, options.label, options.erase)


def _hu_ok(
    hu: NDArray[Any] | None,
    shape: tuple[int, ...],
    hu_range: tuple[float, float],
    origin: tuple[int, int, int],
    box: tuple[int, ...],
) -> NDArray[np.bool_]:
    if hu is None or hu.shape != shape:
        raise ValueError("an HU range needs the CT volume (same shape as the labels)")
    sl = tuple(slice(o, o + s) for o, s in zip(origin, box, strict=True))
    v = hu[sl]
    return np.asarray((v >= hu_range[0]) & (v <= hu_range[1]))


def stroke_points(
    a: PlanePoint, b: PlanePoint, geometry: Geometry, size_mm: float
) -> list[PlanePoint]:
    """Dab positions from ``a`` (exclusive) to ``b`` (inclusive) so a fast drag leaves no gaps.

    Dabs are at most a quarter of the brush diameter (and one voxel) apart, in mm.
    """
    if (a.plane, a.index) != (b.plane, b.index):
        return [b]
    _, r_ax, c_ax = plane_axes(a.plane)
    sp = geometry.spacing
    dist = math.hypot((b.row - a.row) * sp[r_ax], (b.col - a.col) * sp[c_ax])
    step = max(size_mm / 4.0, min(sp[r_ax], sp[c_ax]) * 0.5)
    n = max(1, math.ceil(dist / step))
    return [
        PlanePoint(
            a.plane, a.index, a.row + (b.row - a.row) * k / n, a.col + (b.col - a.col) * k / n
        )
        for k in range(1, n + 1)
    ]


def _embed_2d(
    plane: Plane, index: int, region2d: NDArray[np.bool_]
) -> tuple[tuple[int, int, int], NDArray[np.bool_]]:
    """A 2-D in-plane region as a one-voxel-thick 3-D box (origin, region)."""
    n = plane_axes(plane)[0]
    region = np.expand_dims(region2d, axis=n)
    origin = [0, 0, 0]
    origin[n] = index
    return (origin[0], origin[1], origin[2]), region


def _slice(array: NDArray[_T], plane: Plane, index: int) -> NDArray[_T]:
    n = plane_axes(plane)[0]
    if not 0 <= index < array.shape[n]:
        raise IndexError(f"{plane} slice {index} outside 0..{array.shape[n] - 1}")
    return np.take(array, index, axis=n)


def _component_2d(ok: NDArray[np.bool_], row: int, col: int) -> NDArray[np.bool_] | None:
    if not (0 <= row < ok.shape[0] and 0 <= col < ok.shape[1]) or not ok[row, col]:
        return None
    lab, _ = ndimage.label(ok, structure=_CROSS4)
    return np.asarray(lab == lab[row, col])


def flood_fill_2d(
    labels: NDArray[np.uint8], at: PlanePoint, label: int, erase: bool = False
) -> Edit:
    """Fill (or erase) the in-plane 4-connected region that shares the seed voxel's value.

    Clicking a hole inside the liver with the liver label fills the hole; with ``erase``
    the seed's region is erased by the label rules.
    """
    sl2 = _slice(labels, at.plane, at.index)
    z, y, x = at.zyx()
    _, r_ax, c_ax = plane_axes(at.plane)
    row, col = (z, y, x)[r_ax], (z, y, x)[c_ax]
    if not (0 <= row < sl2.shape[0] and 0 <= col < sl2.shape[1]):
        return Edit.empty()
    comp = _component_2d(np.asarray(sl2 == sl2[row, col]), row, col)
    if comp is None:
        return Edit.empty()
    origin, region = _embed_2d(at.plane, at.index, comp)
    return apply_region(labels, origin, region, label, erase)


def threshold_fill(
    labels: NDArray[np.uint8],
    hu: NDArray[Any],
    at: PlanePoint,
    hu_range: tuple[float, float],
    label: int,
    *,
    three_d: bool = False,
) -> Edit:
    """Paint the connected region of voxels with HU in ``hu_range`` (inclusive) around the seed.

    In the current slice (4-connected) or, with ``three_d``, in the volume (6-connected).
    Nothing happens when the seed's own HU lies outside the range.
    """
    if hu.shape != labels.shape:
        raise ValueError(f"CT shape {hu.shape} differs from label shape {labels.shape}")
    zyx = at.zyx()
    if not _in_bounds(zyx, labels.shape):
        return Edit.empty()
    if not three_d:
        _, r_ax, c_ax = plane_axes(at.plane)
        h = _slice(hu, at.plane, at.index)
        comp = _component_2d(
            np.asarray((h >= hu_range[0]) & (h <= hu_range[1])), zyx[r_ax], zyx[c_ax]
        )
        if comp is None:
            return Edit.empty()
        origin, region = _embed_2d(at.plane, at.index, comp)
        return apply_region(labels, origin, region, label)
    ok = (hu >= hu_range[0]) & (hu <= hu_range[1])
    if not ok[zyx]:
        return Edit.empty()
    lab, _ = ndimage.label(ok, structure=_CROSS6)
    k = int(lab[zyx])
    box = ndimage.find_objects(lab, max_label=k)[k - 1]
    assert box is not None
    origin = (box[0].start, box[1].start, box[2].start)
    return apply_region(labels, origin, np.asarray(lab[box] == k), label)


def rasterize_polygon(
    points: Sequence[tuple[float, float]] | NDArray[np.floating],
    shape: tuple[int, int],
    rule: FillRule = "even-odd",
) -> NDArray[np.bool_]:
    """Pixels of a ``shape`` (rows, cols) image whose centres lie inside a polygon.

    ``points`` are ``(row, col)`` vertices (the polygon closes itself).  ``even-odd``: a
    pixel is inside when a ray crosses the outline an odd number of times (self-overlapping
    lasso loops become holes); ``nonzero``: inside when the winding number is not zero
    (overlapping loops stay filled).  Pixels the outline itself passes through are always
    included, so what the user traced is painted.  Scanline algorithm, one row at a time.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    out = np.zeros(shape, dtype=bool)
    if len(p) < 3:
        return out
    r0, c0 = p[:, 0], p[:, 1]
    r1, c1 = np.roll(r0, -1), np.roll(c0, -1)
    cols = np.arange(shape[1], dtype=np.float64)
    lo = max(0, math.ceil(r0.min()))
    hi = min(shape[0] - 1, math.floor(r0.max()))
    for row in range(lo, hi + 1):
        cross = (r0 <= row) != (r1 <= row)
        if not cross.any():
            continue
        t = (row - r0[cross]) / (r1[cross] - r0[cross])
        xs = c0[cross] + t * (c1[cross] - c0[cross])
        order = np.argsort(xs)
        left = np.searchsorted(xs[order], cols, side="right")  # crossings left of each col
        if rule == "even-odd":
            out[row] = (left % 2) == 1
        else:
            wind = np.concatenate([[0], np.cumsum(np.where(r1[cross] > r0[cross], 1, -1)[order])])
            out[row] = wind[left] != 0
    out |= _outline(p, shape)
    return out


def _outline(p: NDArray[np.float64], shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Pixels the closed outline passes through (sampled every half pixel, rounded)."""
    out = np.zeros(shape, dtype=bool)
    for (ra, ca), (rb, cb) in zip(p, np.roll(p, -1, axis=0), strict=True):
        n = 2 * math.ceil(max(abs(rb - ra), abs(cb - ca))) + 1
        t = np.linspace(0.0, 1.0, n)
        rr = np.floor(ra + t * (rb - ra) + 0.5).astype(np.int64)
        cc = np.floor(ca + t * (cb - ca) + 0.5).astype(np.int64)
        ok = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
        out[rr[ok], cc[ok]] = True
    return out


def polygon_fill(
    labels: NDArray[np.uint8],
    plane: Plane,
    index: int,
    points: Sequence[tuple[float, float]] | NDArray[np.floating],
    label: int,
    *,
    erase: bool = False,
    rule: FillRule = "even-odd",
) -> Edit:
    """Polygon / lasso: fill (or, with ``erase``, cut) inside in-plane ``(row, col)`` points."""
    sl2 = _slice(labels, plane, index)
    inside = rasterize_polygon(points, (sl2.shape[0], sl2.shape[1]), rule)
    if not inside.any():
        return Edit.empty()
    origin, region = _embed_2d(plane, index, inside)
    return apply_region(labels, origin, region, label, erase)


def step_name(
    tool: str,
    label: int,
    at: PlanePoint | None = None,
    size_mm: float | None = None,
) -> str:
    """History-list name, e.g. ``"Brush 6 mm on lesion, axial 84"``."""
    size = f" {size_mm:g} mm" if size_mm is not None else ""
    where = f", {at.plane} {at.index}" if at is not None else ""
    return f"{tool}{size} on {LABEL_NAMES.get(label, str(label))}{where}"
