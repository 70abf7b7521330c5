"""Metrics dock: per-case figures (reference vs each other layer) and the lesion table.

The figures and lesions are computed by :func:`analyse` (a plain function, run in a
worker whenever the layers change); a result is shown only if it belongs to the current
case and to the latest analysis.  Clicking a lesion row selects it in the session, which
moves the cursor of all views to the lesion's centroid and centres them on it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from livgui.core.lesions import Lesion, lesion_table
from livgui.core.metrics import case_metrics
from livgui.core.progress import ProgressFn, check_cancel, no_progress
from livgui.core.session import CaseSession
from livgui.core.volume import LabelMap, Volume

__all__ = ["MetricsPanel", "analyse", "install"]

log = logging.getLogger(__name__)

#: Comparison rows: (title, path in case_metrics().to_json(), format)
FIGURES: list[tuple[str, tuple[str, ...], str]] = [
    ("Liver Dice", ("liver", "dice"), "{:.3f}"),
    ("Liver IoU", ("liver", "iou"), "{:.3f}"),
    ("Liver HD95 (mm)", ("liver", "hd95_mm"), "{:.1f}"),
    ("Liver ASSD (mm)", ("liver", "assd_mm"), "{:.2f}"),
    ("Lesion Dice", ("lesion", "dice"), "{:.3f}"),
    ("Lesion IoU", ("lesion", "iou"), "{:.3f}"),
    ("Lesion HD95 (mm)", ("lesion", "hd95_mm"), "{:.1f}"),
    ("Mean IoU (classes)", ("mean_iou",), "{:.3f}"),
]
#: "slice" is the axial slice of the centroid (1-based, where a click jumps); diameters are
#: measured on the slice where the lesion is largest, named in their tooltip.
LESION_COLUMNS = ("#", "slice", "ml", "long mm", "perp mm", "HU")


def analyse(
    volume: Volume,
    layers: Sequence[tuple[str, str, LabelMap]],
    *,
    progress: ProgressFn = no_progress,
    cancel: Any = None,
) -> dict[str, Any]:
    """Lesion tables of every layer and metrics of every non-reference layer vs the reference.

    Returns ``{"lesions": {layer: [Lesion]}, "metrics": {layer: case_metrics json},
    "volumes": {layer: {"liver_ml", "lesion_ml"}}}``.
    """
    out: dict[str, Any] = {"lesions": {}, "metrics": {}, "volumes": {}}
    reference = next((lm for _n, kind, lm in layers if kind == "reference"), None)
    steps = max(1, len(layers) * 2)
    for i, (name, kind, labels) in enumerate(layers):
        progress(i * 2 / steps, f"lesions of {name}")
        out["lesions"][name] = lesion_table(labels, volume)
        ml = labels.geometry.voxel_volume_ml
        out["volumes"][name] = {
            "liver_ml": float(labels.liver().sum()) * ml,
            "lesion_ml": float(labels.lesion().sum()) * ml,
        }
        check_cancel(cancel)
        if reference is not None and labels is not reference and kind != "reference":
            progress((i * 2 + 1) / steps, f"metrics of {name}")
            out["metrics"][name] = case_metrics(reference, labels, cancel=cancel).to_json()
    progress(1.0, "done")
    return out


def _lookup(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = doc
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _fmt(value: Any, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


class MetricsPanel(QWidget):
    """Figures table + lesion table.  ``analysis_done`` fires when results are shown."""

    analysis_done = Signal()

    def __init__(self, window: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.main_window = window
        self.session: CaseSession = window.session
        self._run = 0
        self._busy = False
        self._pending = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self.start_analysis)
        self.status = QLabel("No case open.", self)
        self.status.setWordWrap(True)
        self.figures = QTableWidget(0, 0, self)
        self.figures.setObjectName("figures")
        self.figures.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.layer_choice = QComboBox(self)
        self.layer_choice.currentTextChanged.connect(lambda _t: self._fill_lesions())
        self.lesions = QTableWidget(0, len(LESION_COLUMNS), self)
        self.lesions.setObjectName("lesion_table")
        self.lesions.setHorizontalHeaderLabels(list(LESION_COLUMNS))
        self.lesions.verticalHeader().setVisible(False)
        self.lesions.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.lesions.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.lesions.cellClicked.connect(self.jump_to_row)
        self._lesion_rows: list[Lesion] = []
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.figures, 2)
        row = QHBoxLayout()
        row.addWidget(QLabel("Lesions of", self))
        row.addWidget(self.layer_choice, 1)
        layout.addLayout(row)
        layout.addWidget(self.lesions, 3)
        self.effort = QLabel("", self)  # correction effort (filled by the edit session)
        self.effort.setObjectName("correction_effort")
        self.effort.setWordWrap(True)
        layout.addWidget(self.effort)
        for event in (self.session.layers_changed, self.session.layer_data_changed):
            event.connect(lambda *_a: self._timer.start())
        self.session.results_changed.connect(self._on_result)

    def start_analysis(self) -> None:
        """Recompute figures and lesion tables of the current layers in a worker.

        The worker reads the layers' arrays in place: copying a 512x512x500 mask on the GUI
        thread stalls it for up to hundreds of ms (page faults).  A result is shown only if
        no layer changed while it was computed (versions checked on arrival); otherwise it
        is dropped and the analysis runs again.  One analysis runs at a time.
        """
        volume = self.session.volume
        self._run += 1
        if volume is None or not self.session.layers:
            self._show({"lesions": {}, "metrics": {}, "volumes": {}})
            return
        if self._busy:
            self._pending = True
            return
        layers = [(layer.name, layer.kind, layer.labels) for layer in self.session.layers]
        run, stamp = self._run, self._stamp()
        self._busy, self._pending = True, False
        self.status.setText("Computing figures…")
        fn = partial(analyse, volume, layers)
        worker = self.main_window.run_task(
            fn, "Computing metrics", lambda result: self._store(run, stamp, result)
        )
        worker.ended.connect(self._analysis_ended)

    def _stamp(self) -> tuple[tuple[str, int, int], ...]:
        return tuple((la.name, id(la.labels), la.version) for la in self.session.layers)

    def _analysis_ended(self) -> None:
        self._busy = False
        if self._pending:
            self._pending = False
            self._timer.start()

    def analyse_now(self) -> None:
        """Compute and show the figures synchronously (screenshots, scripts)."""
        self._timer.stop()
        self._run += 1
        volume = self.session.volume
        if volume is None:
            return
        layers = [(la.name, la.kind, la.labels) for la in self.session.layers]
        self.session.store_result("analysis", analyse(volume, layers), self.session.generation)

    def _store(
        self, run: int, stamp: tuple[tuple[str, int, int], ...], result: dict[str, Any]
    ) -> None:
        if stamp != self._stamp():
            self._pending = True  # a layer changed under the worker: compute again
        elif run == self._run:
            self.session.store_result("analysis", result, self.session.generation)

    def _on_result(self, key: str) -> None:
        if key == "analysis":
            self._show(self.session.results["analysis"])
        elif key == "effort":
            self.show_effort(self.session.results["effort"])

    def show_effort(self, effort: dict[str, Any]) -> None:
        """Correction effort: Dice and changed voxels original -> final, active edit time."""

        def num(key: str, fmt: str) -> str:
            value = effort.get(key)
            return "—" if value is None else fmt.format(value)

        self.effort.setText(
            "<b>Correction effort</b> (model original → final"
            + (", saved" if effort.get("saved") else ", unsaved")
            + f"): liver Dice {num('dice_liver', '{:.3f}')}, lesion Dice "
            f"{num('dice_lesion', '{:.3f}')}, {num('changed_voxels', '{:,}')} voxels changed "
            f"({num('changed_ml', '{:.1f}')} ml), edit time {num('active_edit_s', '{:.0f}')} s "
            f"over {num('strokes', '{}')} steps"
        )

    def _show(self, result: dict[str, Any]) -> None:
        self._result = result
        self._fill_figures(result)
        names = list(result["lesions"])
        current = self.layer_choice.currentText()
        self.layer_choice.blockSignals(True)
        self.layer_choice.clear()
        self.layer_choice.addItems(names)
        if current in names:
            self.layer_choice.setCurrentText(current)
        self.layer_choice.blockSignals(False)
        self._fill_lesions()
        if self.session.volume is None:
            self.status.setText("No case open.")
        elif not result["volumes"]:
            self.status.setText("No masks: open or add a mask to see figures and lesions.")
        elif not result["metrics"]:
            self.status.setText("Reference only: add a prediction or correction to compare.")
        else:
            self.status.setText(f"Compared with the reference: {', '.join(result['metrics'])}.")
        self.analysis_done.emit()

    def _fill_figures(self, result: dict[str, Any]) -> None:
        names = list(result["volumes"])
        rows = [
            ("Liver volume (ml)", "liver_ml", "{:.0f}"),
            ("Lesion volume (ml)", "lesion_ml", "{:.1f}"),
            ("Lesions", None, "{}"),
        ]
        compared = list(result["metrics"])
        titles = [r[0] for r in rows] + ([t for t, _p, _f in FIGURES] if compared else [])
        titles = titles if names else []
        self.figures.clear()
        self.figures.setRowCount(len(titles))
        self.figures.setColumnCount(len(names))
        self.figures.setHorizontalHeaderLabels(names)
        self.figures.setVerticalHeaderLabels(titles)
        for c, name in enumerate(names):
            vols = result["volumes"][name]
            values = [
                _fmt(vols["liver_ml"], rows[0][2]),
                _fmt(vols["lesion_ml"], rows[1][2]),
                str(len(result["lesions"][name])),
            ]
            doc = result["metrics"].get(name)
            if compared:
                values += [_fmt(_lookup(doc, p), f) if doc else "ref" for _t, p, f in FIGURES]
            for r, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.figures.setItem(r, c, item)
        self.figures.resizeColumnsToContents()

    def _fill_lesions(self) -> None:
        result = getattr(self, "_result", None) or {"lesions": {}}
        self._lesion_rows = list(result["lesions"].get(self.layer_choice.currentText(), []))
        self.lesions.setRowCount(len(self._lesion_rows))
        for r, les in enumerate(self._lesion_rows):
            hu = "—" if les.mean_hu is None else f"{les.mean_hu:.0f}"
            cells = (
                str(les.id),
                str(round(les.centroid_zyx[0]) + 1),
                f"{les.volume_ml:.2f}",
                f"{les.longest_axial_diameter_mm:.1f}",
                f"{les.perpendicular_diameter_mm:.1f}",
                hu,
            )
            measured = f"measured on axial slice {les.axial_slice + 1}"
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if c in (3, 4):
                    item.setToolTip(measured)
                self.lesions.setItem(r, c, item)
        self.lesions.resizeColumnsToContents()

    def jump_to_row(self, row: int, _column: int = 0) -> None:
        """Select lesion ``row``: all views move to its centroid and centre on it."""
        if 0 <= row < len(self._lesion_rows) and self.session.has_case:
            les = self._lesion_rows[row]
            self.session.select_lesion(les.id, les.centroid_zyx)


def install(window: Any) -> None:
    """Add the metrics dock to a :class:`~livgui.ui.main_window.MainWindow`."""
    panel = MetricsPanel(window, window)
    window.metrics_panel = panel
    window.add_dock("metrics", "Metrics and lesions", panel, Qt.DockWidgetArea.RightDockWidgetArea)
