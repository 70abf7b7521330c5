"""A fast slice view painted with QPainter: one plane of the session's volume.

Per frame it does only what the visible slice needs: a lookup-table window/level of one
slice, cached overlay slices, and a scaled ``drawImage`` for each (Qt's raster engine).
Aspect comes from the spacing, letters from the geometry (see :mod:`livgui.ui.planes`).

Mouse: left click/drag moves the shared cursor, wheel scrolls, Ctrl+wheel zooms, right
drag changes window (horizontal) and level (vertical), middle or Shift+left drag pans,
double click toggles the one-view layout.  Keys: arrows and PageUp/PageDown scroll
(1 and 5 slices), Home/End jump to the ends, +/- zoom, R resets zoom and pan.

Editing hook: while a :class:`ToolHandler` is set (:meth:`SliceView.set_tool_handler`),
a plain left press/drag/release (and a double click) goes to it as a
:class:`~livgui.core.editing.PlanePoint` in fractional array coordinates; it may also
consume the wheel (Shift+wheel: brush size) and paint over the slice (brush outline).
Right drag, middle/Shift drag, wheel scrolling and the keys keep working.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from livgui.core.session import CaseSession
from livgui.ui.overlays import GreyMapper, OverlayCache
from livgui.ui.planes import PLANE_SPECS, edge_letters, orientation_known, position_text
from livgui.ui.slice_paint import (
    MARGIN,
    PLANE_COLOURS,
    paint_corner_texts,
    paint_crosshair,
    paint_empty,
    paint_frame,
    paint_letters,
)

__all__ = ["PLANE_COLOURS", "SliceView", "ToolHandler"]

log = logging.getLogger(__name__)

_PAGE = 5


def _qimage(array: np.ndarray, fmt: QImage.Format) -> QImage:
    """Wrap a C-contiguous 2-D array (kept alive by the caller) as a QImage."""
    h, w = array.shape[:2]
    return QImage(array.data, w, h, array.strides[0], fmt)


class ToolHandler(Protocol):
    """What a view hands its left-button input to while an editing tool is active.

    Points are :class:`~livgui.core.editing.PlanePoint` (``None`` outside the image);
    ``press`` returns True when it takes the drag (then ``drag``/``release`` follow).
    """

    def press(self, view: SliceView, point: Any, modifiers: Any) -> bool: ...
    def drag(self, view: SliceView, point: Any) -> None: ...
    def release(self, view: SliceView, point: Any) -> None: ...
    def double_click(self, view: SliceView, point: Any) -> bool: ...
    def wheel(self, view: SliceView, steps: float, modifiers: Any) -> bool: ...
    def hover(self, view: SliceView, pos: QPointF | None) -> None: ...
    def paint(self, view: SliceView, painter: QPainter) -> None: ...


class SliceView(QWidget):
    """One plane (``"axial"``, ``"coronal"`` or ``"sagittal"``) of a :class:`CaseSession`.

    Signals
    -------
    hovered(object)
        Voxel ``(z, y, x)`` under the mouse, or ``None`` when outside the image.
    maximise_requested(str)
        Double click: the plane asks to be shown alone (or to go back to three views).
    """

    hovered = Signal(object)
    maximise_requested = Signal(str)

    def __init__(self, session: CaseSession, plane: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.plane = plane
        self.spec = PLANE_SPECS[plane]
        self.setObjectName(f"view_{plane}")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.zoom = 1.0
        self.pan = QPointF(0.0, 0.0)
        self._index = -1
        self._grey: GreyMapper | None = None
        self._grey_array: np.ndarray | None = None
        self._grey_image: QImage | None = None
        self._overlays: list[tuple[np.ndarray, QImage]] = []
        self._caches: dict[str, OverlayCache] = {}
        self._dirty_grey = True
        self._dirty_overlay = True
        self._drag: tuple[str, QPointF, Any] | None = None
        self._hover: tuple[int, int, int] | None = None
        self._letters: dict[str, str] | None = None
        self._font = QFont(self.font())
        self._font.setPointSizeF(max(8.0, self._font.pointSizeF()))
        self.tool_handler: ToolHandler | None = None
        self._subscribe()

    def set_tool_handler(self, handler: ToolHandler | None) -> None:
        """Hand left-button input to ``handler`` (``None``: plain navigation)."""
        self.tool_handler = handler
        self.update()

    # session wiring -------------------------------------------------------------------
    def _subscribe(self) -> None:
        s = self.session
        s.case_changed.connect(self._on_case)
        s.cursor_changed.connect(self._on_cursor)
        s.window_changed.connect(self._on_window)
        s.layers_changed.connect(self._on_layers)
        s.layer_changed.connect(self._on_layer)
        s.layer_data_changed.connect(self._on_layer_data)
        s.lesion_selected.connect(self._on_lesion)
        self._on_case()

    def detach(self) -> None:
        """Stop listening to the session (call before the widget goes away)."""
        s = self.session
        for event, cb in (
            (s.case_changed, self._on_case),
            (s.cursor_changed, self._on_cursor),
            (s.window_changed, self._on_window),
            (s.layers_changed, self._on_layers),
            (s.layer_changed, self._on_layer),
            (s.layer_data_changed, self._on_layer_data),
            (s.lesion_selected, self._on_lesion),
        ):
            event.disconnect(cb)

    def _on_case(self) -> None:
        vol = self.session.volume
        self._grey = GreyMapper(vol.data.dtype) if vol is not None else None
        if self._grey is not None:
            self._grey.set_window(self.session.window.low, self.session.window.high)
        self._caches.clear()
        self._letters = None
        self._index = -1
        self.zoom, self.pan = 1.0, QPointF(0.0, 0.0)
        self._hover = None
        self._dirty_grey = self._dirty_overlay = True
        self.update()

    def _on_cursor(self, zyx: tuple[int, int, int]) -> None:
        index = zyx[self.spec.slice_axis]
        if index != self._index:
            self._index = index
            self._dirty_grey = self._dirty_overlay = True
        self.update()

    def _on_window(self, wl: Any) -> None:
        if self._grey is not None:
            self._grey.set_window(wl.low, wl.high)
            self._dirty_grey = True
            self.update()

    def _on_layers(self) -> None:
        names = {layer.name for layer in self.session.layers}
        for name in list(self._caches):
            if name not in names:
                del self._caches[name]
        self._on_layer("")

    def _on_layer(self, _name: str) -> None:
        self._dirty_overlay = True
        self.update()

    def _on_layer_data(self, name: str) -> None:
        self._caches.pop(name, None)
        self._on_layer(name)

    def _on_lesion(self, _lesion_id: int, _zyx: tuple[int, int, int]) -> None:
        self.zoom = max(self.zoom, 2.0)
        self.centre_on_cursor()

    # rendering ------------------------------------------------------------------------
    @property
    def index(self) -> int:
        """Index of the slice shown along this plane's axis."""
        return self._index

    def _ensure_images(self) -> None:
        vol = self.session.volume
        if vol is None or self._grey is None:
            return
        if self._index < 0:
            self._index = self.session.cursor[self.spec.slice_axis]
        if self._dirty_grey:
            self._grey_array = self._grey.apply(self.spec.extract(vol.data, self._index))
            self._grey_image = _qimage(self._grey_array, QImage.Format.Format_RGB32)
            self._dirty_grey = False
        if self._dirty_overlay:
            self._overlays = []
            for layer in self.session.layers:
                if not layer.visible:
                    continue
                cache = self._caches.setdefault(layer.name, OverlayCache())
                plane2d = self.spec.extract(layer.labels.data, self._index)
                argb = cache.render(layer, plane2d, (self._index,))
                if argb is not None:
                    self._overlays.append(
                        (argb, _qimage(argb, QImage.Format.Format_ARGB32_Premultiplied))
                    )
            self._dirty_overlay = False

    def _size_mm(self) -> tuple[float, float]:
        vol = self.session.volume
        assert vol is not None
        rows, cols = self.spec.shape2d(vol.shape)
        ph, pw = self.spec.pixel_mm(vol.spacing)
        return rows * ph, cols * pw

    def px_per_mm(self) -> float:
        """Screen pixels per mm at the current zoom (the slice fits the view at zoom 1)."""
        h_mm, w_mm = self._size_mm()
        avail_w = max(1.0, self.width() - 2 * MARGIN)
        avail_h = max(1.0, self.height() - 2 * MARGIN)
        return min(avail_w / w_mm, avail_h / h_mm) * self.zoom

    def image_rect(self) -> QRectF:
        """Where the slice is drawn, in widget pixels (aspect from spacing, zoom and pan).

        ``pan`` is kept in mm so that a resized view (layout change) shows the same place.
        """
        if self.session.volume is None:
            return QRectF()
        h_mm, w_mm = self._size_mm()
        scale = self.px_per_mm()
        w, h = w_mm * scale, h_mm * scale
        cx = self.width() / 2 + self.pan.x() * scale
        cy = self.height() / 2 + self.pan.y() * scale
        return QRectF(cx - w / 2, cy - h / 2, w, h)

    def paintEvent(self, _event: Any) -> None:
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), QColor(0, 0, 0))
            if self.session.volume is None:
                paint_empty(painter, self.rect(), self.plane, self._font)
            else:
                self._ensure_images()
                self._paint_slice(painter)
                paint_crosshair(
                    painter,
                    self.image_rect(),
                    self.cursor_point(),
                    self.spec.col_axis,
                    self.spec.row_axis,
                )
                self._paint_text(painter)
                if self.tool_handler is not None:
                    self.tool_handler.paint(self, painter)
            paint_frame(painter, self.rect(), self.plane, self.hasFocus())
        finally:
            painter.end()

    def _paint_slice(self, painter: QPainter) -> None:
        target = self.image_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom > 1.5)
        if self._grey_image is not None:
            painter.drawImage(target, self._grey_image)
        for _array, image in self._overlays:
            painter.drawImage(target, image)

    def cursor_point(self) -> QPointF:
        """Widget position of the centre of the cursor voxel."""
        vol = self.session.volume
        if vol is None:
            return QPointF()
        rect = self.image_rect()
        rows, cols = self.spec.shape2d(vol.shape)
        r, c = self.spec.to_display(self.session.cursor, vol.shape)
        return QPointF(
            rect.left() + (c + 0.5) * rect.width() / cols,
            rect.top() + (r + 0.5) * rect.height() / rows,
        )

    def _paint_text(self, painter: QPainter) -> None:
        vol = self.session.volume
        assert vol is not None
        painter.setFont(self._font)
        if self._letters is None:
            known = orientation_known(vol)
            self._letters = edge_letters(self.spec, vol.geometry) if known else {}
        paint_letters(painter, self.width(), self.height(), self._letters)
        n = vol.shape[self.spec.slice_axis]
        name = self.plane.capitalize() if self._letters else "Image"
        title = f"{name}  {self._index + 1}/{n}"
        if self._letters:
            title += f"   {position_text(self.spec, vol.geometry, self.session.cursor)}"
        wl = self.session.window
        texts = {"top_left": title, "bottom_left": f"W {wl.width:.0f}  L {wl.level:.0f}"}
        if self._hover is not None:
            value = float(vol.data[self._hover])
            unit = self.session.value_unit
            texts["bottom_right"] = (
                "nan"
                if not np.isfinite(value)
                else f"{value:.0f} {unit}"
                if unit
                else f"value {value:.0f}"
            )
        paint_corner_texts(painter, self.width(), self.height(), texts)

    # coordinates ----------------------------------------------------------------------
    def voxel_at(self, pos: QPointF) -> tuple[int, int, int] | None:
        """Voxel ``(z, y, x)`` under widget position ``pos`` on the shown slice, or None."""
        vol = self.session.volume
        if vol is None:
            return None
        rect = self.image_rect()
        if not rect.contains(pos) or rect.width() <= 0:
            return None
        rows, cols = self.spec.shape2d(vol.shape)
        row = (pos.y() - rect.top()) / rect.height() * rows
        col = (pos.x() - rect.left()) / rect.width() * cols
        row, col = min(row, rows - 1e-6), min(col, cols - 1e-6)
        return self.spec.to_voxel(row, col, max(self._index, 0), vol.shape)

    def plane_point_at(self, pos: QPointF) -> Any:
        """``PlanePoint`` (fractional array row/col, voxel centres at integers) under ``pos``
        on the shown slice, or ``None`` outside the image."""
        from livgui.core.editing import PlanePoint

        vol = self.session.volume
        rect = self.image_rect()
        if vol is None or not rect.contains(pos) or rect.width() <= 0:
            return None
        rows, cols = self.spec.shape2d(vol.shape)
        d_row = (pos.y() - rect.top()) / rect.height() * rows
        col = (pos.x() - rect.left()) / rect.width() * cols - 0.5
        row = rows - 0.5 - d_row if self.spec.flip_rows else d_row - 0.5
        return PlanePoint(self.plane, max(self._index, 0), row, col)  # type: ignore[arg-type]

    def widget_pos(self, zyx: tuple[float, float, float]) -> QPointF:
        """Widget position of the centre of voxel ``(z, y, x)`` (may be fractional)."""
        vol = self.session.volume
        if vol is None:
            return QPointF()
        rect = self.image_rect()
        rows, cols = self.spec.shape2d(vol.shape)
        r = zyx[self.spec.row_axis]
        d_row = rows - 1 - r if self.spec.flip_rows else r
        return QPointF(
            rect.left() + (zyx[self.spec.col_axis] + 0.5) * rect.width() / cols,
            rect.top() + (d_row + 0.5) * rect.height() / rows,
        )

    def centre_on_cursor(self) -> None:
        """Pan so the cursor voxel sits at the centre of the view."""
        if self.session.volume is None:
            return
        p = self.cursor_point()
        offset = (QPointF(self.width() / 2, self.height() / 2) - p) / self.px_per_mm()
        self.pan = self.pan + offset
        self.update()

    def reset_view(self) -> None:
        self.zoom, self.pan = 1.0, QPointF(0.0, 0.0)
        self.update()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the point under ``anchor`` (widget px) fixed."""
        new = float(np.clip(self.zoom * factor, 0.25, 32.0))
        if anchor is not None and self.session.volume is not None:
            old_scale = self.px_per_mm()
            middle = QPointF(self.width() / 2, self.height() / 2)
            centre = middle + self.pan * old_scale
            k = new / self.zoom
            new_centre = anchor + (centre - anchor) * k
            self.pan = (new_centre - middle) / (old_scale * k)
        self.zoom = new
        self.update()

    def scroll_slices(self, delta: int) -> None:
        """Move ``delta`` slices along this plane's axis (positive: higher index)."""
        if self.session.volume is not None:
            self.session.step_cursor(self.spec.slice_axis, delta)

    # input ----------------------------------------------------------------------------
    def wheelEvent(self, event: Any) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps == 0:  # some platforms turn Shift+wheel into a horizontal wheel
            steps = event.angleDelta().x() / 120.0
        if steps == 0:
            return
        handler = self.tool_handler
        if handler is not None and handler.wheel(self, steps, event.modifiers()):
            event.accept()
            return
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_by(1.15**steps, event.position())
        else:
            self.scroll_slices(int(np.sign(steps) * max(1, round(abs(steps)))))
        event.accept()

    def mousePressEvent(self, event: Any) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        if self.session.volume is None:
            return
        pos = event.position()
        button = event.button()
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if button == Qt.MouseButton.RightButton:
            wl = self.session.window
            self._drag = ("window", pos, (wl.level, wl.width))
        elif button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and shift
        ):
            self._drag = ("pan", pos, QPointF(self.pan))
        elif button == Qt.MouseButton.LeftButton and self._tool_press(pos, event.modifiers()):
            self._drag = ("tool", pos, None)
        elif button == Qt.MouseButton.LeftButton:
            self._drag = ("cursor", pos, None)
            self._set_cursor_at(pos)
        event.accept()

    def _tool_press(self, pos: QPointF, modifiers: Any) -> bool:
        handler = self.tool_handler
        return handler is not None and handler.press(self, self.plane_point_at(pos), modifiers)

    def mouseMoveEvent(self, event: Any) -> None:
        pos = event.position()
        if self._drag is not None:
            kind, start, origin = self._drag
            if kind == "window":
                self._drag_window(pos - start, origin)
            elif kind == "pan":
                self.pan = origin + (pos - start) / max(self.px_per_mm(), 1e-6)
                self.update()
            elif kind == "tool" and self.tool_handler is not None:
                self.tool_handler.drag(self, self.plane_point_at(pos))
            else:
                self._set_cursor_at(pos)
        if self.tool_handler is not None:
            self.tool_handler.hover(self, pos)
        voxel = self.voxel_at(pos)
        if voxel != self._hover:
            self._hover = voxel
            self.hovered.emit(voxel)
            self.update()

    def mouseReleaseEvent(self, event: Any) -> None:
        drag, self._drag = self._drag, None
        if drag is not None and drag[0] == "tool" and self.tool_handler is not None:
            self.tool_handler.release(self, self.plane_point_at(event.position()))
        event.accept()

    def mouseDoubleClickEvent(self, event: Any) -> None:
        handler = self.tool_handler
        if handler is not None and handler.double_click(
            self, self.plane_point_at(event.position())
        ):
            event.accept()
            return
        self.maximise_requested.emit(self.plane)
        event.accept()

    def leaveEvent(self, _event: Any) -> None:
        if self.tool_handler is not None:
            self.tool_handler.hover(self, None)
        if self._hover is not None:
            self._hover = None
            self.hovered.emit(None)
            self.update()

    def _drag_window(self, delta: QPointF, origin: tuple[float, float]) -> None:
        """Right drag: right widens the window, up raises the level (HU per px ~ width/250)."""
        level, width = origin
        per_px = max(1.0, width) / 250.0
        self.session.set_window(level - delta.y() * per_px, max(1.0, width + delta.x() * per_px))

    def _set_cursor_at(self, pos: QPointF) -> None:
        voxel = self.voxel_at(pos)
        if voxel is not None:
            self.session.set_cursor(voxel)

    def keyPressEvent(self, event: Any) -> None:
        key = event.key()
        k = Qt.Key
        steps = {
            k.Key_Up: 1,
            k.Key_Down: -1,
            k.Key_Right: 1,
            k.Key_Left: -1,
            k.Key_PageUp: _PAGE,
            k.Key_PageDown: -_PAGE,
        }
        vol = self.session.volume
        if key in steps:
            self.scroll_slices(steps[key])
        elif key in (k.Key_Home, k.Key_End) and vol is not None:
            end = vol.shape[self.spec.slice_axis] - 1 if key == k.Key_End else 0
            self.scroll_slices(end - self._index)
        elif key in (k.Key_Plus, k.Key_Equal):
            self.zoom_by(1.25)
        elif key == k.Key_Minus:
            self.zoom_by(0.8)
        elif key == k.Key_R:
            self.reset_view()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def focusInEvent(self, event: Any) -> None:
        super().focusInEvent(event)
        self.update()

    def focusOutEvent(self, event: Any) -> None:
        super().focusOutEvent(event)
        self.update()
