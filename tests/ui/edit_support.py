"""Helpers for the correction tests: drive the real views with simulated mouse events."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication


def pos_of(view, zyx) -> QPoint:
    """Widget pixel at the centre of voxel ``(z, y, x)`` on the view's current slice."""
    return view.widget_pos(tuple(float(v) for v in zyx)).toPoint()


def show_slice(window, plane: str, zyx) -> None:
    """Put the cursor at ``zyx`` so ``plane``'s view shows that voxel's slice; repaint."""
    window.session.set_cursor(tuple(zyx))
    window.views[plane].repaint()


def drag(qtbot, view, points: Sequence[Sequence[float]], modifier=Qt.KeyboardModifier.NoModifier):
    """Press at the first voxel, move through the others, release at the last."""
    pts = [pos_of(view, p) for p in points]
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, modifier, pts[0])
    for p in pts[1:]:
        qtbot.mouseMove(view, p)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, modifier, pts[-1])


def click(qtbot, view, zyx) -> None:
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=pos_of(view, zyx))


def wheel(view, pos: QPoint, steps: int, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Send a wheel event of ``steps`` notches at ``pos``."""
    event = QWheelEvent(
        QPointF(pos), QPointF(view.mapToGlobal(pos)), QPoint(0, 0), QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False,
    )  # fmt: skip
    QApplication.sendEvent(view, event)


def prepare(window, qtbot, tmp_path, monkeypatch):
    """Autosave into ``tmp_path``; the unsaved-edits prompt answers Discard (closing at
    teardown never blocks); the window is active (window shortcuts need that)."""
    monkeypatch.setenv("LIVGUI_RECOVERY_DIR", str(tmp_path / "recovery"))
    window.edit_session.prompt = lambda _case: "discard"
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    return window
