"""The one geometry convention of LivGUI.

In memory every volume is an array ``a[z, y, x]`` (C-contiguous) obtained from the file by
axis permutations and flips only, so that the array axes point, as nearly as the file's
direction cosines allow, towards

* ``x`` (last axis): the patient's **left**,
* ``y`` (middle axis): **posterior**,
* ``z`` (first axis): **superior**

(DICOM's LPS patient system). ``a[k]`` is then a radiological axial image: anterior at the
top, the patient's right on the image's left.

World coordinates are DICOM patient coordinates (LPS, millimetres).  The affine of a
:class:`Geometry` maps *index* coordinates given in ``(x, y, z)`` order (the reverse of the
array axes, as in NIfTI and ITK) to world LPS::

    world_lps = affine @ [x_index, y_index, z_index, 1]

Spacing is reported in array order ``(z, y, x)`` in mm.  NIfTI files store RAS world
coordinates; :func:`ras_to_lps` converts (the two conventions differ by the sign of the
first two world axes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "LPS_TO_RAS",
    "Geometry",
    "Reorientation",
    "orientation_codes",
    "ras_to_lps",
    "reorientation_to_lps",
]

#: Multiplying a world-coordinate affine by this converts RAS to LPS and back.
LPS_TO_RAS: NDArray[np.float64] = np.diag([-1.0, -1.0, 1.0, 1.0])

_POS_CODES = ("L", "P", "S")
_NEG_CODES = ("R", "A", "I")


def ras_to_lps(affine: NDArray[np.floating]) -> NDArray[np.float64]:
    """Return the LPS version of a RAS affine (or vice versa: the map is its own inverse)."""
    return LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)


def orientation_codes(affine_lps: NDArray[np.floating]) -> tuple[str, str, str]:
    """Direction codes of the three index axes of an LPS affine.

    Returns, for index axes in ``(x, y, z)`` order, the letter of the world direction each
    axis points to (``L``/``R``, ``P``/``A``, ``S``/``I``), the axis of largest cosine
    winning (so an oblique axis gets its dominant letter).
    """
    codes = []
    for world_axis, sign in _dominant_axes(np.asarray(affine_lps, dtype=np.float64)[:3, :3]):
        codes.append(_POS_CODES[world_axis] if sign > 0 else _NEG_CODES[world_axis])
    return (codes[0], codes[1], codes[2])


def _dominant_axes(linear: NDArray[np.float64]) -> list[tuple[int, int]]:
    """For each index axis (column), the world axis it is closest to and the sign.

    Assignment is greedy by the largest absolute cosine so that every world axis is used
    exactly once even for strongly oblique matrices.
    """
    norms = np.linalg.norm(linear, axis=0)
    norms[norms == 0] = 1.0
    cos = np.abs(linear / norms)
    result: list[tuple[int, int]] = [(-1, 1)] * 3
    used_world: set[int] = set()
    used_index: set[int] = set()
    order = np.dstack(np.unravel_index(np.argsort(-cos, axis=None), cos.shape))[0]
    for world_axis, index_axis in order:
        if world_axis in used_world or index_axis in used_index:
            continue
        sign = 1 if linear[world_axis, index_axis] >= 0 else -1
        result[int(index_axis)] = (int(world_axis), sign)
        used_world.add(int(world_axis))
        used_index.add(int(index_axis))
    return result


@dataclass(frozen=True)
class Reorientation:
    """How a file's array axes become the in-memory ``(z, y, x)`` axes.

    ``perm[m]`` is the file array axis that becomes memory axis ``m`` (``m`` in array
    order: 0 = z, 1 = y, 2 = x); ``flip[m]`` says whether memory axis ``m`` is reversed
    after the permutation.  Only permutations and flips: no voxel is ever resampled.
    """

    perm: tuple[int, int, int] = (0, 1, 2)
    flip: tuple[bool, bool, bool] = (False, False, False)

    def to_memory(self, array: NDArray[np.generic]) -> NDArray[np.generic]:
        """File-ordered array to memory order (a view where possible)."""
        out = np.transpose(array, self.perm)
        slices = tuple(slice(None, None, -1) if f else slice(None) for f in self.flip)
        return out[slices]

    def to_file(self, array: NDArray[np.generic]) -> NDArray[np.generic]:
        """Memory-ordered array back to the file's axis order (inverse of to_memory)."""
        slices = tuple(slice(None, None, -1) if f else slice(None) for f in self.flip)
        undone = array[slices]
        inverse = tuple(int(i) for i in np.argsort(self.perm))
        return np.transpose(undone, inverse)

    @property
    def is_identity(self) -> bool:
        return self.perm == (0, 1, 2) and not any(self.flip)


