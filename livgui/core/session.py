"""The open case as one evented, Qt-free object.

Widgets subscribe to the :class:`Event` attributes of a :class:`CaseSession` and send it
commands; they hold no domain state of their own.  The session is touched only on the GUI
thread.  Workers take immutable inputs and return results; before a result is applied the
caller checks :meth:`CaseSession.is_current` with the generation it started under, so a
result that arrives after the user opened another case is dropped.

Positions are voxel indices ``(z, y, x)`` in the memory convention of
:mod:`livgui.core.geometry`; world positions are LPS millimetres.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from livgui.core.presets import PRESETS, WindowLevel
from livgui.core.volume import LABEL_NAMES, LabelMap, Volume

__all__ = [
    "LAYER_KINDS",
    "CaseSession",
    "Event",
    "LabelLayer",
    "LayerKind",
    "Readout",
]

log = logging.getLogger(__name__)

LayerKind = Literal["reference", "prediction", "correction"]
LAYER_KINDS: tuple[LayerKind, ...] = ("reference", "prediction", "correction")
Style = Literal["fill", "outline"]
Layout = Literal["1", "3"]
Plane = Literal["axial", "coronal", "sagittal"]
PLANES: tuple[Plane, ...] = ("axial", "coronal", "sagittal")


class Event:
    """A plain-Python signal: ``connect(callback)`` then ``emit(*args)`` calls them in order.

    A callback that raises is logged and does not stop the others.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        if callback not in self._callbacks:
            self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            try:
                callback(*args)
            except Exception:
                log.exception("handler of session event %s failed", self.name)


@dataclass(eq=False)
class LabelLayer:
    """One mask shown over the volume.

    Attributes
    ----------
    name
        Unique name within the session (``"reference"``, ``"prediction"`` ...).
    kind
        ``reference`` (manual ground truth), ``prediction`` (model) or ``correction``.
    labels
        The label map on the volume's grid (``data[z, y, x]``, uint8).
    visible, opacity, style
        Display state; ``opacity`` in ``[0, 1]``; ``style`` ``"fill"`` or ``"outline"``.
    version
        Bumped whenever the label voxels change so renderers can drop cached slices.
    """

    name: str
    kind: LayerKind
    labels: LabelMap
    visible: bool = True
    opacity: float = 0.35
    style: Style = "fill"
    version: int = 0


@dataclass(frozen=True)
class Readout:
    """What lies under a voxel: indices ``(z, y, x)``, world LPS mm, HU and labels."""

    zyx: tuple[int, int, int]
    lps_mm: tuple[float, float, float] | None
    hu: float
    labels: dict[str, str] = field(default_factory=dict)
    unit: str = "HU"

    def text(self) -> str:
        z, y, x = self.zyx
        value = "nan" if not np.isfinite(self.hu) else f"{self.hu:.0f}"
        parts = [f"voxel (x {x}, y {y}, z {z})"]
        if self.lps_mm is not None:
            wx, wy, wz = self.lps_mm
            parts.append(f"LPS ({wx:.1f}, {wy:.1f}, {wz:.1f}) mm")
        parts.append(f"{value} {self.unit}" if self.unit else f"value {value}")
        parts += [f"{name}: {value}" for name, value in self.labels.items()]
        return "  |  ".join(parts)


