"""Mouse input on the slice views -> :mod:`livgui.core.editing` calls on the correction layer.

The controller is the views' :class:`~livgui.ui.slice_view.ToolHandler` while a tool is
active (tool ``"navigate"`` gives the views back their plain navigation).  One mouse drag
is one undo step, named like ``"Brush 6 mm on lesion, axial 85"`` (slice numbers as shown
on screen, 1-based).  Right drag (window/level), middle or Shift drag (pan), wheel
(slices), Ctrl+wheel (zoom) keep working with every tool; Shift+wheel sizes the brush.

Tools: ``brush``, ``eraser``, ``hu_brush`` (paints only voxels inside the HU range),
``threshold`` (connected region inside the HU range, 2D or 3D), ``flood`` (2D flood fill of
the region sharing the clicked voxel's label), ``polygon`` / ``cut`` (lasso drag or clicked
vertices; Enter, a double click or a click on the first vertex closes), ``island`` (remove
the island under the click), ``accept_lesion`` (accept the predicted lesion under the
click).  The eraser and ``cut`` follow the label rules of :mod:`livgui.core.editing.tools`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF

from livgui.core.editing import (
    BrushOptions,
    Edit,
    PlanePoint,
    brush,
    flood_fill_2d,
    interpolate_slices,
    keep_largest,
    polygon_fill,
    remove_island,
    remove_small,
    stroke_points,
    threshold_fill,
)
from livgui.core.volume import LABEL_NAMES, LESION, LIVER

__all__ = ["TOOLS", "EditController", "ToolSpec", "key_slices"]

MIN_MM, MAX_MM = 0.5, 100.0
_KEY_TOOLS = ("Brush", "HU brush", "Polygon fill", "Flood fill", "Threshold fill")
_NAME = re.compile(
    r"^(?P<tool>.+?)(?: [\d.]+ mm)? on (?P<label>\w+), (?P<plane>axial|coronal|sagittal) (?P<index>\d+)"
)


@dataclass(frozen=True)
class ToolSpec:
    """A tool: button text, shortcut key and tooltip (also the help sheet)."""

    title: str
    key: str
    tip: str


TOOLS: dict[str, ToolSpec] = {
    "navigate": ToolSpec("Navigate", "Esc", "No tool: left click moves the crosshair"),
    "brush": ToolSpec("Brush", "B", "Paint the active label (disc, or sphere with S)"),
    "eraser": ToolSpec(
        "Eraser", "E", "Erase the active label: erasing lesion gives liver back; "
        "erasing liver also clears lesion under it",
    ),
    "hu_brush": ToolSpec("HU brush", "H", "Brush that paints only voxels inside the HU range"),
    "threshold": ToolSpec(
        "Threshold fill", "T", "Click: fill the connected region inside the HU range (2D or 3D)"
    ),
    "flood": ToolSpec("Flood fill", "G", "Click: fill the 2D region sharing the voxel's label"),
    "polygon": ToolSpec(
        "Polygon fill", "Y", "Drag a lasso, or click vertices (Enter / double click closes)"
    ),
    "cut": ToolSpec("Polygon cut", "U", "Like polygon fill, but erases the active label inside"),
    "island": ToolSpec("Remove island", "I", "Click: remove the 3D island of the active label"),
    "accept_lesion": ToolSpec(
        "Accept lesion", "A", "Click a predicted lesion: copy it into the correction "
        "(manual edits are kept)",
    ),
}  # fmt: skip
BRUSH_TOOLS = ("brush", "eraser", "hu_brush")


def key_slices(names: list[str], plane: str, label: int) -> list[int]:
    """0-based slices of ``plane`` painted with ``label`` by steps named ``names``."""
    out = set()
    for name in names:
        m = _NAME.match(name)
        if m and m["tool"] in _KEY_TOOLS and m["plane"] == plane:
            if m["label"] == LABEL_NAMES[label]:
                out.add(int(m["index"]) - 1)
    return sorted(out)


class EditController(QObject):
    """Tool state and the mapping of view input to edits.  ``state_changed`` fires when
    the tool, label, size or options change (the panel mirrors them)."""

    state_changed = Signal()
    #: a whole-volume operation (island, 3D threshold, components, interpolation) ended;
    #: its edit was applied (True) or dropped because the mask changed meanwhile (False)
    operation_done = Signal(bool)

    def __init__(self, edits: Any, views: dict[str, Any]) -> None:
        super().__init__(edits)
        self.edits = edits
        self.session = edits.session
        self.views = views
        self.tool = "navigate"
        self.label = LIVER
        self.size_mm = 6.0
        self.sphere = False
        self.hu_range = (50.0, 200.0)
        self.threshold_3d = False
        self.min_island_ml = 1.0
        self.last_plane = "axial"
        self._last: PlanePoint | None = None
        self._poly: list[PlanePoint] = []
        self._poly_view: Any = None
        self._drag_points = 0
        self._hover: tuple[Any, QPointF] | None = None

    # state ----------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; expected one of {list(TOOLS)}")
        self.cancel_polygon()
        self.tool = tool
        for view in self.views.values():
            view.set_tool_handler(None if tool == "navigate" else self)
            view.setCursor(
                Qt.CursorShape.ArrowCursor if tool == "navigate" else Qt.CursorShape.CrossCursor
            )
        self.state_changed.emit()

    def set_label(self, label: int) -> None:
        if label not in (LIVER, LESION):
            raise ValueError(f"editable labels are {LIVER} and {LESION}, got {label}")
        self.label = label
        self.state_changed.emit()

    def toggle_label(self) -> None:
        self.set_label(LESION if self.label == LIVER else LIVER)

    def set_size(self, mm: float) -> None:
        self.size_mm = float(min(MAX_MM, max(MIN_MM, round(mm * 2) / 2)))
        self._repaint_hover()
        self.state_changed.emit()

    def grow(self, steps: float) -> None:
        """Brush size up (or down) by ``steps`` (1 mm per step, 0.5 mm below 3 mm)."""
        unit = 0.5 if self.size_mm + min(steps, 0) < 3 else 1.0
        self.set_size(self.size_mm + unit * steps)

    def set_option(self, **values: Any) -> None:
        for key, value in values.items():
            if key not in ("sphere", "hu_range", "threshold_3d", "min_island_ml"):
                raise AttributeError(key)
            setattr(self, key, value)
        self.state_changed.emit()

    @property
    def label_name(self) -> str:
        return LABEL_NAMES[self.label]

    def _name(self, tool: str, at: PlanePoint, size: float | None = None) -> str:
        mm = f" {size:g} mm" if size is not None else ""
        return f"{tool}{mm} on {self.label_name}, {at.plane} {at.index + 1}"

    # ToolHandler ----------------------------------------------------------------------
    def press(self, view: Any, point: PlanePoint | None, _modifiers: Any) -> bool:
        if point is None or self.session.volume is None:
            return False
        self.last_plane = point.plane
        if self.tool in BRUSH_TOOLS:
            name = self._name(TOOLS[self.tool].title, point, self.size_mm)
            if self.tool == "hu_brush":
                name += f" ({self.hu_range[0]:g}..{self.hu_range[1]:g} HU)"
            self.edits.begin(name)
            self._last = point
            self._dab([point])
        elif self.tool in ("polygon", "cut"):
            self._poly_press(view, point)
        else:
            self.click(point)
        return True

    def drag(self, view: Any, point: PlanePoint | None) -> None:
        if point is None:
            return
        if self.tool in BRUSH_TOOLS and self._last is not None:
            vol = self.session.volume
            pts = stroke_points(self._last, point, vol.geometry, self.size_mm)
            self._last = point
            self._dab(pts)
        elif self.tool in ("polygon", "cut") and self._poly:
            last = self._poly[-1]
            if math.hypot(point.row - last.row, point.col - last.col) >= 0.5:
                self._poly.append(point)
                self._drag_points += 1
                view.update()

    def release(self, view: Any, _point: PlanePoint | None) -> None:
        if self.tool in BRUSH_TOOLS and self._last is not None:
            self._last = None
            tool = TOOLS[self.tool].title
            details: dict[str, Any] = {"size_mm": self.size_mm, "sphere": self.sphere}
            if self.tool == "hu_brush":
                details["hu_range"] = list(self.hu_range)
            self.edits.end(tool, self.label, **details)
        elif self.tool in ("polygon", "cut") and self._drag_points >= 3:
            self.close_polygon()  # a lasso drag closes itself

    def double_click(self, _view: Any, _point: PlanePoint | None) -> bool:
        if self.tool in ("polygon", "cut"):
            self.close_polygon()
        return True

    def wheel(self, _view: Any, steps: float, modifiers: Any) -> bool:
        if modifiers & Qt.KeyboardModifier.ShiftModifier and self.tool in BRUSH_TOOLS:
            self.grow(round(steps) or (1 if steps > 0 else -1))
            return True
        return False

    def hover(self, view: Any, pos: QPointF | None) -> None:
        old = self._hover
        self._hover = (view, QPointF(pos)) if pos is not None else None
        if old is not None and old[0] is not view:
            old[0].update()
        if self.tool in BRUSH_TOOLS or self._poly:
            view.update()

    def paint(self, view: Any, painter: QPainter) -> None:
        colour = QColor(255, 80, 60) if self.label == LESION else QColor(255, 170, 0)
        if self.tool in BRUSH_TOOLS and self._hover is not None and self._hover[0] is view:
            radius = self.size_mm / 2 * view.px_per_mm()  # the true size on screen
            pen = QPen(
                colour,
                1.5,
                Qt.PenStyle.DashLine if self.tool == "eraser" else Qt.PenStyle.SolidLine,
            )
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(self._hover[1], radius, radius)
        if self._poly and view is self._poly_view:
            pts = [view.widget_pos(p.zyx_float()) for p in self._poly]
            painter.setPen(QPen(colour, 1.5))
            painter.drawPolyline(QPolygonF(pts))

    # brush ----------------------------------------------------------------------------
    def _dab(self, points: list[PlanePoint]) -> None:
        h = self.edits.ensure_layer()
        vol = self.session.volume
        erase = self.tool == "eraser"
        hu_range = self.hu_range if self.tool == "hu_brush" else None
        opts = BrushOptions(self.size_mm, self.label, erase, self.sphere, hu_range)
        hu = vol.data if hu_range is not None else None
        self.edits.apply([brush(h.labels, vol.geometry, p, opts, hu) for p in points])

    # clicks ---------------------------------------------------------------------------
    def click(self, at: PlanePoint) -> None:
        """A click with a one-shot tool (threshold, flood, island, accept lesion)."""
        vol = self.session.volume
        zyx = at.zyx()
        if self.tool == "accept_lesion":
            self.edits.accept(lesion_at=zyx)
            return
        labels = self.edits.ensure_layer().labels
        if self.tool == "threshold":
            lo, hi, three_d, label = *self.hu_range, self.threshold_3d, self.label
            extent = ", 3D" if three_d else ""
            name = self._name("Threshold fill", at) + f" ({lo:g}..{hi:g} HU{extent})"

            def fill(work: np.ndarray) -> Edit:
                return threshold_fill(work, vol.data, at, (lo, hi), label, three_d=three_d)

            details = {"hu_range": [lo, hi], "three_d": three_d}
            if three_d:  # a 3D region grows over the whole volume: off the GUI thread
                self._off_thread(name, fill, "threshold fill", **details)
            else:
                self.edits.commit(name, fill(labels), "threshold fill", label, **details)
        elif self.tool == "flood":
            edit = flood_fill_2d(labels, at, self.label)
            self.edits.commit(self._name("Flood fill", at), edit, "flood fill", self.label)
        elif self.tool == "island":
            label = self.label
            self._off_thread(
                self._name("Remove island", at),
                lambda work: remove_island(work, zyx, label),
                "remove island",
                voxel=list(zyx),
            )

    # polygon --------------------------------------------------------------------------
    def _poly_press(self, view: Any, at: PlanePoint) -> None:
        same = self._poly and view is self._poly_view and self._poly[0].index == at.index
        if not same:
            self._poly, self._poly_view = [at], view
        elif len(self._poly) >= 3 and self._near_first(view, at):
            self.close_polygon()
            return
        else:
            self._poly.append(at)
        self._drag_points = 0
        view.update()

    def _near_first(self, view: Any, at: PlanePoint) -> bool:
        a = view.widget_pos(self._poly[0].zyx_float())
        b = view.widget_pos(at.zyx_float())
        return math.hypot(a.x() - b.x(), a.y() - b.y()) <= 8.0

    def close_polygon(self) -> None:
        """Fill (or cut) the polygon drawn so far; fewer than three points: forget it."""
        pts, view = self._poly, self._poly_view
        self.cancel_polygon()
        if len(pts) < 3:
            return
        labels = self.edits.ensure_layer().labels
        first = pts[0]
        cut = self.tool == "cut"
        edit = polygon_fill(
            labels, first.plane, first.index, [(p.row, p.col) for p in pts], self.label, erase=cut
        )
        title = "Polygon cut" if cut else "Polygon fill"
        self.edits.commit(
            self._name(title, first), edit, title.lower(), self.label, vertices=len(pts)
        )
        if view is not None:
            view.update()

    def cancel_polygon(self) -> None:
        view, self._poly, self._poly_view, self._drag_points = self._poly_view, [], None, 0
        if view is not None:
            view.update()

    # whole-volume operations (buttons) -------------------------------------------------
    def keep_largest(self) -> None:
        label = self.label
        self._off_thread(
            f"Keep largest {self.label_name}",
            lambda work: keep_largest(work, label),
            "keep largest",
        )

    def remove_small(self) -> None:
        label, ml, geometry = self.label, self.min_island_ml, self.session.volume.geometry
        name = f"Remove {self.label_name} islands under {ml:g} ml"
        self._off_thread(
            name, lambda work: remove_small(work, geometry, label, ml), "remove small islands",
            min_ml=ml,
        )  # fmt: skip

    def interpolate(self, plane: str | None = None) -> None:
        """Fill the slices between the slices edited on ``plane`` (default: the last edited)."""
        plane = plane or self.last_plane
        h = self.edits.history
        names = [s.name for s in h.steps()[: h.position]] if h is not None else []
        keys = key_slices(names, plane, self.label)
        if len(keys) < 2:
            self.edits.window.notify(
                f"Interpolation needs {self.label_name} painted on at least two {plane} slices",
                6000,
            )
            return
        geometry, label = self.session.volume.geometry, self.label
        name = f"Interpolate {self.label_name}, {plane} {keys[0] + 1}-{keys[-1] + 1}"
        self._off_thread(
            name,
            lambda work: interpolate_slices(work, geometry, plane, keys, label),  # type: ignore[arg-type]
            "interpolate",
            plane=plane,
            key_slices=[k + 1 for k in keys],
        )

    def _off_thread(
        self, name: str, compute: Callable[[np.ndarray], Edit], tool: str, **details: Any
    ) -> None:
        """Run a whole-volume tool in a worker on a copy of the mask (labelling 512x512x500
        takes about a second); its edit is applied and committed on the GUI thread only if
        the correction did not change meanwhile (the copy may race an edit; the version
        check rejects exactly those results)."""
        h = self.edits.ensure_layer()
        layer = self.edits.layer
        live, version, label = h.labels, layer.version, self.label

        def run(progress: Any, cancel: Any) -> Edit:
            return compute(np.array(live, copy=True))

        def done(edit: Edit) -> None:
            now = self.edits.layer
            if self.edits.history is not h or now is None or now.version != version:
                self.edits.window.notify(f"{name}: the mask changed meanwhile; not applied", 6000)
                self.operation_done.emit(False)
                return
            edit.apply(live)
            self._commit_op(name, edit, tool, label, **details)
            self.operation_done.emit(True)

        worker = self.edits.window.run_task(run, name, done)
        worker.failed.connect(lambda exc: self.edits.window.notify(f"{name} failed: {exc}", 8000))
        worker.failed.connect(lambda _exc: self.operation_done.emit(False))

    def _commit_op(
        self, name: str, edit: Edit, tool: str, label: int | None = None, **details: Any
    ) -> None:
        self.edits.commit(name, edit, tool, self.label if label is None else label, **details)
        note = (
            f"{name}: {edit.changed} voxels changed"
            if edit.changed
            else f"{name}: nothing to change"
        )
        self.edits.window.notify(note, 5000)

    def _repaint_hover(self) -> None:
        if self._hover is not None:
            self._hover[0].update()