def reorientation_to_lps(
    file_affine_lps: NDArray[np.floating], file_shape: tuple[int, ...]
) -> tuple[Reorientation, NDArray[np.float64]]:
    """Find the permutation/flips that bring a file array into the memory convention.

    Parameters
    ----------
    file_affine_lps
        4x4 affine mapping the file's index coordinates ``(i, j, k, 1)`` (in the file
        array's own axis order, i.e. ``array[i, j, k]``) to world LPS mm.
    file_shape
        Shape of the file array (first three axes are spatial).

    Returns
    -------
    reorientation, memory_affine
        ``memory_affine`` maps ``(x, y, z, 1)`` memory indices to world LPS.
    """
    affine = np.asarray(file_affine_lps, dtype=np.float64)
    axes = _dominant_axes(affine[:3, :3])  # per file axis: (world axis, sign)
    # memory axis m (z=0,y=1,x=2) must hold world axis 2-m (S, P, L).
    perm = [0, 0, 0]
    flip = [False, False, False]
    for file_axis, (world_axis, sign) in enumerate(axes):
        memory_axis = 2 - world_axis
        perm[memory_axis] = file_axis
        flip[memory_axis] = sign < 0
    # Build the affine of the memory array: memory index (x, y, z) -> file index -> world.
    index_map = np.zeros((4, 4))
    index_map[3, 3] = 1.0
    for memory_axis in range(3):
        file_axis = perm[memory_axis]
        column = 2 - memory_axis  # x index is column 0, z index column 2
        n = int(file_shape[file_axis])
        if flip[memory_axis]:
            index_map[file_axis, column] = -1.0
            index_map[file_axis, 3] = n - 1
        else:
            index_map[file_axis, column] = 1.0
    memory_affine = affine @ index_map
    return Reorientation((perm[0], perm[1], perm[2]), (flip[0], flip[1], flip[2])), memory_affine


@dataclass(frozen=True, eq=False)
class Geometry:
    """Grid geometry of a volume held in memory as ``a[z, y, x]``.

    Attributes
    ----------
    shape
        Array shape ``(z, y, x)``.
    affine
        4x4 float64 matrix, ``(x, y, z, 1)`` index to world LPS mm.
    """

    shape: tuple[int, int, int]
    affine: NDArray[np.float64] = field(default_factory=lambda: np.eye(4))

    def __post_init__(self) -> None:
        aff = np.array(self.affine, dtype=np.float64)
        if aff.shape != (4, 4) or not np.all(np.isfinite(aff)):
            raise ValueError(f"affine must be a finite 4x4 matrix, got {aff!r}")
        aff.setflags(write=False)
        object.__setattr__(self, "affine", aff)
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    @classmethod
    def from_spacing(
        cls,
        shape: tuple[int, int, int],
        spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
        origin_lps: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> Geometry:
        """Axis-aligned LPS grid; ``spacing`` in ``(z, y, x)`` mm, origin in world ``(x, y, z)``."""
        aff = np.diag([spacing[2], spacing[1], spacing[0], 1.0])
        aff[:3, 3] = origin_lps
        return cls(shape, aff)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm in array order ``(z, y, x)``."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(norms[2]), float(norms[1]), float(norms[0]))

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres (1 ml = 1000 mm^3)."""
        return float(abs(np.linalg.det(self.affine[:3, :3]))) / 1000.0

    @property
    def origin(self) -> tuple[float, float, float]:
        """World LPS position (mm) of voxel ``[0, 0, 0]``."""
        o = self.affine[:3, 3]
        return (float(o[0]), float(o[1]), float(o[2]))

    @property
    def orientation(self) -> tuple[str, str, str]:
        """Direction codes of the memory index axes in ``(x, y, z)`` order; ``LPS`` normally."""
        return orientation_codes(self.affine)

    @property
    def is_oblique(self) -> bool:
        """True where any axis deviates from the world axes by more than about 0.6 degrees."""
        lin = self.affine[:3, :3] / np.linalg.norm(self.affine[:3, :3], axis=0)
        return bool(np.max(np.abs(lin - np.round(lin))) > 1e-2)

    def index_to_world(self, zyx: NDArray[np.floating]) -> NDArray[np.float64]:
        """Array indices ``(..., 3)`` in ``(z, y, x)`` order to world LPS ``(..., 3)`` mm."""
        idx = np.asarray(zyx, dtype=np.float64)[..., ::-1]
        out: NDArray[np.float64] = idx @ self.affine[:3, :3].T + self.affine[:3, 3]
        return out

    def world_to_index(self, lps: NDArray[np.floating]) -> NDArray[np.float64]:
        """World LPS ``(..., 3)`` mm to fractional array indices ``(..., 3)`` in ``(z, y, x)``."""
        inv = np.linalg.inv(self.affine)
        pts = np.asarray(lps, dtype=np.float64)
        xyz = pts @ inv[:3, :3].T + inv[:3, 3]
        out: NDArray[np.float64] = xyz[..., ::-1]
        return out

    def same_grid(self, other: Geometry, atol_mm: float = 1e-3) -> bool:
        """True if both grids have the same shape and affine within ``atol_mm``."""
        return self.shape == other.shape and bool(
            np.allclose(self.affine, other.affine, atol=atol_mm)
        )

    def differences(self, other: Geometry, atol_mm: float = 1e-3) -> list[str]:
        """Names of the fields that differ: ``shape``, ``spacing``, ``origin``, ``direction``."""
        out = []
        if self.shape != other.shape:
            out.append("shape")
        if not np.allclose(self.spacing, other.spacing, atol=atol_mm):
            out.append("spacing")
        if not np.allclose(self.origin, other.origin, atol=atol_mm * 10):
            out.append("origin")
        d1 = self.affine[:3, :3] / np.linalg.norm(self.affine[:3, :3], axis=0)
        d2 = other.affine[:3, :3] / np.linalg.norm(other.affine[:3, :3], axis=0)
        if not np.allclose(d1, d2, atol=1e-4):
            out.append("direction")
        return out

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.4g}" for s in self.spacing)
        return f"Geometry(shape={self.shape}, spacing_zyx=({sp}), orientation={''.join(self.orientation)})"
