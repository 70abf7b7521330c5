"""Mask editing: tools that return deltas, the byte-bounded undo history, correction effort.

Qt-free; a view calls the tools with a :class:`PlanePoint` (plane, slice index, in-plane
voxel coordinates) and sizes in mm, then records each returned :class:`Edit` in a
:class:`History` between ``begin_step`` (mouse press) and ``end_step`` (release).
See :mod:`livgui.core.editing.tools` for the label (paint/erase) rules.
"""

from livgui.core.editing.delta import Box, Edit, decode_edit, encode_edit, merge_edits
from livgui.core.editing.effort import active_edit_time, correction_effort
from livgui.core.editing.history import (
    DEFAULT_BUDGET_BYTES,
    History,
    Step,
    StepInfo,
    mask_sha256,
)
from livgui.core.editing.regions import (
    AcceptResult,
    accept_prediction,
    interpolate_slices,
    keep_largest,
    remove_island,
    remove_small,
    touched_mask,
)
from livgui.core.editing.tools import (
    PLANES,
    BrushOptions,
    FillRule,
    Plane,
    PlanePoint,
    apply_region,
    brush,
    class_mask,
    flood_fill_2d,
    label_op,
    plane_axes,
    polygon_fill,
    rasterize_polygon,
    step_name,
    stroke_points,
    threshold_fill,
)

__all__ = [
    "DEFAULT_BUDGET_BYTES",
    "PLANES",
    "AcceptResult",
    "Box",
    "BrushOptions",
    "Edit",
    "FillRule",
    "History",
    "Plane",
    "PlanePoint",
    "Step",
    "StepInfo",
    "accept_prediction",
    "active_edit_time",
    "apply_region",
    "brush",
    "class_mask",
    "correction_effort",
    "decode_edit",
    "encode_edit",
    "flood_fill_2d",
    "interpolate_slices",
    "keep_largest",
    "label_op",
    "mask_sha256",
    "merge_edits",
    "plane_axes",
    "polygon_fill",
    "rasterize_polygon",
    "remove_island",
    "remove_small",
    "step_name",
    "stroke_points",
    "threshold_fill",
    "touched_mask",
]
