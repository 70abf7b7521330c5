"""Correction effort: how far the final mask moved from the model's original, and how long
the radiologist actively edited.

Active edit time is the sum of stroke (undo step) durations plus the pauses between
consecutive strokes, each pause capped at ``idle_cap_s`` (a coffee break does not count
as editing).  Everything returned is JSON-safe (NaN becomes ``None``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livgui.core.metrics import dice_iou, json_safe
from livgui.core.volume import LESION

__all__ = ["DEFAULT_IDLE_CAP_S", "active_edit_time", "correction_effort"]

DEFAULT_IDLE_CAP_S = 30.0


def active_edit_time(
    strokes: Iterable[tuple[float, float]], idle_cap_s: float = DEFAULT_IDLE_CAP_S
) -> float:
    """Seconds of active editing from ``(start_s, duration_s)`` strokes.

    Overlapping strokes are not double counted; gaps between strokes add at most
    ``idle_cap_s`` each.
    """
    total, end = 0.0, None
    for start, duration in sorted(strokes):
        stop = start + max(0.0, duration)
        if end is None:
            total += stop - start
        elif start >= end:
            total += min(start - end, idle_cap_s) + (stop - start)
        elif stop > end:
            total += stop - end
        end = stop if end is None else max(end, stop)
    return total


def correction_effort(
    original: NDArray[np.uint8],
    final: NDArray[np.uint8],
    voxel_volume_ml: float,
    strokes: Iterable[tuple[float, float]] = (),
    idle_cap_s: float = DEFAULT_IDLE_CAP_S,
) -> dict[str, Any]:
    """Effort to turn the model output ``original`` into ``final`` (both ``[z, y, x]`` uint8).

    Returns a JSON-safe dict: ``dice_liver`` (labels > 0) and ``dice_lesion`` (label 2)
    between original and final (1.0 when both are empty), ``changed_voxels`` (voxels whose
    label differs), ``changed_ml``, ``added_voxels``/``removed_voxels`` of liver,
    ``active_edit_s``, ``strokes``.
    """
    if original.shape != final.shape:
        raise ValueError(f"original shape {original.shape} differs from final {final.shape}")
    stroke_list = list(strokes)
    liver_o, liver_f = original > 0, final > 0
    changed = int(np.count_nonzero(original != final))
    return json_safe(
        {
            "dice_liver": dice_iou(liver_o, liver_f)[0],
            "dice_lesion": dice_iou(original == LESION, final == LESION)[0],
            "changed_voxels": changed,
            "changed_ml": changed * voxel_volume_ml,
            "added_voxels": int(np.count_nonzero(liver_f & ~liver_o)),
            "removed_voxels": int(np.count_nonzero(liver_o & ~liver_f)),
            "active_edit_s": active_edit_time(stroke_list, idle_cap_s),
            "strokes": len(stroke_list),
        }
    )
