"""Geometry of a stack of DICOM slices: order along the normal, gaps, duplicates, tilt.

Shared by the header scan (to list a series' problems) and the reader (to refuse or warn),
so both report the same facts.  Positions are ImagePositionPatient in world LPS mm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["StackGeometry", "analyse_stack", "slice_normal"]

_DUP_TOL_MM = 0.01  # positions closer than this along the normal are the same slice
_NOISE_FRACTION = 0.01  # step deviations below 1 % of the step are float noise
_TILT_MIN_DEG = 0.1


@dataclass(frozen=True)
class StackGeometry:
    """Slices ordered along the normal of their orientation (ascending distance).

    ``order`` indexes the input slices; ``duplicates`` pairs ``(kept, other)`` indexes at
    the same position; ``distances`` are those of ``order`` in mm.  ``gaps`` and
    ``spacing_notes`` are user-facing messages; ``tilt_deg`` the shear angle of the
    positions against the normal (gantry tilt), 0 when none.
    """

    normal: tuple[float, float, float]
    order: tuple[int, ...]
    distances: tuple[float, ...]
    duplicates: tuple[tuple[int, int], ...]
    step: float
    gaps: tuple[str, ...]
    nonuniform: bool
    spacing_notes: tuple[str, ...]
    tilt_deg: float

    @property
    def problems(self) -> tuple[str, ...]:
        out = list(self.gaps) + list(self.spacing_notes)
        if self.tilt_deg:
            out.append(f"gantry tilt of {self.tilt_deg:.2f} degrees (positions sheared)")
        return tuple(out)


def slice_normal(orientation: Sequence[float]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Unit normal (row cosine x column cosine) of an ImageOrientationPatient value."""
    row = np.asarray(orientation[:3], dtype=np.float64)
    col = np.asarray(orientation[3:6], dtype=np.float64)
    n = np.cross(row, col)
    norm = float(np.linalg.norm(n))
    return n / norm if norm > 0 else np.array([0.0, 0.0, 1.0])


def _steps_report(d: np.ndarray[Any, Any]) -> tuple[float, list[str], list[str], bool]:
    """Median step, gap messages, spacing messages and the non-uniform flag."""
    steps = np.diff(d)
    if steps.size == 0:
        return 0.0, [], [], False
    step = float(np.median(steps))
    gaps: list[str] = []
    worst = 0.0
    for i, s in enumerate(steps.tolist()):
        ratio = s / step
        if ratio > 1.5 and abs(ratio - round(ratio)) < 0.15:
            k = round(ratio) - 1
            gaps.append(
                f"missing slice: about {k} slice(s) absent between positions {d[i]:.2f} mm "
                f"and {d[i + 1]:.2f} mm along the slice normal (step {step:.3g} mm)"
            )
        else:
            worst = max(worst, abs(s - step))
    nonuniform = worst > _NOISE_FRACTION * step
    notes = []
    if nonuniform:
        notes.append(
            f"non-uniform slice spacing: steps from {steps.min():.3g} to {steps.max():.3g} mm "
            f"(median {step:.3g} mm)"
        )
    return step, gaps, notes, nonuniform


def _tilt_deg(
    pos: np.ndarray[Any, Any], d: np.ndarray[Any, Any], normal: np.ndarray[Any, Any]
) -> float:
    if len(d) < 2 or d[-1] - d[0] <= 0:
        return 0.0
    along = pos[-1] - pos[0]
    in_plane = along - normal * (d[-1] - d[0])
    angle = float(np.degrees(np.arctan2(np.linalg.norm(in_plane), d[-1] - d[0])))
    return round(angle, 3) if angle > _TILT_MIN_DEG else 0.0


def analyse_stack(
    positions: Sequence[Sequence[float]], orientation: Sequence[float]
) -> StackGeometry:
    """Order slices along the normal and find duplicates, gaps, spacing and tilt.

    Parameters
    ----------
    positions
        ImagePositionPatient per slice, world LPS mm, in any order.
    orientation
        The common ImageOrientationPatient (row cosines then column cosines).
    """
    normal = slice_normal(orientation)
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    dist = pos @ normal
    order = np.argsort(dist, kind="stable")
    kept: list[int] = []
    duplicates: list[tuple[int, int]] = []
    for idx in order.tolist():
        if kept and dist[idx] - dist[kept[-1]] < _DUP_TOL_MM:
            duplicates.append((kept[-1], idx))
        else:
            kept.append(idx)
    d = dist[kept]
    step, gaps, notes, nonuniform = _steps_report(d)
    return StackGeometry(
        normal=(float(normal[0]), float(normal[1]), float(normal[2])),
        order=tuple(kept),
        distances=tuple(float(v) for v in d),
        duplicates=tuple(duplicates),
        step=step,
        gaps=tuple(gaps),
        nonuniform=nonuniform,
        spacing_notes=tuple(notes),
        tilt_deg=_tilt_deg(pos[kept], d, normal),
    )
