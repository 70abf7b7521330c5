"""History dock: the named undo steps of the correction, autosave state and memory.

Row 0 is the state the correction started from; row *n* is the state after step *n*.
Clicking a row undoes or redoes to it; steps after the current one (redoable) are grey
and italic.  When the byte budget drops the oldest step a notice stays visible here.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["HistoryPanel"]

START_ROW = "Start (as opened)"


class HistoryPanel(QWidget):
    """The step list of :class:`~livgui.ui.edit_session.EditSession`'s history."""

    def __init__(self, edits: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edits = edits
        self.list = QListWidget(self)
        self.list.setObjectName("history_list")
        self.list.setToolTip("Click a step to go back (or forward) to it")
        self.list.itemClicked.connect(lambda item: self.edits.goto(self.list.row(item)))
        self.undo_button = QPushButton("Undo", self)
        self.undo_button.setToolTip("Undo the last step (Ctrl+Z)")
        self.redo_button = QPushButton("Redo", self)
        self.redo_button.setToolTip("Redo (Ctrl+Shift+Z or Ctrl+Y)")
        self.undo_button.clicked.connect(edits.undo)
        self.redo_button.clicked.connect(edits.redo)
        self.notice = QLabel("", self)
        self.notice.setObjectName("history_notice")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("background: #fff2c0; color: #5a4000; padding: 3px;")
        self.notice.hide()
        self.usage = QLabel("", self)
        self.autosave_label = QLabel("Autosave: nothing to save yet", self)
        self.autosave_label.setObjectName("autosave_state")
        self.autosave_spin = self._spin(1, 3600, edits.autosave_s, " s", edits.set_autosave_s)
        self.autosave_spin.setToolTip("Unsaved edits are autosaved this often (crash recovery)")
        budget_mb = edits.budget_bytes / 2**20
        self.budget_spin = self._spin(16, 65536, budget_mb, " MB", edits.set_budget_mb)
        self.budget_spin.setToolTip("Memory for undo; the oldest steps are dropped beyond it")
        self._build()
        self._names: list[str] = []
        edits.changed.connect(self.refresh)
        edits.notice.connect(self.show_notice)
        edits.autosaved.connect(self._autosaved)
        edits.autosave_failed.connect(lambda msg: self.autosave_label.setText(f"⚠ {msg}"))
        self.refresh()

    def _spin(self, lo: float, hi: float, value: float, suffix: str, slot: Any) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(self)
        spin.setRange(lo, hi)
        spin.setDecimals(0)
        spin.setValue(value)
        spin.setSuffix(suffix)
        spin.valueChanged.connect(slot)
        return spin

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addWidget(self.undo_button)
        row.addWidget(self.redo_button)
        layout.addLayout(row)
        layout.addWidget(self.notice)
        layout.addWidget(self.usage)
        layout.addWidget(self.autosave_label)
        form = QFormLayout()
        form.addRow("Autosave every", self.autosave_spin)
        form.addRow("Undo memory", self.budget_spin)
        layout.addLayout(form)

    def show_notice(self, message: str) -> None:
        self.notice.setText(f"⚠ {message}")
        self.notice.show()

    def _autosaved(self, steps: int, _sha: str) -> None:
        when = time.strftime("%H:%M:%S")
        self.autosave_label.setText(f"Autosaved at {when} ({steps} steps in the journal)")

    def refresh(self) -> None:
        """Mirror the history: append/remove changed rows, grey the redoable ones."""
        h = self.edits.history
        entries = h.entries() if h is not None else []
        names = [START_ROW] + [e.name for e in entries] if h is not None else []
        keep = 0
        while keep < min(len(names), len(self._names)) and names[keep] == self._names[keep]:
            keep += 1
        if h is not None and h.dropped and keep < len(self._names):
            keep = 0  # the front moved: rebuild
        while self.list.count() > keep:
            self.list.takeItem(self.list.count() - 1)
        for name in names[keep:]:
            self.list.addItem(QListWidgetItem(name))
        self._names = names
        position = h.position if h is not None else -1
        for row in range(self.list.count()):
            self._style(self.list.item(row), row <= position)
        self.list.blockSignals(True)
        self.list.setCurrentRow(position)
        self.list.blockSignals(False)
        if 0 <= position < self.list.count():
            self.list.scrollToItem(self.list.item(position))
        self.undo_button.setEnabled(h is not None and h.can_undo)
        self.redo_button.setEnabled(h is not None and h.can_redo)
        used = (h.nbytes if h is not None else 0) / 2**20
        budget = self.edits.budget_bytes / 2**20
        self.usage.setText(f"Undo memory: {used:.1f} MB of {budget:.0f} MB")

    @staticmethod
    def _style(item: QListWidgetItem, done: bool) -> None:
        if item.data(Qt.ItemDataRole.UserRole) == done:
            return
        item.setData(Qt.ItemDataRole.UserRole, done)
        font = QFont(item.font())
        font.setItalic(not done)
        item.setFont(font)
        if done:
            item.setData(Qt.ItemDataRole.ForegroundRole, None)  # the palette's text colour
        else:
            item.setForeground(QColor(140, 140, 140))
