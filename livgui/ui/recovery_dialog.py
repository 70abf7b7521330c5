"""Crash recovery at start: list unclaimed autosaves, recover, discard or keep them.

At start (:meth:`RecoveryFlow.offer`, run by ``MainWindow.start_up``) the recovery folder
is scanned in a worker; unclaimed journals (no live session holds them) are listed in a
non-modal :class:`RecoveryDialog`.  **Recover** opens the case (from its library or its
source file, named in the ``case.json`` note beside the journal) and applies the recovered
mask to the correction layer as one undoable step; the journal stays on disk until the
edits are saved (or the user discards them), so a second crash during recovery loses
nothing.  **Discard** deletes the autosave, only on that explicit choice.  **Later**
closes the dialog and keeps everything (RELIABILITY rows 25-27).
"""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from livgui.core.atomicio import atomic_write_bytes
from livgui.core.editing import Edit
from livgui.core.volume import RESEARCH_NOTICE
from livgui.library import recovery

__all__ = ["RecoveryDialog", "RecoveryFlow", "read_case_note", "write_case_note"]

log = logging.getLogger(__name__)

NOTE_NAME = "case.json"


def write_case_note(folder: Path, note: dict[str, Any]) -> None:
    """Remember how to reopen the case whose journals live in ``folder``."""
    atomic_write_bytes(folder / NOTE_NAME, json.dumps({**note, "notice": RESEARCH_NOTICE}).encode())


