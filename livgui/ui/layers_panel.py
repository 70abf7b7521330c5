"""Layers dock: one row per mask layer with visibility, opacity and fill/outline.

It only mirrors ``session.layers`` and sends commands to the session; the views redraw
from the session's events.  New layer kinds (prediction, correction) appear by
themselves when another module calls ``session.add_layer``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from livgui.core.session import CaseSession, LabelLayer
from livgui.ui.overlays import LABEL_COLOURS

__all__ = ["LayersPanel", "install"]


def _swatch(kind: str) -> str:
    parts = []
    for value, name in ((1, "liver"), (2, "lesion")):
        r, g, b = LABEL_COLOURS.get(kind, LABEL_COLOURS["reference"])[value]
        colour = QColor(r, g, b).name()
        parts.append(f"<span style='color:{colour}'>■</span> {name}")
    return " ".join(parts)


class _LayerRow:
    """The widgets of one layer."""

    def __init__(self, panel: LayersPanel, layer: LabelLayer, row: int) -> None:
        grid = panel.grid
        self.name = layer.name
        self.visible = QCheckBox(f"{layer.name} ({layer.kind})", panel)
        self.visible.setObjectName(f"visible_{layer.name}")
        self.colours = QLabel(_swatch(layer.kind), panel)
        self.opacity = QSlider(Qt.Orientation.Horizontal, panel)
        self.opacity.setObjectName(f"opacity_{layer.name}")
        self.opacity.setRange(0, 100)
        self.style = QComboBox(panel)
        self.style.setObjectName(f"style_{layer.name}")
        self.style.addItems(["fill", "outline"])
        grid.addWidget(self.visible, row * 2, 0, 1, 2)
        grid.addWidget(self.colours, row * 2, 2)
        grid.addWidget(self.opacity, row * 2 + 1, 0, 1, 2)
        grid.addWidget(self.style, row * 2 + 1, 2)
        self.sync(layer)
        s = panel.session
        self.visible.toggled.connect(lambda on: s.set_layer_visible(self.name, on))
        self.opacity.valueChanged.connect(lambda v: s.set_layer_opacity(self.name, v / 100.0))
        self.style.currentTextChanged.connect(lambda text: s.set_layer_style(self.name, text))

    def sync(self, layer: LabelLayer) -> None:
        """Show the layer's state without echoing it back to the session."""
        for widget in (self.visible, self.opacity, self.style):
            widget.blockSignals(True)
        self.visible.setChecked(layer.visible)
        self.opacity.setValue(round(layer.opacity * 100))
        self.style.setCurrentText(layer.style)
        for widget in (self.visible, self.opacity, self.style):
            widget.blockSignals(False)

    def widgets(self) -> list[QWidget]:
        return [self.visible, self.colours, self.opacity, self.style]


class LayersPanel(QWidget):
    """The layer list; ``rows[name]`` gives the widgets of a layer (for tests and tools)."""

    def __init__(self, session: CaseSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        outer = QVBoxLayout(self)
        self.empty = QLabel("No masks. Open a case with a reference, or add a mask.", self)
        self.empty.setWordWrap(True)
        outer.addWidget(self.empty)
        host = QWidget(self)
        self.grid = QGridLayout(host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(host)
        hint = QLabel("Keys: L reference, P prediction, C correction, O fill/outline", self)
        hint.setStyleSheet("color: gray;")
        hint.setWordWrap(True)
        outer.addWidget(hint)
        outer.addStretch(1)
        self.rows: dict[str, _LayerRow] = {}
        session.layers_changed.connect(self.rebuild)
        session.layer_changed.connect(self._on_layer)
        self.rebuild()

    def rebuild(self) -> None:
        for row in self.rows.values():
            for widget in row.widgets():
                self.grid.removeWidget(widget)
                widget.hide()  # deleteLater waits for the event loop: never paint it again
                widget.deleteLater()
        self.rows = {}
        for i, layer in enumerate(self.session.layers):
            self.rows[layer.name] = _LayerRow(self, layer, i)
        self.empty.setVisible(not self.rows)

    def _on_layer(self, name: str) -> None:
        layer = self.session.layer(name)
        if layer is not None and name in self.rows:
            self.rows[name].sync(layer)


def install(window: Any) -> None:
    """Add the layers dock to a :class:`~livgui.ui.main_window.MainWindow`."""
    panel = LayersPanel(window.session, window)
    window.layers_panel = panel
    window.add_dock("layers", "Layers", panel, Qt.DockWidgetArea.RightDockWidgetArea)