class CaseSession:
    """State of the open case: volume, label layers, cursor, window, layout, selection.

    Events (callbacks receive the arguments shown):

    * ``case_changed()``: a new volume was set, or the case closed;
    * ``cursor_changed((z, y, x))``: the shared cursor moved;
    * ``window_changed(WindowLevel)``;
    * ``layers_changed()``: a layer was added or removed;
    * ``layer_changed(name)``: display state of one layer changed;
    * ``layer_data_changed(name)``: voxels of one layer changed;
    * ``lesion_selected(lesion_id, (z, y, x))``: views should centre on that point;
    * ``layout_changed(layout, plane)``;
    * ``results_changed(key)``: a derived result (metrics, lesion table) was stored.
    """

    def __init__(self) -> None:
        self.volume: Volume | None = None
        self.case_id: str = ""
        self.warnings: tuple[str, ...] = ()
        self.layers: list[LabelLayer] = []
        self.cursor: tuple[int, int, int] = (0, 0, 0)
        self.window: WindowLevel = PRESETS["abdomen"]
        self.layout: Layout = "3"
        self.main_plane: Plane = "axial"
        self.selected_lesion: int | None = None
        self.results: dict[str, Any] = {}
        #: display facts of the open image: the unit of its values ("" when they are not
        #: HU) and whether its world position/orientation is known (not for 2D exports)
        self.value_unit = "HU"
        self.world_known = True
        self._generation = 0
        self.case_changed = Event("case_changed")
        self.cursor_changed = Event("cursor_changed")
        self.window_changed = Event("window_changed")
        self.layers_changed = Event("layers_changed")
        self.layer_changed = Event("layer_changed")
        self.layer_data_changed = Event("layer_data_changed")
        self.lesion_selected = Event("lesion_selected")
        self.layout_changed = Event("layout_changed")
        self.results_changed = Event("results_changed")

    # generation -------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        """Bumped by every new case and close; a worker result is valid only for its own."""
        return self._generation

    def is_current(self, generation: int) -> bool:
        return generation == self._generation

    def bump_generation(self) -> int:
        """Invalidate all pending worker results (e.g. a new load started); returns it."""
        self._generation += 1
        return self._generation

    # case -----------------------------------------------------------------------------
    def set_case(self, volume: Volume, case_id: str = "", warnings: tuple[str, ...] = ()) -> None:
        """Show ``volume``; clears layers and results, centres the cursor."""
        self.bump_generation()
        self.volume = volume
        self.case_id = case_id or volume.name
        self.warnings = tuple(warnings)
        self.layers = []
        self.results = {}
        self.selected_lesion = None
        self.value_unit, self.world_known = "HU", True
        self.cursor = tuple(s // 2 for s in volume.shape)  # type: ignore[assignment]
        self.case_changed.emit()
        self.layers_changed.emit()
        self.cursor_changed.emit(self.cursor)

    def close_case(self) -> None:
        self.bump_generation()
        self.volume = None
        self.case_id = ""
        self.warnings = ()
        self.layers = []
        self.results = {}
        self.selected_lesion = None
        self.case_changed.emit()
        self.layers_changed.emit()

    @property
    def has_case(self) -> bool:
        return self.volume is not None

    def _require_volume(self) -> Volume:
        if self.volume is None:
            raise RuntimeError("no case is open")
        return self.volume

    # layers ---------------------------------------------------------------------------
    def add_layer(
        self,
        name: str,
        kind: LayerKind,
        labels: LabelMap,
        *,
        visible: bool = True,
        opacity: float | None = None,
    ) -> LabelLayer:
        """Add (or replace, keeping its display state) the layer called ``name``.

        Raises ``ValueError`` naming both shapes when the mask is not on the volume's grid.
        """
        volume = self._require_volume()
        if kind not in LAYER_KINDS:
            raise ValueError(f"unknown layer kind {kind!r}; expected one of {LAYER_KINDS}")
        if tuple(labels.data.shape) != volume.shape:
            raise ValueError(
                f"mask {labels.name or name!r} has shape {labels.data.shape}, "
                f"the image has {volume.shape}"
            )
        old = self.layer(name)
        if old is not None:
            old.labels = labels
            old.kind = kind
            old.version += 1
            self.layer_data_changed.emit(name)
            return old
        layer = LabelLayer(name, kind, labels, visible=visible)
        if opacity is not None:
            layer.opacity = float(np.clip(opacity, 0.0, 1.0))
        first_comparison = kind != "reference" and all(la.kind == "reference" for la in self.layers)
        self.layers.append(layer)
        if first_comparison:
            # Two filled masks blend into one colour: once there is something to compare,
            # the reference is drawn as an outline over the filled prediction/correction.
            for ref in self.layers_of_kind("reference"):
                ref.style = "outline"
        self.layers_changed.emit()
        return layer

    def remove_layer(self, name: str) -> None:
        layer = self.layer(name)
        if layer is not None:
            self.layers.remove(layer)
            self.layers_changed.emit()

    def layer(self, name: str) -> LabelLayer | None:
        return next((layer for layer in self.layers if layer.name == name), None)

    def layers_of_kind(self, kind: LayerKind) -> list[LabelLayer]:
        return [layer for layer in self.layers if layer.kind == kind]

    def set_layer_visible(self, name: str, visible: bool) -> None:
        self._update_layer(name, visible=bool(visible))

    def set_layer_opacity(self, name: str, opacity: float) -> None:
        self._update_layer(name, opacity=float(np.clip(opacity, 0.0, 1.0)))

    def set_layer_style(self, name: str, style: Style) -> None:
        if style not in ("fill", "outline"):
            raise ValueError(f"unknown style {style!r}; expected 'fill' or 'outline'")
        self._update_layer(name, style=style)

    def toggle_kind_visible(self, kind: LayerKind) -> bool:
        """Show all layers of ``kind`` if any is hidden, else hide them; returns new state."""
        layers = self.layers_of_kind(kind)
        target = not all(layer.visible for layer in layers)
        for layer in layers:
            self.set_layer_visible(layer.name, target)
        return target

    def toggle_outline(self) -> Style:
        """Switch every layer between fill and outline (to outline if any is filled)."""
        target: Style = "outline" if any(la.style == "fill" for la in self.layers) else "fill"
        for layer in self.layers:
            self.set_layer_style(layer.name, target)
        return target

    def notify_labels_changed(self, name: str) -> None:
        """Editors call this after changing a layer's voxels in place."""
        layer = self.layer(name)
        if layer is not None:
            layer.version += 1
            self.layer_data_changed.emit(name)

    def _update_layer(self, name: str, **changes: Any) -> None:
        layer = self.layer(name)
        if layer is None:
            raise KeyError(f"no layer called {name!r}")
        if all(getattr(layer, key) == value for key, value in changes.items()):
            return
        for key, value in changes.items():
            setattr(layer, key, value)
        self.layer_changed.emit(name)

    # cursor ---------------------------------------------------------------------------
    def set_cursor(self, zyx: tuple[float, float, float] | tuple[int, int, int]) -> None:
        """Move the shared cursor (rounded and clamped to the volume)."""
        volume = self._require_volume()
        clamped = tuple(
            int(np.clip(round(float(v)), 0, n - 1)) for v, n in zip(zyx, volume.shape, strict=True)
        )
        if clamped != self.cursor:
            self.cursor = clamped  # type: ignore[assignment]
            self.cursor_changed.emit(self.cursor)

    def step_cursor(self, axis: int, delta: int) -> None:
        """Move the cursor ``delta`` voxels along array axis ``axis`` (0 z, 1 y, 2 x)."""
        pos = list(self.cursor)
        pos[axis] += int(delta)
        self.set_cursor((pos[0], pos[1], pos[2]))

    def select_lesion(self, lesion_id: int, centroid_zyx: tuple[float, float, float]) -> None:
        """Select a lesion: the cursor jumps to its centroid and views centre on it."""
        self.selected_lesion = int(lesion_id)
        self.set_cursor(centroid_zyx)
        self.lesion_selected.emit(self.selected_lesion, self.cursor)

    # window and layout ----------------------------------------------------------------
    def set_window(self, level: float, width: float, name: str = "custom") -> None:
        """Set the display window in HU; width is kept at least 1 HU."""
        wl = WindowLevel(name, float(level), max(1.0, float(width)))
        if (wl.level, wl.width, wl.name) != (
            self.window.level,
            self.window.width,
            self.window.name,
        ):
            self.window = wl
            self.window_changed.emit(wl)

    def apply_preset(self, name: str) -> None:
        preset = PRESETS.get(name)
        if preset is None:
            raise KeyError(f"unknown window preset {name!r}; have {sorted(PRESETS)}")
        self.set_window(preset.level, preset.width, preset.name)

    def set_layout(self, layout: Layout, plane: Plane | None = None) -> None:
        if layout not in ("1", "3"):
            raise ValueError(f"layout must be '1' or '3', got {layout!r}")
        if plane is not None and plane not in PLANES:
            raise ValueError(f"unknown plane {plane!r}")
        self.layout = layout
        self.main_plane = plane or self.main_plane
        self.layout_changed.emit(self.layout, self.main_plane)

    # results --------------------------------------------------------------------------
    def store_result(self, key: str, value: Any, generation: int) -> bool:
        """Store a worker's result if it belongs to the current case; else drop it."""
        if not self.is_current(generation):
            log.info(
                "dropped stale %s result (generation %d != %d)", key, generation, self._generation
            )
            return False
        self.results[key] = value
        self.results_changed.emit(key)
        return True

    # readout --------------------------------------------------------------------------
    def readout(self, zyx: tuple[int, int, int] | None = None) -> Readout | None:
        """Voxel, world position, HU and the label of each layer at ``zyx`` (or the cursor)."""
        if self.volume is None:
            return None
        z, y, x = self.cursor if zyx is None else zyx
        shape = self.volume.shape
        if not (0 <= z < shape[0] and 0 <= y < shape[1] and 0 <= x < shape[2]):
            return None
        world = self.volume.geometry.index_to_world(np.array([z, y, x], dtype=np.float64))
        labels = {
            layer.name: LABEL_NAMES.get(
                int(layer.labels.data[z, y, x]), str(layer.labels.data[z, y, x])
            )
            for layer in self.layers
        }
        return Readout(
            (int(z), int(y), int(x)),
            (float(world[0]), float(world[1]), float(world[2])) if self.world_known else None,
            float(self.volume.data[z, y, x]),
            labels,
            self.value_unit,
        )
