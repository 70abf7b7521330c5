"""Checks shared by every mask reader: label values, shape and geometry against the image.

A mask whose shape differs from its image is a hard error (RELIABILITY row 7); one on the
same grid size but with other spacing, origin or direction is returned with a warning
naming the field so the user can decide (row 8); label values other than 0/1/2 are listed
and refused unless the caller maps them (row 9).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livgui.core.geometry import Geometry
from livgui.core.volume import LabelMap, SourceInfo, Volume, check_label_values
from livgui.imageio.errors import ImageReadError

__all__ = [
    "ALLOWED_LABELS",
    "check_mask_shape",
    "finish_labels",
    "geometry_mismatch",
    "remap_labels",
    "unexpected_label_values",
    "validate_labels",
]

log = logging.getLogger(__name__)

ALLOWED_LABELS = (0, 1, 2)
_MAX_LISTED = 20
_CHUNK = 1 << 22


def geometry_mismatch(
    volume: Volume | Geometry, mask_geometry: Geometry, voxel_fraction: float = 0.1
) -> list[str]:
    """Warnings for a mask on a grid of the image's size but another spacing/origin/direction.

    Parameters
    ----------
    volume
        The image (or its geometry) the mask should lie on.
    mask_geometry
        The mask's own geometry after reorientation to memory order ``(z, y, x)``.
    voxel_fraction
        Grids whose voxel centres agree everywhere (checked at the 8 corners) within this
        fraction of the smallest voxel size count as the same: tools round affines
        differently (TotalSegmentator's s0002 mask is 0.04 mm off at the far corner).

    Returns
    -------
    list of str
        One message per differing field, each naming the field (``spacing``, ``origin``,
        ``direction``) and both values; empty when the grids agree.  Shape is not
        reported here: see :func:`check_mask_shape`.
    """
    image = volume.geometry if isinstance(volume, Volume) else volume
    shift = _max_corner_shift(image, mask_geometry)
    if shift <= voxel_fraction * min(image.spacing):
        return []
    fields = image.differences(mask_geometry, atol_mm=1e-3)
    out = []
    if "spacing" in fields:
        out.append(
            f"mask spacing (z, y, x) {_fmt(mask_geometry.spacing)} mm differs from the "
            f"image spacing {_fmt(image.spacing)} mm"
        )
    if "origin" in fields:
        out.append(
            f"mask origin (LPS) {_fmt(mask_geometry.origin)} mm differs from the image "
            f"origin {_fmt(image.origin)} mm"
        )
    if "direction" in fields or not out:
        angle = _max_angle_deg(image.affine, mask_geometry.affine)
        out.append(f"mask direction differs from the image direction by up to {angle:.2f} degrees")
    return [f"{m} (voxel centres up to {shift:.3g} mm apart)" for m in out]


def _max_corner_shift(a: Geometry, b: Geometry) -> float:
    """Largest distance (mm) between the two grids' positions of the same corner voxel."""
    nz, ny, nx = a.shape
    corners = np.array(
        [[x, y, z, 1.0] for x in (0, nx - 1) for y in (0, ny - 1) for z in (0, nz - 1)]
    )
    delta = corners @ (a.affine - b.affine).T
    return float(np.max(np.linalg.norm(delta[:, :3], axis=1)))


def _fmt(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def _max_angle_deg(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    da = a[:3, :3] / np.linalg.norm(a[:3, :3], axis=0)
    db = b[:3, :3] / np.linalg.norm(b[:3, :3], axis=0)
    cos = np.clip(np.sum(da * db, axis=0), -1.0, 1.0)
    return float(np.degrees(np.max(np.arccos(cos))))


def check_mask_shape(
    path: str | Path,
    mask_shape: tuple[int, ...],
    volume: Volume,
    mask_file_shape: tuple[int, ...] | None = None,
) -> None:
    """Raise :class:`ImageReadError` naming both shapes when the mask does not fit the image.

    Shapes are compared in memory order ``(z, y, x)``, i.e. after both were reoriented, so
    a mask stored in another axis order than its image still matches.
    """
    if tuple(mask_shape) == tuple(volume.shape):
        return
    stored = f" (stored as {tuple(mask_file_shape)})" if mask_file_shape else ""
    image_file = volume.source.file_shape if volume.source is not None else ()
    image_stored = f" (stored as {tuple(image_file)})" if image_file else ""
    raise ImageReadError(
        path,
        f"mask shape (z, y, x) {tuple(mask_shape)}{stored} does not match the image shape "
        f"{tuple(volume.shape)}{image_stored}: this mask belongs to another image",
    )


def remap_labels(
    array: NDArray[Any],
    label_values: Mapping[float, int] | None = None,
    keep: Mapping[float, int] | None = None,
) -> NDArray[Any]:
    """Translate stored label values into LivGUI's 0/1/2 before validation.

    Parameters
    ----------
    array
        Mask values as stored (any numeric dtype), memory order ``(z, y, x)``.
    label_values
        ``{stored: label}`` pairs; values not listed are left as they are (and must then be
        0, 1 or 2), e.g. ``{255: 1}`` for 0/255 masks.
    keep
        ``{stored: label}`` pairs; every value not listed becomes background (0), e.g.
        ``{5: 1}`` takes only the liver of a TotalSegmentator label map.

    Returns
    -------
    numpy.ndarray
        ``array`` itself when no mapping is given, else a new array (same shape).
    """
    if label_values is not None and keep is not None:
        raise ValueError("give either label_values or keep, not both")
    mapping = keep if keep is not None else label_values
    if mapping is None:
        return array
    bad = [v for v in mapping.values() if int(v) not in ALLOWED_LABELS]
    if bad:
        raise ValueError(f"labels can only be mapped to 0, 1 or 2, not {bad}")
    out_dtype = np.uint8 if keep is not None else np.result_type(array.dtype, np.uint8)
    out = np.zeros(array.shape, dtype=out_dtype) if keep is not None else array.astype(out_dtype)
    for stored, label in mapping.items():
        out[array == stored] = label
    return out


def unexpected_label_values(array: NDArray[Any]) -> list[float]:
    """Sorted values in ``array`` other than 0, 1, 2 (non-integral floats and NaN included)."""
    if array.dtype in (np.uint8, np.int8, np.uint16, np.int16):
        # Histogram in chunks: bincount converts to intp, so whole-array calls cost 8x.
        flat = array.reshape(-1)
        offset = 32768 if array.dtype.kind == "i" else 0
        counts = np.zeros(65536 + offset, dtype=np.int64)
        for start in range(0, flat.size, _CHUNK):
            chunk = flat[start : start + _CHUNK].astype(np.int32) + offset
            counts[: chunk.max(initial=0) + 1] += np.bincount(chunk)
        present = np.flatnonzero(counts) - offset
        return [float(v) for v in present if int(v) not in ALLOWED_LABELS]
    return check_label_values(array, ALLOWED_LABELS)


def validate_labels(path: str | Path, array: NDArray[Any]) -> NDArray[np.uint8]:
    """Return ``array`` as uint8 labels, or raise listing the values that are not 0/1/2."""
    bad = unexpected_label_values(array)
    if bad:
        shown = ", ".join(_fmt_value(v) for v in bad[:_MAX_LISTED])
        more = f" and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
        raise ImageReadError(
            path,
            f"unexpected label values {shown}{more}: a LivGUI mask holds only 0 (background), "
            "1 (liver) and 2 (lesion); map other values explicitly (label_values= or keep=)",
        )
    if array.dtype == np.uint8:
        return array
    return array.astype(np.uint8)


def _fmt_value(v: float) -> str:
    return str(int(v)) if np.isfinite(v) and float(v).is_integer() else repr(float(v))


def finish_labels(
    path: str | Path,
    array: NDArray[Any],
    mask_geometry: Geometry,
    like: Volume | None,
    source: SourceInfo,
    *,
    label_values: Mapping[float, int] | None = None,
    keep: Mapping[float, int] | None = None,
) -> LabelMap:
    """Map, validate and align a mask read by any reader; the common tail of mask readers.

    The label map is put on ``like``'s grid when given (shape must match; other geometry
    differences become warnings in ``source.warnings``), else on its own grid.
    """
    if like is not None:
        check_mask_shape(path, array.shape, like, source.file_shape)
    labels = validate_labels(path, remap_labels(array, label_values, keep))
    warnings = list(source.warnings)
    geometry = mask_geometry
    if like is not None:
        mismatch = geometry_mismatch(like, mask_geometry)
        for message in mismatch:
            log.warning("%s: %s", path, message)
        warnings.extend(mismatch)
        geometry = like.geometry
    header = dict(source.header)
    header["mask_affine_lps"] = np.array(mask_geometry.affine)
    info = SourceInfo(
        source.path,
        source.format,
        source.reorientation,
        source.file_shape,
        header,
        tuple(warnings),
    )
    return LabelMap(np.ascontiguousarray(labels), geometry, name=Path(path).name, source=info)
