"""Segmentation panel: pick the cascade (liver + lesion model) or a one-stage backbone, run
it on the open case or on every case of the library, with progress, ETA and Cancel.

The result of "Run on this case" lands as the ``prediction`` layer only: a correction
layer and manual edits are never touched (RELIABILITY row 29).  Replacing an earlier
prediction is undoable ("Undo last run" puts the previous prediction back, or removes a
new one).  The metrics dock recomputes by itself when the layer changes.  The device in
use is shown in the status bar.  Work runs in workers (:mod:`livgui.ui.segment_worker`);
in-GUI CPU inference uses at most ``cores - 1`` threads so the window stays responsive.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from livgui.core.session import CaseSession
from livgui.core.volume import RESEARCH_NOTICE, LabelMap
from livgui.ui.segment_worker import (
    INSTALL_HINT,
    BatchReport,
    ModelListing,
    SegmentRequest,
    install_bundle,
    list_models,
    segment_case,
    segment_library,
)
from livgui.ui.workers import Worker

__all__ = ["PREDICTION_LAYER", "SegmentPanel", "install"]

log = logging.getLogger(__name__)

PREDICTION_LAYER = "prediction"
_NO_LESION = "(none: liver only)"


def _eta_text(fraction: float, elapsed: float) -> str:
    if fraction < 0.02 or elapsed < 0.5:
        return "estimating time left…"
    left = elapsed * (1.0 - fraction) / fraction
    return f"about {left:.0f} s left" if left < 90 else f"about {left / 60:.1f} min left"


class SegmentPanel(QWidget):
    """Model choice, Run / Run on all cases / Cancel / Undo, progress with ETA, notices."""

    models_listed = Signal()
    run_finished = Signal(object)  # the SegmentationResult now shown
    run_failed = Signal(str)
    run_cancelled = Signal()
    batch_finished = Signal(object)  # BatchReport (also after cancel)
    progressed = Signal(float, str)
    idle = Signal()  # the run ended (whatever the outcome); the buttons are usable again
    case_progressed = Signal(int, int, str, float, str)  # emitted from the batch worker

    def __init__(self, window: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.main_window = window
        self.session: CaseSession = window.session
        self.listing = ModelListing()
        self.worker: Worker | None = None
        self._started = 0.0
        self._undo: tuple[LabelMap | None, LabelMap, int] | None = None
        self._outcome = False
        self._batch = False
        self._listing_run = 0
        self._build()
        self.case_progressed.connect(self._on_case_progress)
        self.session.case_changed.connect(self._on_case_changed)
        self._update_buttons()

    # building -------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addLayout(self._build_choices())
        self.hint = QLabel("Looking for installed models…", self)
        self.hint.setWordWrap(True)
        self.hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.hint)
        self._build_buttons(layout)
        self._build_progress(layout)
        layout.addStretch(1)
        self.device_label = QLabel("Device: detecting…", self)
        self.device_label.setObjectName("device")

    def _build_choices(self) -> QFormLayout:
        self.cascade_radio = QRadioButton("Two-stage cascade (liver, then lesions)", self)
        self.onestage_radio = QRadioButton("Single backbone (one-stage, 0/1/2)", self)
        self.cascade_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.cascade_radio)
        group.addButton(self.onestage_radio)
        self.cascade_radio.toggled.connect(lambda _c: self._update_buttons())
        self.liver_combo, self.lesion_combo = QComboBox(self), QComboBox(self)
        self.onestage_combo, self.device_combo = QComboBox(self), QComboBox(self)
        for combo in (self.liver_combo, self.lesion_combo, self.onestage_combo, self.device_combo):
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(8)
            combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.device_combo.addItem("Automatic (GPU when there is one)", "auto")
        self.device_combo.addItem("CPU only", "cpu")
        form = QFormLayout()
        form.addRow(self.cascade_radio)
        form.addRow("Liver model", self.liver_combo)
        form.addRow("Lesion model", self.lesion_combo)
        form.addRow(self.onestage_radio)
        form.addRow("Model", self.onestage_combo)
        form.addRow("Device", self.device_combo)
        self.device_combo.currentIndexChanged.connect(lambda _i: self._show_device())
        self.replace_check = QCheckBox("Replace NaN/Inf voxels (logged) instead of refusing", self)
        form.addRow(self.replace_check)
        return form

    def _build_buttons(self, layout: QVBoxLayout) -> None:
        self.run_button = self._button("Run on this case", self.run_current, "run_case")
        self.all_button = self._button("Run on all cases", self.run_all, "run_all")
        self.cancel_button = self._button("Cancel", self.cancel, "cancel_segment")
        self.undo_button = self._button("Undo last run", self.undo_last_run, "undo_run")
        self.install_button = self._button("Install model…", self.choose_bundle, "install")
        for row in (
            (self.run_button, self.all_button, self.cancel_button),
            (self.undo_button, self.install_button),
        ):
            line = QHBoxLayout()
            for button in row:
                line.addWidget(button)
            layout.addLayout(line)

    def _build_progress(self, layout: QVBoxLayout) -> None:
        self.case_bar, self.overall_bar = QProgressBar(self), QProgressBar(self)
        for bar in (self.case_bar, self.overall_bar):
            bar.setRange(0, 1000)
            bar.setValue(0)
            layout.addWidget(bar)
        self.overall_bar.hide()
        self.progress_label = QLabel("", self)
        self.progress_label.setWordWrap(True)
        self.summary = QLabel(f"Results are proposals: {RESEARCH_NOTICE}.", self)
        self.summary.setWordWrap(True)
        self.notices = QLabel("", self)
        self.notices.setWordWrap(True)
        self.notices.setStyleSheet("color: #b36b00;")
        for label in (self.progress_label, self.summary, self.notices):
            layout.addWidget(label)

    def _button(self, text: str, slot: Any, name: str) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name)
        button.clicked.connect(lambda _c=False: slot())
        return button

    # models ---------------------------------------------------------------------------
    def refresh_models(self) -> Worker:
        """List installed bundles (and pick the device) in a worker."""
        self.hint.setText("Looking for installed models…")
        self._listing_run += 1
        run = self._listing_run
        worker = self._start(
            partial(list_models), "Listing models", lambda listing: self._show_models(run, listing)
        )
        worker.failed.connect(lambda exc: self.hint.setText(f"Could not list models: {exc}"))
        return worker

    def _show_models(self, run: int, listing: ModelListing) -> None:
        if run != self._listing_run:
            return  # an older listing (the store changed since it started)
        self.listing = listing
        for combo, stage in (
            (self.liver_combo, "liver"),
            (self.lesion_combo, "lesion"),
            (self.onestage_combo, "onestage"),
        ):
            combo.clear()
            if stage == "lesion":
                combo.addItem(_NO_LESION, None)
            for choice in listing.by_stage.get(stage, []):
                combo.addItem(choice.label, choice.path)
                combo.setItemData(combo.count() - 1, choice.model_id, Qt.ItemDataRole.ToolTipRole)
        if self.lesion_combo.count() > 1:
            self.lesion_combo.setCurrentIndex(1)
        if not listing.by_stage.get("liver") and listing.by_stage.get("onestage"):
            self.onestage_radio.setChecked(True)
        hint = INSTALL_HINT if listing.empty else ""
        if listing.broken:
            hint += "\nUnusable bundles: " + "; ".join(listing.broken)
        self.hint.setText(hint.strip() or f"Models from {listing.user_dir} and bundled defaults.")
        self._show_device()
        self._update_buttons()
        self.models_listed.emit()

    def _show_device(self) -> None:
        """Status bar: the automatic choice, or the CPU with the in-GUI thread count."""
        if not self.listing.device:
            return
        if self.device_combo.currentData() == "cpu":
            n = self.listing.threads
            self.device_label.setText(f"Device: CPU, {n} thread{'s' if n != 1 else ''}")
        else:
            self.device_label.setText(f"Device: {self.listing.device}")

    def choose_bundle(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Install model bundle (folder)")
        if folder:
            self.install_folder(folder)

    def install_folder(self, folder: str) -> Worker:
        """Install the bundle folder into the user store, then list the models again."""
        worker = self._start(partial(install_bundle, folder), "Installing model", self._installed)
        worker.failed.connect(lambda exc: self.hint.setText(f"Could not install: {exc}"))
        return worker

    def _installed(self, model_id: str) -> None:
        self.main_window.notify(f"Installed model {model_id}", 6000)
        self.refresh_models()

    # running --------------------------------------------------------------------------
    def request(self) -> SegmentRequest:
        device = str(self.device_combo.currentData() or "auto")
        replace = self.replace_check.isChecked()
        if self.onestage_radio.isChecked():
            onestage = self.onestage_combo.currentData()
            return SegmentRequest(onestage=onestage, device=device, replace_non_finite=replace)
        liver, lesion = self.liver_combo.currentData(), self.lesion_combo.currentData()
        return SegmentRequest(liver, lesion, device=device, replace_non_finite=replace)

    def _ready(self) -> bool:
        r = self.request()
        return bool(r.onestage if self.onestage_radio.isChecked() else r.liver)

    def _library(self) -> Any:
        case_list = getattr(self.main_window, "case_list", None)
        return getattr(case_list, "library", None)

    def _update_buttons(self) -> None:
        busy = self.worker is not None
        ready = self._ready() and not busy
        self.run_button.setEnabled(ready and self.session.has_case)
        self.all_button.setEnabled(ready)  # says "open a library first" when none is open
        self.cancel_button.setEnabled(busy)
        self.undo_button.setEnabled(not busy and self._undo is not None)
        self.install_button.setEnabled(not busy)
        cascade = self.cascade_radio.isChecked()
        for combo in (self.liver_combo, self.lesion_combo):
            combo.setEnabled(cascade and not busy)
        self.onestage_combo.setEnabled(not cascade and not busy)

    def _start(self, fn: Any, description: str, on_done: Any) -> Worker:
        """Run ``fn`` in a window worker; ``on_done`` gets the result whatever case is open."""
        worker: Worker = self.main_window.run_task(fn, description, None, show=False)
        worker.succeeded.connect(on_done)
        return worker

    def _track(self, worker: Worker, description: str, batch: bool = False) -> None:
        self.worker = worker
        self._batch = batch
        self.overall_bar.setVisible(batch)
        self._outcome = False
        self._started = time.monotonic()
        self.case_bar.setFormat("%p%")
        self.case_bar.setValue(0)
        self.overall_bar.setValue(0)
        self.progress_label.setText(f"{description}…")
        self.notices.setText("")
        worker.progressed.connect(self._on_progress)
        worker.cancelled.connect(self._on_cancelled)
        worker.failed.connect(self._on_failed)
        worker.ended.connect(lambda w=worker: self._on_ended(w))
        self._update_buttons()

    def run_current(self) -> Worker | None:
        """Segment the open case; the result replaces only the prediction layer."""
        volume = self.session.volume
        if volume is None or self.worker is not None or not self._ready():
            return None
        request = self.request()
        fn = partial(segment_case, request, volume)
        worker: Worker = self.main_window.run_task(
            fn, f"Segmenting ({request.describe()})", self._apply_result, show=False
        )
        self._track(worker, f"Segmenting {self.session.case_id} with {request.describe()}")
        return worker

    def run_all(self) -> Worker | None:
        """Segment every case of the open library, one at a time, in a worker."""
        library = self._library()
        if library is None or self.worker is not None or not self._ready():
            if library is None:
                self.summary.setText("Open a library first (File › Open library…).")
            return None
        ids = [r.case_id for r in library.list_cases()]
        request = self.request()
        report = BatchReport(str(library.root))
        fn = partial(
            segment_library,
            library.root,
            ids,
            request,
            case_progress=self._throttled_case_progress(),
            report=report,
        )
        worker = self._start(fn, "Segmenting library", self._batch_done)
        worker.cancelled.connect(lambda r=report: self._batch_done(r))
        self._track(
            worker, f"Segmenting {len(ids)} library cases with {request.describe()}", batch=True
        )
        return worker

    def _throttled_case_progress(self) -> Any:
        last = [0.0, -1]

        def emit(i: int, n: int, case_id: str, fraction: float, message: str) -> None:
            now = time.monotonic()
            if i != last[1] or fraction >= 1.0 or now - last[0] >= 0.05:
                last[0], last[1] = now, i
                self.case_progressed.emit(i, n, case_id, fraction, message)

        return emit

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Cancelling…")

    # results --------------------------------------------------------------------------
    def _on_progress(self, fraction: float, message: str) -> None:
        bar = self.overall_bar if self._batch else self.case_bar
        bar.setValue(round(fraction * 1000))
        eta = _eta_text(fraction, time.monotonic() - self._started)
        self.progress_label.setText(f"{100 * fraction:.0f}% — {eta}\n{message}")
        self.progressed.emit(fraction, message)

    def _on_case_progress(self, i: int, n: int, case_id: str, fraction: float, _m: str) -> None:
        self.case_bar.setValue(round(fraction * 1000))
        self.case_bar.setFormat(f"case {i + 1} of {n} ({case_id}): %p%")

    def _layer_name(self) -> str:
        """``prediction``, unless a layer of another kind took that name (never replaced)."""
        existing = self.session.layer(PREDICTION_LAYER)
        if existing is None or existing.kind == "prediction":
            return PREDICTION_LAYER
        return "model prediction"

    def _apply_result(self, result: Any) -> None:
        """Show ``result`` as the prediction layer; the previous one is kept for Undo."""
        name = self._layer_name()
        old = self.session.layer(name)
        previous = old.labels if old is not None else None
        labels = result.labels
        labels.name = name
        layer = self.session.add_layer(name, "prediction", labels)
        self._undo = (previous, labels, layer.version)
        took = result.timings_s.get("total", 0.0)
        models = ", ".join(result.model_ids.values())
        self.summary.setText(
            f"Prediction ({models}) on {result.device} in {took:.1f} s; shown as layer "
            f"'{name}'. Corrections are never changed. {RESEARCH_NOTICE}."
        )
        self._show_notices(result.notices)
        if result.device.startswith("cpu") and not self.device_label.text().startswith(
            "Device: CPU"
        ):
            self.device_label.setText(f"Device: {result.device} (GPU fallback)")
        self.main_window.notify(f"Segmentation done in {took:.1f} s", 5000)
        self.progress_label.setText(f"Done in {took:.1f} s.")
        self._outcome = True
        self.run_finished.emit(result)

    def _show_notices(self, notices: list[str]) -> None:
        self.notices.setText("\n".join(f"⚠ {n}" for n in notices))
        if notices:
            self.main_window.notify("; ".join(notices), 10000)

    def undo_last_run(self) -> bool:
        """Put back the prediction layer as it was before the last run (or remove it)."""
        if self._undo is None:
            return False
        previous, applied, version = self._undo
        layer = self.session.layer(applied.name)
        if layer is None or layer.labels is not applied or layer.version != version:
            self.summary.setText("The prediction changed since the run; nothing undone.")
            self._undo = None
            self._update_buttons()
            return False
        if previous is None:
            self.session.remove_layer(layer.name)
        else:
            self.session.add_layer(layer.name, "prediction", previous)
        self._undo = None
        self.summary.setText("Last run undone: the previous prediction is back.")
        self._update_buttons()
        return True

    def _batch_done(self, report: BatchReport) -> None:
        case_list = getattr(self.main_window, "case_list", None)
        if case_list is not None:
            case_list.refresh()
        problems = [f"{c.case_id}: {c.message}" for c in report.cases if c.state != "predicted"]
        self.summary.setText(f"Library: {report.summary()}. {RESEARCH_NOTICE}.")
        self._show_notices(problems)
        self.progress_label.setText(f"Library run finished in {report.seconds:.1f} s.")
        self._outcome = True
        self.batch_finished.emit(report)

    def _on_cancelled(self) -> None:
        self.progress_label.setText("Cancelled: the layers of this case are unchanged.")
        self._outcome = True
        self.run_cancelled.emit()

    def _on_failed(self, exc: Exception) -> None:
        message = str(exc) or type(exc).__name__
        self.progress_label.setText(f"Failed: {message}")
        self._outcome = True
        self.main_window.notify(f"Segmentation: {message}", 10000)
        self.run_failed.emit(message)

    def _on_ended(self, worker: Worker) -> None:
        if worker is self.worker:
            self.worker = None
            if not self._outcome:
                self.progress_label.setText("Result dropped: another case was opened meanwhile.")
            self._update_buttons()
            self.idle.emit()

    def _on_case_changed(self) -> None:
        self._undo = None
        self._update_buttons()

    @property
    def busy(self) -> bool:
        return self.worker is not None


def install(window: Any) -> None:
    """Add the segmentation dock and the device label in the status bar."""
    panel = SegmentPanel(window, window)
    window.segment_panel = panel
    scroll = QScrollArea(window)  # the dock never forces a minimum window size
    scroll.setWidget(panel)
    scroll.setWidgetResizable(True)
    scroll.setMinimumSize(120, 80)
    window.add_dock("segment", "Segmentation", scroll, Qt.DockWidgetArea.RightDockWidgetArea)
    window.statusBar().addPermanentWidget(panel.device_label)
    window.session.layers_changed.connect(panel._update_buttons)
    panel.refresh_models()
