"""How each viewing plane cuts a ``[z, y, x]`` array and how it is shown on screen.

With the memory convention (x to the patient's left, y posterior, z superior):

* axial ``a[z]``: rows = y (anterior at the top), columns = x (patient's right on the
  image's left): the radiological convention, no flip needed;
* coronal ``a[:, y]``: rows = z reversed (superior at the top), columns = x;
* sagittal ``a[:, :, x]``: rows = z reversed, columns = y (anterior on the left).

Orientation letters are derived from the volume's affine, so a volume whose axes are not
exactly LPS still gets the truthful dominant letters.  Pure numpy (no Qt).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livgui.core.geometry import Geometry

__all__ = ["PLANE_SPECS", "PlaneSpec", "edge_letters", "orientation_known", "position_text"]

_OPPOSITE = {"L": "R", "R": "L", "P": "A", "A": "P", "S": "I", "I": "S"}


@dataclass(frozen=True)
class PlaneSpec:
    """One plane: the array axis it slices and the axes shown as rows and columns."""

    name: str
    slice_axis: int
    row_axis: int
    col_axis: int
    flip_rows: bool

    def extract(self, data: NDArray[Any], index: int) -> NDArray[Any]:
        """The 2-D slice as displayed (rows top to bottom, columns left to right); a view."""
        plane = _take(data, self, index)
        return plane[::-1] if self.flip_rows else plane

    def shape2d(self, shape: tuple[int, int, int]) -> tuple[int, int]:
        return (shape[self.row_axis], shape[self.col_axis])

    def to_voxel(
        self, row: float, col: float, index: int, shape: tuple[int, int, int]
    ) -> tuple[int, int, int]:
        """Display pixel ``(row, col)`` on slice ``index`` to voxel ``(z, y, x)``."""
        r = int(np.floor(row))
        c = int(np.floor(col))
        if self.flip_rows:
            r = shape[self.row_axis] - 1 - r
        zyx = [0, 0, 0]
        zyx[self.slice_axis] = index
        zyx[self.row_axis] = r
        zyx[self.col_axis] = c
        return (zyx[0], zyx[1], zyx[2])

    def to_display(self, zyx: tuple[int, int, int], shape: tuple[int, int, int]) -> tuple[int, int]:
        """Voxel ``(z, y, x)`` to the display pixel ``(row, col)`` of this plane."""
        r = zyx[self.row_axis]
        if self.flip_rows:
            r = shape[self.row_axis] - 1 - r
        return (r, zyx[self.col_axis])

    def pixel_mm(self, spacing_zyx: tuple[float, float, float]) -> tuple[float, float]:
        """Size of one displayed pixel in mm: (height, width)."""
        return (spacing_zyx[self.row_axis], spacing_zyx[self.col_axis])


def _take(data: NDArray[Any], spec: PlaneSpec, index: int) -> NDArray[Any]:
    out: NDArray[Any]
    if spec.slice_axis == 0:
        out = data[index]
    elif spec.slice_axis == 1:
        out = data[:, index, :]
    else:
        out = data[:, :, index]
    return out


PLANE_SPECS: dict[str, PlaneSpec] = {
    "axial": PlaneSpec("axial", slice_axis=0, row_axis=1, col_axis=2, flip_rows=False),
    "coronal": PlaneSpec("coronal", slice_axis=1, row_axis=0, col_axis=2, flip_rows=True),
    "sagittal": PlaneSpec("sagittal", slice_axis=2, row_axis=0, col_axis=1, flip_rows=True),
}


def _axis_code(geometry: Geometry, array_axis: int) -> str:
    """World letter that increasing index along ``array_axis`` points to."""
    codes_xyz = geometry.orientation  # for index axes x, y, z
    return codes_xyz[2 - array_axis]


def edge_letters(spec: PlaneSpec, geometry: Geometry) -> dict[str, str]:
    """Orientation letters at the ``top``, ``bottom``, ``left`` and ``right`` edges."""
    col = _axis_code(geometry, spec.col_axis)
    row = _axis_code(geometry, spec.row_axis)
    bottom = _OPPOSITE[row] if spec.flip_rows else row
    return {"left": _OPPOSITE[col], "right": col, "top": _OPPOSITE[bottom], "bottom": bottom}


def orientation_known(volume: Any) -> bool:
    """False for images whose patient orientation is unknown (2D exports, "plane unknown").

    Letters on such an image would be a guess presented as a fact, so views omit them.
    """
    source = getattr(volume, "source", None)
    if source is None:
        return True
    if source.format == "2d-image":
        return False
    notes = " ".join(source.warnings).lower()
    return not ("plane unknown" in notes or "orientation unknown" in notes)


_AXIS_LETTERS = {0: ("S", "I"), 1: ("P", "A"), 2: ("L", "R")}  # array axis -> (+, -) world


def position_text(spec: PlaneSpec, geometry: Geometry, zyx: tuple[int, int, int]) -> str:
    """World position of the slice along its normal, e.g. ``"S 94.4 mm"`` (LPS signs)."""
    world = geometry.index_to_world(np.asarray(zyx, dtype=np.float64))
    world_axis = 2 - spec.slice_axis  # LPS component: x (L) for sagittal, z (S) for axial
    value = float(world[world_axis])
    plus, minus = _AXIS_LETTERS[spec.slice_axis]
    return f"{plus if value >= 0 else minus} {abs(value):.1f} mm"
