"""NRRD masks and volumes (pynrrd), e.g. 3D Slicer / dcmqi ``liver_seg.nrrd``.

NRRD stores ``space directions`` (one world vector per array axis) and ``space origin`` in
a named space; LPS and RAS (and LAS) spaces are converted to LivGUI's LPS world and the
array is brought to memory order ``a[z, y, x]`` by permutations and flips only.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nrrd as pynrrd
import numpy as np
import psutil
from numpy.typing import NDArray

from livgui.core.geometry import Geometry, reorientation_to_lps
from livgui.core.volume import LabelMap, SourceInfo, Volume
from livgui.imageio.errors import ImageReadError
from livgui.imageio.maskcheck import check_mask_shape, finish_labels

__all__ = ["read_nrrd", "read_nrrd_labels"]

log = logging.getLogger(__name__)
_nrrd: Any = pynrrd  # untyped library

#: World-axis signs turning each supported NRRD space into LPS.
_SPACE_TO_LPS = {
    "left-posterior-superior": (1.0, 1.0, 1.0),
    "lps": (1.0, 1.0, 1.0),
    "right-anterior-superior": (-1.0, -1.0, 1.0),
    "ras": (-1.0, -1.0, 1.0),
    "left-anterior-superior": (1.0, -1.0, 1.0),
    "las": (1.0, -1.0, 1.0),
}
_INT16 = np.iinfo(np.int16)


def _read_header(path: str) -> dict[str, Any]:
    try:
        header: dict[str, Any] = _nrrd.read_header(path)
    except (OSError, ValueError, _nrrd.NRRDError) as exc:
        raise ImageReadError(path, f"not a readable NRRD file ({exc})") from exc
    return header


def _spatial_layout(path: str, header: dict[str, Any]) -> tuple[list[int], NDArray[np.float64]]:
    """The three spatial axes of the array and the LPS affine over them (file index order)."""
    sizes = [int(s) for s in header["sizes"]]
    space = str(header.get("space", "")).lower()
    if space not in _SPACE_TO_LPS:
        raise ImageReadError(
            path, f"NRRD space {space or '(none)'!r} is not supported: need LPS or RAS"
        )
    directions = np.asarray(header.get("space directions"), dtype=np.float64)
    if directions.ndim != 2 or directions.shape[0] != len(sizes):
        raise ImageReadError(path, "NRRD header has no usable 'space directions'")
    spatial = [i for i, row in enumerate(directions) if np.all(np.isfinite(row))]
    others = [i for i in range(len(sizes)) if i not in spatial]
    if len(spatial) != 3 or any(sizes[i] != 1 for i in others):
        raise ImageReadError(path, f"NRRD of sizes {sizes} is not one 3-D volume")
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=np.float64)
    signs = np.array(_SPACE_TO_LPS[space])
    affine = np.eye(4)
    affine[:3, :3] = (directions[spatial] * signs).T  # column a = direction of axis a
    affine[:3, 3] = origin * signs
    return spatial, affine


def _read(path: str | Path) -> tuple[str, NDArray[Any], Geometry, SourceInfo]:
    """Read an NRRD into memory order; returns path, data, geometry and source info."""
    p = str(path)
    header = _read_header(p)
    spatial, affine_file = _spatial_layout(p, header)
    sizes = [int(s) for s in header["sizes"]]
    _check_memory(p, sizes, str(header.get("type", "")))
    try:
        data, _ = _nrrd.read(p, index_order="F")
    except (OSError, ValueError, EOFError, zlib.error, _nrrd.NRRDError) as exc:
        raise ImageReadError(p, f"file is incomplete or corrupt ({exc})") from exc
    data = np.asarray(data).reshape([sizes[i] for i in spatial], order="A")
    file_shape = (sizes[spatial[0]], sizes[spatial[1]], sizes[spatial[2]])
    reo, affine = reorientation_to_lps(affine_file, file_shape)
    memory = np.ascontiguousarray(reo.to_memory(data))
    header_info = {
        "space": header.get("space"),
        "affine_lps_file": affine_file,
        "nrrd_type": header.get("type"),
    }
    source = SourceInfo(p, "nrrd", reo, file_shape, header_info, ())
    return p, memory, Geometry(memory.shape, affine), source


def _check_memory(path: str, sizes: list[int], type_name: str) -> None:
    # 3 copies at most (decoded, reordered, converted), at 8 bytes per voxel worst case.
    needed = int(np.prod(sizes, dtype=np.int64)) * 8 * 3
    available = int(psutil.virtual_memory().available)
    if needed > available:
        raise ImageReadError(
            path,
            f"NRRD of sizes {sizes} ({type_name}) needs about {needed / (1 << 30):.2f} GiB "
            f"of memory but only {available / (1 << 30):.2f} GiB is available",
        )


def read_nrrd_labels(
    path: str | Path,
    like: Volume | None = None,
    *,
    label_values: Mapping[float, int] | None = None,
    keep: Mapping[float, int] | None = None,
) -> LabelMap:
    """Read an NRRD mask as a uint8 label map in memory order ``(z, y, x)``.

    Same rules as :func:`livgui.imageio.nifti.read_nifti_labels`: the shape must match
    ``like`` after reorientation (hard error naming both shapes), other geometry differences
    become warnings naming the field, values other than 0/1/2 (after ``label_values`` or
    ``keep`` mapping) are listed and refused.
    """
    p, data, geometry, source = _read(path)
    if like is not None:
        check_mask_shape(p, data.shape, like, source.file_shape)
    return finish_labels(p, data, geometry, like, source, label_values=label_values, keep=keep)


def read_nrrd(path: str | Path) -> Volume:
    """Read an NRRD CT volume in memory order ``(z, y, x)``: int16 when it fits, else float32."""
    p, data, geometry, source = _read(path)
    fits = data.dtype.kind in "biu" and (
        data.size == 0 or (data.min() >= _INT16.min and data.max() <= _INT16.max)
    )
    out = data.astype(np.int16 if fits else np.float32, copy=False)
    return Volume(np.ascontiguousarray(out), geometry, source=source, name=Path(p).stem)