def read_case_note(info: Any) -> dict[str, Any]:
    """The ``case.json`` note beside a journal (empty when absent or damaged)."""
    try:
        note = json.loads((Path(info.path).parent / NOTE_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}


def _find(root: Path, **_kw: Any) -> list[Any]:
    return recovery.find_recoverable(root)


class RecoveryDialog(QDialog):
    """Non-modal list of recoverable autosaves with Recover / Discard / Later."""

    recover_requested = Signal(object)
    discard_requested = Signal(object)

    HEADERS = ("case", "autosaved (UTC)", "steps", "source")

    def __init__(self, infos: list[Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recovery_dialog")
        self.setWindowTitle("Recover unsaved edits")
        self.infos = list(infos)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "LivGUI did not close normally. These cases have autosaved edits that were "
                "never saved. Recover opens the case with the edits; Later keeps them for "
                f"next time; Discard deletes the autosave. ({RESEARCH_NOTICE})",
                self,
            )
        )
        self.table = QTableWidget(0, len(self.HEADERS), self)
        self.table.setHorizontalHeaderLabels(list(self.HEADERS))
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        self.recover_button = QPushButton("Recover", self)
        self.discard_button = QPushButton("Discard…", self)
        self.discard_button.setToolTip("Delete the selected autosave for good")
        self.later_button = QPushButton("Later", self)
        self.later_button.setToolTip("Keep the autosaves; LivGUI offers them again next start")
        for button in (self.recover_button, self.discard_button, self.later_button):
            row.addWidget(button)
        layout.addLayout(row)
        self.recover_button.clicked.connect(lambda: self._emit(self.recover_requested))
        self.discard_button.clicked.connect(lambda: self._emit(self.discard_requested))
        self.later_button.clicked.connect(self.close)
        self.fill()
        self.resize(720, 300)

    def fill(self) -> None:
        self.table.setRowCount(len(self.infos))
        for r, info in enumerate(self.infos):
            note = read_case_note(info)
            cells = (
                str(note.get("case_id") or info.case_id),
                info.time,
                str(info.steps),
                str(note.get("source") or "unknown"),
            )
            for c, text in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        if self.infos:
            self.table.selectRow(0)

    def selected(self) -> Any:
        rows = self.table.selectionModel().selectedRows()
        return self.infos[rows[0].row()] if rows else None

    def _emit(self, signal: Any) -> None:
        info = self.selected()
        if info is not None:
            signal.emit(info)

    def remove(self, info: Any) -> None:
        self.infos = [i for i in self.infos if i.path != info.path]
        self.fill()
        if not self.infos:
            self.close()


class RecoveryFlow(QObject):
    """Finds, offers and applies autosaves.  ``found(list)`` after a scan with results;
    ``recovered(sha256)`` once a recovered mask is in the correction layer."""

    found = Signal(list)
    recovered = Signal(str)

    def __init__(self, window: Any, edits: Any) -> None:
        super().__init__(window)
        self.window = window
        self.edits = edits
        self.dialog: RecoveryDialog | None = None
        self._pending: Any = None
        edits.case_ready.connect(self._on_case_ready)

    def offer(self) -> None:
        """Scan the recovery folder in a worker and show what can be recovered."""
        from livgui.ui.edit_session import recovery_root

        root = recovery_root()
        if not root.is_dir():
            return
        self.window.run_task(partial(_find, root), "Looking for autosaves", self._show, show=False)

    def _show(self, infos: list[Any]) -> None:
        claimed = {str(i.path) for i in self.edits.claimed}
        infos = [i for i in infos if str(i.path) not in claimed]
        if not infos:
            return
        self.dialog = RecoveryDialog(infos, self.window)
        self.dialog.recover_requested.connect(self.recover)
        self.dialog.discard_requested.connect(self.discard)
        self.dialog.show()
        self.found.emit(infos)

    def discard(self, info: Any) -> None:
        """Delete an autosave (the user's explicit choice)."""
        recovery.discard(info)
        log.info("autosave %s discarded by the user", info.path)
        self.window.notify(f"Autosave of {read_case_note(info).get('case_id', '')} deleted", 5000)
        if self.dialog is not None:
            self.dialog.remove(info)

    def recover(self, info: Any) -> None:
        """Open the autosave's case and put the recovered mask into its correction layer."""
        if self.dialog is not None:
            self.dialog.remove(info)
        if self._matches(info):
            self._apply(info)
            return
        note = read_case_note(info)
        self._pending = info
        if not self._reopen(note):
            self._pending = None
            self.window.notify("Cannot reopen that case: its source is unknown", 10000)

    def _reopen(self, note: dict[str, Any]) -> bool:
        library, case_id, source = note.get("library"), note.get("case_id"), note.get("source")
        panel = getattr(self.window, "case_list", None)
        if library and panel is not None and Path(library).is_dir():
            if panel.library is None or str(panel.library.root) != library:
                panel.open_library(library)
            if case_id in panel.library.case_ids():
                from livgui.ui.case_list import ref_from_record

                return self.window.open_ref(ref_from_record(panel.library.get(case_id))) is not None
        if source and Path(source).exists():
            return self.window.open_path(source) is not None
        return False

    def _matches(self, info: Any) -> bool:
        vol = self.window.session.volume
        if vol is None or tuple(vol.shape) != tuple(info.shape):
            return False
        note = read_case_note(info)
        return bool(
            info.case_id == self.edits.case_key
            or (note.get("case_id") == self.window.session.case_id and note.get("source"))
        )

    def _on_case_ready(self, _case_id: str) -> None:
        info, self._pending = self._pending, None
        if info is not None and self._matches(info):
            self._apply(info)
        elif info is not None:
            self.window.notify("The reopened case does not match the autosave", 10000)

    def _apply(self, info: Any) -> None:
        fn = partial(_recover, info)
        worker = self.window.run_task(fn, "Recovering edits", partial(self._recovered, info))
        worker.failed.connect(lambda exc: self.window.notify(f"Recovery failed: {exc}", 10000))

    def _recovered(self, info: Any, mask: np.ndarray) -> None:
        es = self.edits
        h = es.ensure_layer()
        h.end_step()
        edit = Edit.from_boxes((0, 0, 0), h.labels, mask)
        edit.apply(h.labels)
        es.begin(f"Recovered autosave of {info.time}")
        es.apply([edit])
        h.end_step()
        es.claimed.append(info)
        sha = info.sha256  # recover() verified the mask against it; no GUI-thread hash
        es.audit("recover", journal=str(info.path), steps=info.steps, sha256=sha)
        self.window.notify(f"Recovered {info.steps} autosaved steps: save to keep them", 10000)
        self.recovered.emit(sha)


def _recover(info: Any, **_kw: Any) -> np.ndarray:
    return recovery.recover(info)
