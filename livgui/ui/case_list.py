"""Case list dock: the cases of the open library (with review status) or of a dataset folder.

Activating a row (double click or Enter) opens that case in the window.  The library
root is remembered in the window's settings and reopened at start when it still exists.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

__all__ = ["CaseListPanel", "install", "ref_from_record"]

log = logging.getLogger(__name__)


def ref_from_record(record: Any) -> Any:
    """A dataset ``CaseRef`` for a library ``CaseRecord`` (what ``load_case`` reads)."""
    from livgui.imageio.layouts_common import CaseRef

    ref_path = Path(record.reference_path) if record.reference_path else None
    return CaseRef(
        record.case_id, record.layout, Path(record.source_path), ref_path, dict(record.info or {})
    )


class CaseListPanel(QWidget):
    """A tree of cases: ``case id``, ``status``, ``source``; rows carry the ``CaseRef``."""

    def __init__(self, window: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.main_window = window
        self.library: Any = None
        self.title = QLabel("No library open (File › Open library…).", self)
        self.title.setWordWrap(True)
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("case_tree")
        self.tree.setHeaderLabels(["case", "status", "source"])
        self.tree.setRootIsDecorated(False)
        self.tree.itemActivated.connect(self._activate)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.tree, 1)
        window.listing_loaded.connect(self.show_listing)

    # sources --------------------------------------------------------------------------
    def open_library(self, root: str | Path) -> None:
        """Show the cases of the library at ``root`` (created when absent)."""
        from livgui.library import library as library_module

        if self.library is not None:
            self.library.close()
        self.library = library_module.Library.open(root)
        self.main_window.settings.setValue("library/root", str(self.library.root))
        self.refresh()

    def refresh(self) -> None:
        if self.library is None:
            return
        records = self.library.list_cases()
        self.title.setText(f"Library {self.library.root}: {len(records)} cases")
        self.tree.clear()
        for record in records:
            status = record.status + (f": {record.error}" if record.error else "")
            item = QTreeWidgetItem([record.case_id, status, record.source_path])
            item.setData(0, Qt.ItemDataRole.UserRole, ("record", record))
            self.tree.addTopLevelItem(item)
        self._fit()

    def show_listing(self, listing: Any) -> None:
        """Show the cases of a dataset folder (``loading.Listing``) and open the first."""
        self.title.setText(f"{listing.root}: {len(listing.refs)} cases")
        self.tree.clear()
        for ref in listing.refs:
            item = QTreeWidgetItem([ref.case_id, "not in library", str(ref.image_path)])
            item.setData(0, Qt.ItemDataRole.UserRole, ("ref", ref))
            self.tree.addTopLevelItem(item)
        self._fit()
        first = self.tree.topLevelItem(0)
        if first is not None:
            self.tree.setCurrentItem(first)
            self.main_window.open_ref(listing.refs[0])

    def _fit(self) -> None:
        for column in range(2):
            self.tree.resizeColumnToContents(column)

    def _activate(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        kind, payload = item.data(0, Qt.ItemDataRole.UserRole)
        ref = ref_from_record(payload) if kind == "record" else payload
        self.main_window.open_ref(ref)

    def choose_library(self) -> None:
        root = QFileDialog.getExistingDirectory(self.main_window, "Open case library")
        if root:
            try:
                self.open_library(root)
            except Exception as exc:  # a clear message; the window keeps working
                log.warning("could not open library %s: %s", root, exc)
                self.title.setText(f"Could not open library {root}: {exc}")


def install(window: Any) -> None:
    """Add the case list dock and File › Open library… to the window."""
    panel = CaseListPanel(window, window)
    window.case_list = panel
    window.add_dock("cases", "Cases", panel, Qt.DockWidgetArea.LeftDockWidgetArea)
    file_menu = window.menuBar().actions()[0].menu()
    action = QAction("Open &library…", window)
    file_menu.insertAction(window.recent_menu.menuAction(), action)
    action.triggered.connect(lambda _c=False: panel.choose_library())
    root = window.settings.value("library/root", "")
    if root and Path(str(root)).is_dir():
        try:
            panel.open_library(str(root))
        except Exception as exc:  # never block start-up on a broken library
            log.warning("could not reopen library %s: %s", root, exc)
