"""Qt-free, torch-free, format-free core: geometry, volumes, metrics, editing."""

from livgui.core.geometry import Geometry, Reorientation, orientation_codes, ras_to_lps
from livgui.core.progress import Cancelled, CancelToken, ProgressFn, check_cancel
from livgui.core.volume import (
    LABEL_NAMES,
    LESION,
    LIVER,
    RESEARCH_NOTICE,
    LabelMap,
    SourceInfo,
    Volume,
    check_label_values,
)

__all__ = [
    "LABEL_NAMES",
    "LESION",
    "LIVER",
    "RESEARCH_NOTICE",
    "CancelToken",
    "Cancelled",
    "Geometry",
    "LabelMap",
    "ProgressFn",
    "Reorientation",
    "SourceInfo",
    "Volume",
    "check_cancel",
    "check_label_values",
    "orientation_codes",
    "ras_to_lps",
]
