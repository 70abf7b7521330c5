"""Drawing the annotations of a slice view: crosshair, letters, corner texts, frame.

Plain functions of a ``QPainter`` and plain values, so the view keeps its state and these
keep the pixels.  Lines are opaque, 1 px and on integer coordinates: the raster engine's
fast path (semi-transparent or fractional pens go through the slow stroker).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen

__all__ = [
    "DIM_COLOURS",
    "MARGIN",
    "PLANE_COLOURS",
    "paint_corner_texts",
    "paint_crosshair",
    "paint_empty",
    "paint_frame",
    "paint_letters",
]

#: Frame and crosshair colour of each plane (the 3D Slicer habit: red axial, green
#: coronal, yellow sagittal), so a line in one view names the view it stands for.
PLANE_COLOURS = {
    "axial": QColor(230, 70, 70),
    "coronal": QColor(80, 200, 90),
    "sagittal": QColor(235, 210, 60),
}
DIM_COLOURS = {name: colour.darker(150) for name, colour in PLANE_COLOURS.items()}
MARGIN = 18  # px kept free around the image for the orientation letters
_LETTER = QColor(255, 200, 80)
_TEXT = QColor(230, 230, 230)
_AXIS_PLANE = {2: "sagittal", 1: "coronal", 0: "axial"}  # plane normal to each array axis


def paint_empty(painter: QPainter, rect: QRect, plane: str, font: QFont) -> None:
    painter.setPen(QColor(150, 150, 150))
    painter.setFont(font)
    text = f"{plane}\nno case open"
    if plane == "axial":
        text += "\n\nFile › Open (Ctrl+O, Ctrl+D), or drop a file or folder here"
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)


def paint_crosshair(
    painter: QPainter, image: QRectF, cursor: QPointF, col_axis: int, row_axis: int
) -> None:
    """Lines through the cursor (with a gap around it), coloured by the plane they show."""
    rect = image.toAlignedRect()
    cx, cy, gap = round(cursor.x()), round(cursor.y()), 10
    painter.setPen(QPen(DIM_COLOURS[_AXIS_PLANE[col_axis]], 0))
    painter.drawLine(cx, rect.top(), cx, cy - gap)
    painter.drawLine(cx, cy + gap, cx, rect.bottom())
    painter.setPen(QPen(DIM_COLOURS[_AXIS_PLANE[row_axis]], 0))
    painter.drawLine(rect.left(), cy, cx - gap, cy)
    painter.drawLine(cx + gap, cy, rect.right(), cy)


def paint_letters(painter: QPainter, width: int, height: int, letters: dict[str, str]) -> None:
    """Patient-direction letters at the edge midpoints; a notice when they are unknown."""
    m = MARGIN
    flags = Qt.AlignmentFlag.AlignCenter
    if not letters:
        painter.setPen(_LETTER)
        painter.drawText(QRectF(0, 0, width, m), flags, "orientation unknown")
        return
    boxes = {
        "top": QRectF(0, 0, width, m),
        "bottom": QRectF(0, height - m, width, m),
        "left": QRectF(0, 0, m, height),
        "right": QRectF(width - m, 0, m, height),
    }
    for edge, box in boxes.items():  # a dark halo keeps letters legible over the image
        painter.setPen(QColor(0, 0, 0))
        painter.drawText(box.translated(1, 1), flags, letters[edge])
        painter.setPen(_LETTER)
        painter.drawText(box, flags, letters[edge])


def paint_corner_texts(painter: QPainter, width: int, height: int, texts: dict[str, str]) -> None:
    """Texts in the corners inside the letter margin: keys ``top_left``, ``bottom_left``,
    ``bottom_right``."""
    a = Qt.AlignmentFlag
    corners = {
        "top_left": a.AlignLeft | a.AlignTop,
        "bottom_left": a.AlignLeft | a.AlignBottom,
        "bottom_right": a.AlignRight | a.AlignBottom,
    }
    inner = QRectF(MARGIN + 4, MARGIN + 2, width - 2 * MARGIN - 8, height - 2 * MARGIN - 4)
    painter.setPen(_TEXT)
    for key, text in texts.items():
        painter.drawText(inner, corners[key], text)


def paint_frame(painter: QPainter, rect: QRect, plane: str, focused: bool) -> None:
    """The plane-coloured border; brighter and doubled on the view with keyboard focus."""
    painter.setPen(QPen(PLANE_COLOURS[plane] if focused else DIM_COLOURS[plane], 0))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRect(rect.adjusted(0, 0, -1, -1))
    if focused:
        painter.drawRect(rect.adjusted(1, 1, -2, -2))
