"""The central area: the research-use banner above three linked slice views.

Three-view layout: axial large on the left, coronal and sagittal stacked on the right.
One-view layout: only the session's main plane.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from livgui.core.session import CaseSession
from livgui.core.volume import RESEARCH_NOTICE
from livgui.ui.slice_view import SliceView

__all__ = ["ViewGrid", "notice_banner"]


def notice_banner(parent: QWidget | None = None) -> QLabel:
    """The always-visible "research use only, not for diagnosis" strip."""
    label = QLabel(f"⚠  {RESEARCH_NOTICE.upper()}  ⚠", parent)
    label.setObjectName("research_notice")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setStyleSheet(
        "QLabel#research_notice { background: #7a4b00; color: #fff4d6; font-weight: bold;"
        " padding: 3px; letter-spacing: 1px; }"
    )
    return label


class ViewGrid(QWidget):
    """Banner + the three :class:`SliceView` widgets, laid out per ``session.layout``."""

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.banner = notice_banner(self)
        self.views = {
            plane: SliceView(session, plane, self) for plane in ("axial", "coronal", "sagittal")
        }
        self._grid_host = QWidget(self)
        self._grid = QGridLayout(self._grid_host)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(3)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self.banner)
        outer.addWidget(self._grid_host, 1)
        self.setStyleSheet("ViewGrid { background: #202020; }")
        for view in self.views.values():
            view.maximise_requested.connect(self.toggle_single)
        session.layout_changed.connect(self._apply_layout)
        self._apply_layout(session.layout, session.main_plane)

    def _apply_layout(self, layout: str, plane: str) -> None:
        for view in self.views.values():
            self._grid.removeWidget(view)
        if layout == "1":
            for name, view in self.views.items():
                view.setVisible(name == plane)
            self._grid.addWidget(self.views[plane], 0, 0, 2, 2)
            self._grid.setColumnStretch(0, 1)
            self._grid.setColumnStretch(1, 0)
            return
        self._grid.addWidget(self.views["axial"], 0, 0, 2, 1)
        self._grid.addWidget(self.views["coronal"], 0, 1)
        self._grid.addWidget(self.views["sagittal"], 1, 1)
        self._grid.setColumnStretch(0, 3)
        self._grid.setColumnStretch(1, 2)
        for view in self.views.values():
            view.setVisible(True)

    def toggle_single(self, plane: str | None = None) -> None:
        """One view of ``plane`` (default: the focused view), or back to three views."""
        if self.session.layout == "1":
            self.session.set_layout("3")
            return
        plane = plane or self.focused_plane()
        self.session.set_layout("1", plane)  # type: ignore[arg-type]
        self.views[plane].setFocus()

    def focused_plane(self) -> str:
        for name, view in self.views.items():
            if view.hasFocus():
                return name
        return self.session.main_plane

    def detach(self) -> None:
        for view in self.views.values():
            view.detach()
        self.session.layout_changed.disconnect(self._apply_layout)
