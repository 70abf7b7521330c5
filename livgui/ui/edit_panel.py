"""Correction dock: tools, active label, brush size, HU range, component operations,
accepting the prediction, Save / Approve / "use for training".

``install(window)`` wires the editing stack into the main window: the
:class:`~livgui.ui.edit_session.EditSession` (state, saving, autosave), the
:class:`~livgui.ui.edit_controller.EditController` (view input -> tools), this panel, the
history dock and crash recovery, plus an Edit menu with the shortcuts of
:data:`SHORTCUTS` (also listed in the help sheet, ``dialogs.EDIT_CONTROLS``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from livgui.core.volume import LESION, LIVER
from livgui.ui.edit_controller import MAX_MM, MIN_MM, TOOLS, EditController
from livgui.ui.edit_session import START_CHOICES, EditSession
from livgui.ui.history_panel import HistoryPanel
from livgui.ui.recovery_dialog import RecoveryFlow

__all__ = ["SHORTCUTS", "EditPanel", "install"]

#: (key, what): the editing shortcuts besides the tool keys of ``TOOLS``.
SHORTCUTS: list[tuple[str, str]] = [
    ("Ctrl+Z", "undo"),
    ("Ctrl+Shift+Z, Ctrl+Y", "redo"),
    ("Ctrl+S", "save the corrected mask"),
    ("Q", "switch the active label: liver / lesion"),
    ("[ / ]", "brush smaller / larger (1 mm; 0.5 mm below 3 mm)"),
    ("Shift + wheel", "brush size (over a view, with a brush tool)"),
    ("S", "brush: 2D disc / 3D sphere"),
    ("Enter", "close the polygon"),
    ("Shift+A", "accept the whole prediction (manual edits kept)"),
]


class EditPanel(QWidget):
    """The tool dock; mirrors :class:`EditController` and :class:`EditSession` state."""

    def __init__(self, window: Any, edits: EditSession, controller: EditController) -> None:
        super().__init__(window)
        self.main_window, self.edits, self.controller = window, edits, controller
        layout = QVBoxLayout(self)
        layout.addLayout(self._label_row())
        layout.addLayout(self._tool_grid())
        layout.addLayout(self._options())
        layout.addLayout(self._operations())
        layout.addLayout(self._review())
        layout.addStretch(1)
        controller.state_changed.connect(self.sync)
        for signal in (edits.changed, edits.status_changed, edits.case_ready):
            signal.connect(lambda *_a: self.refresh_status())
        self.sync()
        self.refresh_status()

    # building -------------------------------------------------------------------------
    def _label_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Label:", self))
        self.liver_radio = QRadioButton("Liver", self)
        self.lesion_radio = QRadioButton("Lesion", self)
        for radio, label in ((self.liver_radio, LIVER), (self.lesion_radio, LESION)):
            radio.setObjectName(f"label_{radio.text().lower()}")
            radio.setToolTip("Active label of every tool (Q switches)")
            radio.toggled.connect(partial(self._label_toggled, label))
            row.addWidget(radio)
        return row

    def _tool_grid(self) -> QGridLayout:
        grid = QGridLayout()
        self.tool_group = QButtonGroup(self)
        self.tool_buttons: dict[str, QToolButton] = {}
        for i, (name, spec) in enumerate(TOOLS.items()):
            button = QToolButton(self)
            button.setObjectName(f"tool_{name}")
            button.setText(spec.title)
            button.setCheckable(True)
            button.setToolTip(f"{spec.tip} ({spec.key})")
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            button.clicked.connect(partial(self.controller.set_tool, name))
            self.tool_group.addButton(button)
            self.tool_buttons[name] = button
            grid.addWidget(button, i // 2, i % 2)
        return grid

    def _options(self) -> QFormLayout:
        form = QFormLayout()
        self.size_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.size_slider.setObjectName("brush_size")
        self.size_slider.setRange(round(MIN_MM * 2), round(min(MAX_MM, 50.0) * 2))
        self.size_slider.setToolTip("Brush diameter in mm ([ and ], Shift+wheel)")
        self.size_slider.valueChanged.connect(lambda v: self.controller.set_size(v / 2))
        self.size_label = QLabel("", self)
        row = QHBoxLayout()
        row.addWidget(self.size_slider, 1)
        row.addWidget(self.size_label)
        form.addRow("Brush", row)
        self.sphere_check = QCheckBox("3D sphere (S)", self)
        self.sphere_check.setToolTip("Brush paints a ball through neighbouring slices")
        self.sphere_check.toggled.connect(lambda on: self.controller.set_option(sphere=on))
        form.addRow("", self.sphere_check)
        self.hu_low, self.hu_high = QSpinBox(self), QSpinBox(self)
        for spin in (self.hu_low, self.hu_high):
            spin.setRange(-1024, 3071)
            spin.setSuffix(" HU")
            spin.setToolTip("HU brush and threshold fill touch only voxels inside this range")
            spin.valueChanged.connect(self._hu_changed)
        hu_row = QHBoxLayout()
        hu_row.addWidget(self.hu_low)
        hu_row.addWidget(QLabel("to", self))
        hu_row.addWidget(self.hu_high)
        form.addRow("HU range", hu_row)
        self.threshold_3d = QCheckBox("Threshold fill in 3D", self)
        self.threshold_3d.toggled.connect(lambda on: self.controller.set_option(threshold_3d=on))
        form.addRow("", self.threshold_3d)
        return form

    def _button(self, text: str, slot: Any, tip: str, name: str) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.clicked.connect(lambda _c=False: slot())
        return button

    def _operations(self) -> QVBoxLayout:
        box = QVBoxLayout()
        c = self.controller
        row = QHBoxLayout()
        row.addWidget(self._button("Keep largest", c.keep_largest,
                                   "Remove every island of the active label but the largest",
                                   "keep_largest"))  # fmt: skip
        self.min_ml = QDoubleSpinBox(self)
        self.min_ml.setRange(0.01, 10000)
        self.min_ml.setSuffix(" ml")
        self.min_ml.valueChanged.connect(lambda v: c.set_option(min_island_ml=v))
        row.addWidget(self._button("Remove islands under", c.remove_small,
                                   "Remove islands of the active label smaller than this",
                                   "remove_small"))  # fmt: skip
        row.addWidget(self.min_ml)
        box.addLayout(row)
        box.addWidget(self._button("Interpolate between edited slices", c.interpolate,
            "Fill the slices between the slices you painted with the active label on the "
            "plane you last edited (shape-based interpolation)", "interpolate"))  # fmt: skip
        row = QHBoxLayout()
        row.addWidget(self._button("Accept prediction", self.edits.accept,
            "Copy the whole prediction into the correction as one undoable step; manually "
            "edited voxels are kept (Shift+A)", "accept_whole"))  # fmt: skip
        self.start_combo = QComboBox(self)
        self.start_combo.setObjectName("start_from")
        self.start_combo.addItems(list(START_CHOICES))
        self.start_combo.setToolTip("What a new correction layer starts from (first edit)")
        self.start_combo.currentTextChanged.connect(partial(setattr, self.edits, "start_from"))
        row.addWidget(QLabel("start from", self))
        row.addWidget(self.start_combo)
        box.addLayout(row)
        return box

    def _review(self) -> QVBoxLayout:
        box = QVBoxLayout()
        row = QHBoxLayout()
        row.addWidget(self._button("Save", self.edits.save,
            "Save the corrected mask (Ctrl+S); library cases keep original and final",
            "save"))  # fmt: skip
        row.addWidget(self._button("Approve", self.edits.approve,
            "Mark the case approved (saves unsaved edits first)", "approve"))  # fmt: skip
        box.addLayout(row)
        self.training_check = QCheckBox("Use for training", self)
        self.training_check.setObjectName("use_for_training")
        self.training_check.setToolTip("Include this case's final mask in retraining sets")
        self.training_check.clicked.connect(self.edits.set_training)
        box.addWidget(self.training_check)
        self.status = QLabel("", self)
        self.status.setObjectName("edit_status")
        self.status.setWordWrap(True)
        box.addWidget(self.status)
        return box

    # mirroring ------------------------------------------------------------------------
    def _label_toggled(self, label: int, on: bool) -> None:
        if on:
            self.controller.set_label(label)

    def _hu_changed(self) -> None:
        lo, hi = sorted((float(self.hu_low.value()), float(self.hu_high.value())))
        self.controller.set_option(hu_range=(lo, hi))

    def sync(self) -> None:
        c = self.controller
        widgets = (self.liver_radio, self.lesion_radio, self.size_slider, self.sphere_check,
                   self.hu_low, self.hu_high, self.threshold_3d, self.min_ml)  # fmt: skip
        for w in widgets:
            w.blockSignals(True)
        self.tool_buttons[c.tool].setChecked(True)
        (self.liver_radio if c.label == LIVER else self.lesion_radio).setChecked(True)
        self.size_slider.setValue(round(c.size_mm * 2))
        self.size_label.setText(f"{c.size_mm:g} mm")
        self.sphere_check.setChecked(c.sphere)
        self.hu_low.setValue(round(c.hu_range[0]))
        self.hu_high.setValue(round(c.hu_range[1]))
        self.threshold_3d.setChecked(c.threshold_3d)
        self.min_ml.setValue(c.min_island_ml)
        for w in widgets:
            w.blockSignals(False)

    def refresh_status(self) -> None:
        es = self.edits
        case = es.library_case()
        parts = []
        if case is not None:
            record = es.library.get(case)
            parts.append(f"Status: {record.status}")
            self.training_check.setChecked(record.use_for_training)
        self.training_check.setEnabled(case is not None)
        if es.history is None:
            parts.append("no correction yet")
        else:
            parts.append("unsaved edits" if es.dirty else "saved")
        self.status.setText(" • ".join(parts))


def _add_actions(window: Any, edits: EditSession, controller: EditController) -> QMenu:
    menu = QMenu("&Edit", window)
    window.menuBar().insertMenu(window.view_menu.menuAction(), menu)
    window.edit_menu = menu

    def act(text: str, slot: Any, *keys: Any) -> QAction:
        action = QAction(text, window)
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda _c=False: slot())
        menu.addAction(action)
        window.addAction(action)
        return action

    act("&Undo", edits.undo, QKeySequence.StandardKey.Undo)
    act("&Redo", edits.redo, "Ctrl+Shift+Z", "Ctrl+Y")
    window.save_action = act("&Save corrected mask", edits.save, "Ctrl+S")
    menu.addSeparator()
    for name, spec in TOOLS.items():
        act(spec.title, partial(controller.set_tool, name), spec.key)
    act("Switch label liver / lesion", controller.toggle_label, "Q")
    act("Brush smaller", partial(controller.grow, -1), "[")
    act("Brush larger", partial(controller.grow, 1), "]")
    act("Brush disc / sphere", lambda: controller.set_option(sphere=not controller.sphere), "S")
    act("Close polygon", controller.close_polygon, "Return", "Enter")
    menu.addSeparator()
    act("Accept whole prediction", edits.accept, "Shift+A")
    act("Keep largest island", controller.keep_largest)
    act("Interpolate between edited slices", controller.interpolate)
    act("A&pprove case", edits.approve)
    return menu


def _remember_model(window: Any, result: Any) -> None:
    ids = getattr(result, "model_ids", None) or {}
    model = "+".join(str(v) for v in ids.values())
    if model:
        window.session.store_result("prediction_model_id", model, window.session.generation)


def _scrolled(widget: QWidget) -> QScrollArea:
    """The panel in a scroll area, so the docks never force a large minimum window size."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setWidget(widget)
    area.setMinimumSize(120, 80)
    return area


def install(window: Any) -> None:
    """Add the correction and history docks, the Edit menu and crash recovery."""
    edits = EditSession(window)
    controller = EditController(edits, window.views)
    panel = EditPanel(window, edits, controller)
    history = HistoryPanel(edits, window)
    recovery = RecoveryFlow(window, edits)
    window.edit_session, window.edit_controller = edits, controller
    window.edit_panel, window.history_panel, window.recovery = panel, history, recovery
    window.add_dock("edit", "Correction", _scrolled(panel), Qt.DockWidgetArea.LeftDockWidgetArea)
    history_dock = window.add_dock(
        "history", "History", _scrolled(history), Qt.DockWidgetArea.LeftDockWidgetArea
    )
    if "cases" in window.docks:  # tabbed with the case list: the tools get the height
        window.tabifyDockWidget(window.docks["cases"], history_dock)
        window.docks["cases"].raise_()
    window.leave_guards.append(edits.may_leave)
    window.shutdown_hooks.append(edits.shutdown)
    window.startup_hooks.append(recovery.offer)
    _add_actions(window, edits, controller)
    segment = getattr(window, "segment_panel", None)
    if segment is not None and hasattr(segment, "run_finished"):
        segment.run_finished.connect(partial(_remember_model, window))
