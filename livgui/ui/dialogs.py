"""Dialogs: series picker, About (versions and licences) and the controls help sheet."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from livgui import __version__
from livgui.core.volume import RESEARCH_NOTICE

__all__ = [
    "CONTROLS",
    "EDIT_CONTROLS",
    "ERASER_RULES",
    "AboutDialog",
    "HelpDialog",
    "SeriesPickerDialog",
    "pick_series",
    "versions",
]

#: (control, action): the help sheet; kept here so tests can check it matches the code.
CONTROLS: list[tuple[str, str]] = [
    ("Left click / drag", "move the crosshair (all views follow)"),
    ("Mouse wheel", "next / previous slice"),
    ("Up / Down, Right / Left arrows", "next / previous slice"),
    ("Page Up / Page Down", "5 slices"),
    ("Home / End", "first / last slice"),
    ("Right drag", "window (left-right) and level (up-down)"),
    ("Ctrl + wheel, + / -", "zoom"),
    ("Middle drag, Shift + left drag", "pan"),
    ("R", "reset zoom and pan of the view"),
    ("Ctrl+0", "reset zoom of all views"),
    ("Double click, F", "one view / three views"),
    ("Ctrl+1 / 2 / 3", "axial / coronal / sagittal alone"),
    ("1 / 2 / 3 / 4", "window presets: abdomen, liver, bone, lung"),
    ("L / P / C", "toggle reference / prediction / correction overlays"),
    ("O", "overlays as fill or outline"),
    ("Click a lesion row", "jump all views to the lesion, centred"),
    ("Ctrl+O / Ctrl+D / Ctrl+Shift+O", "open file / DICOM folder / dataset folder"),
    ("Drag and drop", "open a file or folder"),
]

#: Correction tools (issue 5): kept in step with livgui.ui.edit_controller.TOOLS and
#: edit_panel.SHORTCUTS (a test checks every action's shortcut appears here).
EDIT_CONTROLS: list[tuple[str, str]] = [
    ("Esc", "navigate: no editing tool (left click moves the crosshair)"),
    ("B", "brush: paint the active label (disc; sphere with S)"),
    ("E", "eraser for the active label (see the eraser rules below)"),
    ("H", "HU brush: paints only voxels inside the HU range"),
    ("T", "threshold fill: click fills the connected region inside the HU range (2D/3D)"),
    ("G", "flood fill: click fills the 2D region sharing the voxel's label"),
    ("Y", "polygon fill: drag a lasso, or click vertices"),
    ("U", "polygon cut: like polygon fill, erases inside"),
    ("Enter, double click", "close the polygon"),
    ("I", "remove island: click removes the 3D island of the active label"),
    ("A", "accept lesion: click a predicted lesion to copy it (manual edits kept)"),
    ("Shift+A", "accept the whole prediction (manual edits kept; you are told how many)"),
    ("Q", "switch the active label: liver / lesion"),
    ("[ / ], Shift + wheel", "brush smaller / larger (size in mm, outline on screen)"),
    ("S", "brush: 2D disc / 3D sphere"),
    ("Ctrl+Z", "undo (one mouse drag = one step)"),
    ("Ctrl+Shift+Z, Ctrl+Y", "redo"),
    ("Ctrl+S", "save the corrected mask"),
    ("History list click", "go back or forward to that step"),
]
ERASER_RULES = (
    "Eraser rules: erasing lesion gives liver back (lesion -> liver; liver and background "
    "stay); erasing liver clears liver and any lesion under it (-> background). Painting "
    "liver never overwrites lesion; painting lesion also makes liver (a lesion counts as "
    "liver). Polygon cut follows the same rules. Unsaved edits are autosaved and offered "
    "for recovery after a crash."
)

_LICENCES: list[tuple[str, str]] = [
    ("livgui", "Apache-2.0"),
    ("PySide6-Essentials", "LGPL-3.0 (Qt for Python, dynamically linked)"),
    ("pyqtgraph", "MIT"),
    ("numpy", "BSD-3-Clause"),
    ("scipy", "BSD-3-Clause"),
    ("nibabel", "MIT"),
    ("pydicom", "MIT"),
    ("highdicom", "MIT"),
    ("pylibjpeg, pylibjpeg-openjpeg", "MIT"),
    ("pynrrd", "MIT"),
    ("pyjpegls (CharLS)", "MIT (BSD-3-Clause)"),
    ("isal (Intel ISA-L)", "PSF-2.0 (BSD-3-Clause)"),
    ("pillow", "MIT-CMU (HPND)"),
    ("safetensors", "Apache-2.0"),
    ("platformdirs", "MIT"),
    ("psutil", "BSD-3-Clause"),
    ("torch", "BSD-3-Clause"),
]


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> list[tuple[str, str]]:
    """(component, version) for LivGUI, Python, Qt and the main libraries (torch if any)."""
    from PySide6 import QtCore

    rows = [
        ("LivGUI", __version__),
        ("Python", f"{platform.python_version()} ({sys.platform})"),
        ("Qt", QtCore.qVersion()),
    ]
    for label, dist in (
        ("PySide6", "PySide6-Essentials"),
        ("pyqtgraph", "pyqtgraph"),
        ("numpy", "numpy"),
        ("scipy", "scipy"),
        ("nibabel", "nibabel"),
        ("pydicom", "pydicom"),
        ("torch", "torch"),
    ):
        version = _dist_version(dist) or (_dist_version("PySide6") if label == "PySide6" else None)
        if version is not None:
            rows.append((label, version))
    return rows


def _table(rows: list[tuple[str, str]], headers: tuple[str, str], parent: QWidget) -> QTableWidget:
    table = QTableWidget(len(rows), 2, parent)
    table.setHorizontalHeaderLabels(list(headers))
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for r, (a, b) in enumerate(rows):
        table.setItem(r, 0, QTableWidgetItem(a))
        table.setItem(r, 1, QTableWidgetItem(b))
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
    table.resizeColumnsToContents()
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _notice(parent: QWidget) -> QLabel:
    label = QLabel(f"<b>{RESEARCH_NOTICE.capitalize()}.</b>", parent)
    label.setStyleSheet("color: #b36b00;")
    return label


class AboutDialog(QDialog):
    """Versions of LivGUI and its libraries, and the licences."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About LivGUI")
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                f"<h3>LivGUI {__version__}</h3>Liver and liver-lesion CT review, segmentation and correction.",
                self,
            )
        )
        layout.addWidget(_notice(self))
        layout.addWidget(QLabel("Versions", self))
        self.versions_table = _table(versions(), ("component", "version"), self)
        layout.addWidget(self.versions_table)
        layout.addWidget(QLabel("Licences (LivGUI is Apache-2.0; it uses these libraries):", self))
        self.licences_table = _table(_LICENCES, ("package", "licence"), self)
        layout.addWidget(self.licences_table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(520, 620)


class HelpDialog(QDialog):
    """The sheet of mouse and keyboard controls."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("LivGUI controls")
        layout = QVBoxLayout(self)
        layout.addWidget(_notice(self))
        self.table = _table(CONTROLS, ("control", "action"), self)
        layout.addWidget(self.table)
        text = QTextBrowser(self)
        text.setPlainText(
            "Views follow the radiological convention: axial with anterior at the top and the "
            "patient's right on the image's left; coronal with superior at the top; sagittal "
            "with anterior on the left. The letters on the edges name the patient direction."
        )
        text.setMaximumHeight(80)
        layout.addWidget(text)
        layout.addWidget(QLabel("<b>Correcting masks</b>", self))
        self.edit_table = _table(EDIT_CONTROLS, ("control", "action"), self)
        layout.addWidget(self.edit_table)
        rules = QLabel(ERASER_RULES, self)
        rules.setObjectName("eraser_rules")
        rules.setWordWrap(True)
        layout.addWidget(rules)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(560, 900)


def _field(series: Any, *names: str) -> Any:
    for name in names:
        value = series.get(name) if isinstance(series, dict) else getattr(series, name, None)
        if value not in (None, ""):
            return value
    return None


def _series_rows(series_list: list[Any]) -> list[list[str]]:
    """Table cells of each series (``imageio`` SeriesInfo or a dict with the same keys)."""
    rows = []
    for s in series_list:
        shape = _field(s, "shape") or ()
        problems = _field(s, "problems") or ()
        notes = list(problems) + (["localizer"] if _field(s, "is_localizer") else [])
        if _field(s, "decodable") is False:
            notes.append("no decoder installed")
        rows.append(
            [
                str(_field(s, "label", "description") or ""),
                str(_field(s, "modality") or ""),
                str(_field(s, "n_files") or ""),
                "x".join(str(v) for v in shape),
                "; ".join(str(n) for n in notes),
            ]
        )
    return rows


class SeriesPickerDialog(QDialog):
    """List the series found in one folder; the user picks one to open."""

    HEADERS = ("series", "modality", "files", "size (files x rows x cols)", "notes")

    def __init__(
        self, series_list: list[Any], path: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.series_list = list(series_list)
        self.setWindowTitle("Choose a series")
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(f"{path}\nholds {len(self.series_list)} series. Choose the one to open:", self)
        )
        rows = _series_rows(self.series_list)
        self.table = QTableWidget(len(rows), len(self.HEADERS), self)
        self.table.setHorizontalHeaderLabels(list(self.HEADERS))
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        if rows:
            self.table.selectRow(0)
        self.table.doubleClicked.connect(lambda _i: self.accept())
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.resize(760, 320)

    def chosen(self) -> Any:
        rows = self.table.selectionModel().selectedRows()
        return self.series_list[rows[0].row()] if rows else None


def pick_series(parent: QWidget | None, series_list: list[Any], path: str = "") -> Any:
    """Ask the user for one series (``None`` when cancelled)."""
    dialog = SeriesPickerDialog(series_list, path, parent)
    return dialog.chosen() if dialog.exec() == QDialog.DialogCode.Accepted else None
