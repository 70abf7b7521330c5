"""The review window: views in the centre, panels as docks, loading in workers.

Panels are separate modules exposing ``install(window)``; they add themselves with
:meth:`MainWindow.add_dock` (which also lists them in the View menu).  Add a module name
to :data:`PANEL_MODULES` (or call ``install`` yourself) to add a panel: the window knows
none of them.  All domain state lives in ``window.session`` (a Qt-free
:class:`~livgui.core.session.CaseSession`).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QWidget,
)

from livgui.core.presets import PRESETS
from livgui.core.session import CaseSession
from livgui.core.volume import RESEARCH_NOTICE
from livgui.ui import dialogs, loading
from livgui.ui.planes import orientation_known
from livgui.ui.view_grid import ViewGrid
from livgui.ui.workers import TaskBar, Worker

__all__ = ["PANEL_MODULES", "MainWindow"]

log = logging.getLogger(__name__)

#: Modules providing ``install(window)``; the engine and correction panels add theirs.
PANEL_MODULES: list[str] = [
    "livgui.ui.case_list",
    "livgui.ui.layers_panel",
    "livgui.ui.metrics_dock",
    "livgui.ui.segment_panel",
    "livgui.ui.edit_panel",
]
_MAX_RECENT = 10


class MainWindow(QMainWindow):
    """The main window.  ``case_loaded(case_id)`` fires after a case is shown;
    ``load_failed(message)`` and ``load_cancelled()`` end the other ways; ``listing_loaded``
    fires when a folder of several cases was opened."""

    case_loaded = Signal(str)
    load_failed = Signal(str)
    load_cancelled = Signal()
    listing_loaded = Signal(object)

    def __init__(
        self,
        session: CaseSession | None = None,
        settings: QSettings | None = None,
        panels: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.setObjectName("livgui_main")
        self.session = session or CaseSession()
        self.settings = settings or QSettings("LivGUI", "LivGUI")
        self.grid = ViewGrid(self.session, self)
        self.views = self.grid.views
        self.setCentralWidget(self.grid)
        self.workers: set[Worker] = set()
        self.load_worker: Worker | None = None
        self.docks: dict[str, QDockWidget] = {}
        #: panels add: leave_guards (False keeps the case open, e.g. unsaved edits),
        #: shutdown_hooks (window closing) and startup_hooks (run by start_up())
        self.leave_guards: list[Callable[[], bool]] = []
        self.shutdown_hooks: list[Callable[[], None]] = []
        self.startup_hooks: list[Callable[[], None]] = []
        self._auto_single = False
        self._build_status_bar()
        self._build_menus()
        self.setAcceptDrops(True)
        self.resize(1500, 950)
        self.setDockNestingEnabled(True)
        self.session.case_changed.connect(self._update_title)
        for view in self.views.values():
            view.hovered.connect(self._show_readout)
        self.session.cursor_changed.connect(lambda _zyx: self._show_readout(None))
        for module in PANEL_MODULES if panels is None else panels:
            importlib.import_module(module).install(self)
        self._size_docks()
        self._update_title()

    # building -------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.readout_label = QLabel("", self)
        self.readout_label.setObjectName("readout")
        self.warning_label = QLabel("", self)
        self.notice_label = QLabel(RESEARCH_NOTICE, self)
        self.notice_label.setStyleSheet("color: #b36b00; font-weight: bold;")
        self.task_bar = TaskBar(self)
        self.message_label = QLabel("", self)
        self.message_label.setObjectName("message")
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self.message_label.clear)
        bar.addWidget(self.readout_label, 3)
        bar.addWidget(self.message_label, 1)
        bar.addPermanentWidget(self.warning_label)
        bar.addPermanentWidget(self.task_bar)
        bar.addPermanentWidget(self.notice_label)

    def _action(
        self, menu: Any, text: str, slot: Callable[[], Any], shortcut: Any = None
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        self.addAction(action)
        return action

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        self._action(file_menu, "Open &file…", self.choose_file, QKeySequence.StandardKey.Open)
        self._action(
            file_menu, "Open &DICOM folder…", lambda: self.choose_folder("DICOM folder"), "Ctrl+D"
        )
        self._action(
            file_menu,
            "Open d&ataset folder…",
            lambda: self.choose_folder("dataset folder"),
            "Ctrl+Shift+O",
        )
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        self._action(file_menu, "&Close case", self.close_case, "Ctrl+W")
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.view_menu = mb.addMenu("&View")
        self._action(self.view_menu, "&One view / three views", self.grid.toggle_single, "F")
        for plane, key in (("axial", "Ctrl+1"), ("coronal", "Ctrl+2"), ("sagittal", "Ctrl+3")):
            self._action(
                self.view_menu,
                f"Only {plane}",
                partial(self.session.set_layout, "1", plane),  # type: ignore[arg-type]
                key,
            )
        self._action(self.view_menu, "&Reset zoom (all views)", self.reset_views, "Ctrl+0")
        self.view_menu.addSeparator()
        window_menu = mb.addMenu("&Window/level")
        for number, name in enumerate(PRESETS, start=1):
            preset = PRESETS[name]
            label = f"{name.capitalize()}  (W {preset.width:.0f} / L {preset.level:.0f})"
            self._action(window_menu, label, partial(self.apply_preset, name), str(number))
        self.layers_menu = mb.addMenu("&Layers")
        self._action(
            self.layers_menu, "Toggle &reference", partial(self.toggle_kind, "reference"), "L"
        )
        self._action(
            self.layers_menu, "Toggle &prediction", partial(self.toggle_kind, "prediction"), "P"
        )
        self._action(
            self.layers_menu, "Toggle &correction", partial(self.toggle_kind, "correction"), "C"
        )
        self._action(self.layers_menu, "Fill / &outline", self.session_toggle_outline, "O")
        help_menu = mb.addMenu("&Help")
        self._action(
            help_menu,
            "&Controls…",
            lambda: dialogs.HelpDialog(self).exec(),
            QKeySequence.StandardKey.HelpContents,
        )
        self._action(help_menu, "&About LivGUI…", lambda: dialogs.AboutDialog(self).exec())

    def add_dock(
        self, key: str, title: str, widget: QWidget, area: Qt.DockWidgetArea
    ) -> QDockWidget:
        """Add a panel as a dock (listed in the View menu); ``key`` must be unique."""
        if key in self.docks:
            raise ValueError(f"a dock called {key!r} exists already")
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.view_menu.addAction(dock.toggleViewAction())
        self.docks[key] = dock
        return dock

    def notify(self, text: str, timeout_ms: int = 4000) -> None:
        """Show a short message in the status bar (beside the cursor readout)."""
        self.message_label.setText(text)
        self._message_timer.start(timeout_ms)

    def _size_docks(self) -> None:
        horizontal = Qt.Orientation.Horizontal
        for key, preferred in (("cases", 300), ("edit", 300), ("layers", 380), ("metrics", 380)):
            if key in self.docks:
                width = max(preferred, min(440, self._content_width(self.docks[key])))
                self.resizeDocks([self.docks[key]], [width], horizontal)

    @staticmethod
    def _content_width(dock: QDockWidget) -> int:
        """Width a dock's panel asks for (through its scroll area, if it has one)."""
        widget = dock.widget()
        inner = widget.widget() if isinstance(widget, QScrollArea) else None
        if inner is None:
            return int(widget.sizeHint().width())
        return int(inner.sizeHint().width() + 24)  # room for the vertical scroll bar

    # commands -------------------------------------------------------------------------
    def apply_preset(self, name: str) -> None:
        if self.session.has_case:
            self.session.apply_preset(name)
            self.notify(f"Window: {name}", 2000)

    def toggle_kind(self, kind: str) -> None:
        if self.session.layers_of_kind(kind):  # type: ignore[arg-type]
            shown = self.session.toggle_kind_visible(kind)  # type: ignore[arg-type]
            self.notify(f"{kind} {'shown' if shown else 'hidden'}", 2000)

    def session_toggle_outline(self) -> None:
        if self.session.layers:
            style = self.session.toggle_outline()
            self.notify(f"Overlays: {style}", 2000)

    def reset_views(self) -> None:
        for view in self.views.values():
            view.reset_view()

    def close_case(self) -> None:
        if not self.may_leave_case():
            return
        self.cancel_load()
        self.session.close_case()

    def may_leave_case(self) -> bool:
        """Ask every leave guard (unsaved edits prompt); False: stay on the case."""
        return all(guard() for guard in list(self.leave_guards))

    def start_up(self) -> None:
        """Run the panels' start-up hooks (e.g. offer crash recovery); called by the app."""
        for hook in list(self.startup_hooks):
            hook()

    # running work ---------------------------------------------------------------------
    def run_task(
        self,
        fn: Callable[..., Any],
        description: str,
        on_success: Callable[[Any], None] | None = None,
        generation: int | None = None,
        show: bool = True,
    ) -> Worker:
        """Run ``fn(progress=, cancel=)`` in a worker; ``on_success(result)`` runs on the
        GUI thread only if the session's generation is still the one given (or current)."""
        gen = self.session.generation if generation is None else generation
        worker = Worker(fn, description, gen)
        if on_success is not None:
            worker.succeeded.connect(lambda result, w=worker: self._deliver(w, result, on_success))
        worker.ended.connect(lambda w=worker: self._forget(w))
        self.workers.add(worker)
        if show:
            self.task_bar.track(worker)
        worker.start()
        return worker

    def _deliver(self, worker: Worker, result: Any, on_success: Callable[[Any], None]) -> None:
        if self.session.is_current(worker.generation):
            on_success(result)
        else:
            log.info("dropped stale result of %s", worker.description)

    def _forget(self, worker: Worker) -> None:
        self.workers.discard(worker)
        worker.wait()
        worker.deleteLater()

    def cancel_load(self) -> None:
        if self.load_worker is not None:
            self.load_worker.cancel()

    def wait_for_workers(self, timeout_ms: int = 30000) -> None:
        """Cancel every worker and wait for its thread to end (closing, tests)."""
        for worker in list(self.workers):
            worker.cancel()
            worker.wait(timeout_ms)
        QCoreApplication.sendPostedEvents()  # their last queued signals, while we still exist

    # opening --------------------------------------------------------------------------
    def choose_file(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(
            self,
            "Open CT image",
            self._last_dir(),
            "Images (*.nii *.nii.gz *.nrrd *.nhdr *.dcm *.png *.jpg);;All files (*)",
        )
        if path:
            self.open_path(path)

    def choose_folder(self, what: str) -> None:
        path = QFileDialog.getExistingDirectory(self, f"Open {what}", self._last_dir())
        if path:
            self.open_path(path)

    def open_path(
        self, path: str | Path, series: Any = None, labels: str | None = None
    ) -> Worker | None:
        """Open a file, DICOM folder, case or dataset folder in a worker (``None`` when
        the user chose to stay on a case with unsaved edits)."""
        if not self.may_leave_case():
            return None
        path = str(path)
        fn = partial(loading.load_path, path, series=series, labels=labels)
        worker = self.start_load(fn, f"Opening {Path(path).name}")
        worker.failed.connect(lambda exc: self._on_open_failed(path, exc, labels))
        self._remember(path)
        return worker

    def open_ref(self, ref: Any) -> Worker | None:
        """Open one case of a dataset or library (a ``CaseRef``)."""
        if not self.may_leave_case():
            return None
        return self.start_load(
            partial(loading.load_ref, ref), f"Opening {getattr(ref, 'case_id', ref)}"
        )

    def start_load(self, fn: Callable[..., Any], description: str) -> Worker:
        """Load in a worker; a newer load or case makes this one's result stale."""
        self.cancel_load()
        generation = self.session.bump_generation()
        worker = self.run_task(fn, description, self._on_loaded, generation)
        worker.cancelled.connect(self._on_load_cancelled)
        worker.ended.connect(lambda w=worker: self._load_ended(w))
        self.load_worker = worker
        return worker

    def _load_ended(self, worker: Worker) -> None:
        if self.load_worker is worker:
            self.load_worker = None

    def _on_load_cancelled(self) -> None:
        self.notify("Loading cancelled", 4000)
        self.load_cancelled.emit()

    def _on_open_failed(self, path: str, exc: Exception, labels: str | None) -> None:
        choice_error = getattr(_imageio_module(), "SeriesChoiceRequired", None)
        if choice_error is not None and isinstance(exc, choice_error):
            series = dialogs.pick_series(self, getattr(exc, "series_list", []), path)
            if series is not None:
                self.open_path(path, series=series, labels=labels)
                return
            self.load_cancelled.emit()
            return
        message = str(exc) or type(exc).__name__
        self.notify(f"Could not open: {message}", 10000)
        self.load_failed.emit(message)
        if self.isVisible():  # non-modal: the window and tests never wait on it
            box = QMessageBox(QMessageBox.Icon.Warning, "Could not open", message, parent=self)
            box.setModal(False)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.show()

    def _on_loaded(self, result: Any) -> None:
        if isinstance(result, loading.Listing):
            self.listing_loaded.emit(result)
            self.notify(f"{len(result.refs)} cases in {result.root}", 5000)
            return
        self.show_case(result)

    def show_case(self, loaded: loading.Loaded) -> None:
        """Put a loaded case into the session (GUI thread)."""
        self.session.set_case(loaded.volume, loaded.case_id, loaded.warnings)
        self._fit_display(loaded)
        for name, kind, labels in loaded.layers:
            try:
                self.session.add_layer(name, kind, labels)  # type: ignore[arg-type]
            except ValueError as exc:
                self.notify(str(exc), 10000)
                log.warning("%s", exc)
        n = len(loaded.warnings)
        self.warning_label.setText(f"⚠ {n} note{'s' if n != 1 else ''}" if n else "")
        self.warning_label.setToolTip("\n".join(loaded.warnings))
        self.notify(f"Opened {loaded.case_id}", 4000)
        self.case_loaded.emit(loaded.case_id)

    def _fit_display(self, loaded: loading.Loaded) -> None:
        """One-slice images get the one-view layout; non-HU pixel values a full-range window."""
        volume = loaded.volume
        if volume.shape[0] == 1:
            self.session.set_layout("1", "axial")
        elif self.session.layout == "1" and self._auto_single:
            self.session.set_layout("3")
        self._auto_single = volume.shape[0] == 1
        self.session.world_known = orientation_known(volume)
        if any("not hu" in note.lower() for note in loaded.warnings):
            self.session.value_unit = ""
            low, high = volume.finite_range()
            self.session.set_window((low + high) / 2, max(1.0, high - low), "data range")

    # recent files and drops -----------------------------------------------------------
    def recent_paths(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):  # QSettings returns a lone string for one-item lists
            return [value]
        return [str(v) for v in value] if isinstance(value, list) else []

    def _remember(self, path: str) -> None:
        recent = [p for p in self.recent_paths() if p != path]
        self.settings.setValue("recent", [path, *recent][:_MAX_RECENT])
        self.settings.setValue("last_dir", str(Path(path).parent))

    def _last_dir(self) -> str:
        return str(self.settings.value("last_dir", str(Path.home())))

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_paths():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _c=False, p=path: self.open_path(p))
        if not self.recent_menu.actions():
            self.recent_menu.addAction("(none)").setEnabled(False)

    def dragEnterEvent(self, event: Any) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(urls[0])
            event.acceptProposedAction()

    # status and title -----------------------------------------------------------------
    def _show_readout(self, voxel: Any) -> None:
        readout = self.session.readout(voxel) if voxel is not None else self.session.readout()
        self.readout_label.setText(
            ("cursor " if voxel is None else "") + readout.text() if readout else ""
        )

    def _update_title(self) -> None:
        case = f"{self.session.case_id} — " if self.session.has_case else ""
        self.setWindowTitle(f"{case}LivGUI — {RESEARCH_NOTICE}")

    def closeEvent(self, event: Any) -> None:
        if not self.may_leave_case():
            event.ignore()
            return
        for hook in list(self.shutdown_hooks):
            hook()
        self.wait_for_workers()
        super().closeEvent(event)


def _imageio_module() -> Any:
    try:
        return importlib.import_module("livgui.imageio")
    except ImportError:  # pragma: no cover - the package is part of livgui
        return None
