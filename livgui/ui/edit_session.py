"""Per-case correction state: the editable "correction" layer, its undo history, autosave,
saving (final / original / reference in the library), audit lines, review status, effort.

The editable layer is a session layer of kind ``correction`` created on the first edit
from the prediction, the reference or an empty mask (:attr:`EditSession.start_from`).
Every change goes through a :class:`~livgui.core.editing.History` step; the autosave
:class:`~livgui.library.recovery.Journal` subscribes to it, so the GUI thread only hands
over the immutable deltas.  Saving copies the mask once and writes it in a worker
(atomic, in the image geometry, verified by re-reading, :func:`livgui.imageio.save_mask`).

Audit actions written here (library cases only): ``open``, ``edit`` (tool, label, changed
voxels, step), ``undo``, ``redo``, ``accept prediction`` (model id, whole or lesion, kept
manual voxels), ``recover``, ``save`` (path, SHA-256, correction effort, model id); the
library itself adds ``save mask``, ``status`` and ``include in training`` lines.  The
correction effort (Dice and changed voxels between the model's original and the final
mask, active edit time) is kept in the ``save`` line's details.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from livgui.core.editing import (
    DEFAULT_BUDGET_BYTES,
    Edit,
    History,
    Step,
    accept_prediction,
    touched_mask,
)
from livgui.core.volume import LABEL_NAMES, LabelMap
from livgui.library.recovery import Journal, JournalOptions
from livgui.ui.edit_save import SaveMixin

__all__ = ["CORRECTION", "EditSession", "recovery_root"]

log = logging.getLogger(__name__)

CORRECTION = "correction"
START_CHOICES = ("prediction", "reference", "empty")
DEFAULT_AUTOSAVE_S = 30.0
_NOT_MANUAL = ("Accept",)  # step names whose voxels are not manual work


def recovery_root() -> Path:
    """Autosave folder: ``$LIVGUI_RECOVERY_DIR`` or ``<user data>/livgui/recovery``."""
    env = os.environ.get("LIVGUI_RECOVERY_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("livgui", appauthor=False)) / "recovery"


class EditSession(SaveMixin, QObject):
    """Editing state of the open case (GUI thread only).

    Signals: ``changed()`` (history, layer or saved state), ``notice(str)`` (a step was
    dropped from the history ...), ``autosaved(steps, sha256)`` (a durable autosave
    checkpoint, from the journal thread), ``saved(path)``, ``save_failed(message)``,
    ``case_ready(case_id)`` (the saved final mask and history of a library case are in).
    """

    changed = Signal()
    notice = Signal(str)
    autosaved = Signal(int, str)
    autosave_failed = Signal(str)
    saved = Signal(str)
    save_failed = Signal(str)
    case_ready = Signal(str)
    status_changed = Signal(str)

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.history: History | None = None
        self.journal: Journal | None = None
        self.start_from = "prediction"
        self.save_path: Path | None = None  # target of a case outside a library
        self.claimed: list[Any] = []  # recovered journals, deleted once saved
        self.prompt: Callable[[str], str] = self._ask_unsaved
        self._saved_top: Step | None = None
        self._saved_dropped = 0
        self._original_version: int | None = None
        self._after_save: Callable[[], None] | None = None
        self.saving = False
        self._effort_timer = QTimer(self)
        self._effort_timer.setSingleShot(True)
        self._effort_timer.setInterval(3000)
        self._effort_timer.timeout.connect(self.update_effort)
        self.autosaved.connect(self._on_autosaved)
        self.session.case_changed.connect(self._teardown)
        self.session.layers_changed.connect(self._on_layers)
        window.case_loaded.connect(self._on_case_loaded)

    # settings -------------------------------------------------------------------------
    def _setting(self, key: str, default: float) -> float:
        try:
            return float(self.window.settings.value(key, default))
        except (TypeError, ValueError):
            return default

    @property
    def autosave_s(self) -> float:
        return max(1.0, self._setting("edit/autosave_s", DEFAULT_AUTOSAVE_S))

    @property
    def budget_bytes(self) -> int:
        return int(self._setting("edit/history_mb", DEFAULT_BUDGET_BYTES / 2**20) * 2**20)

    def set_autosave_s(self, seconds: float) -> None:
        self.window.settings.setValue("edit/autosave_s", float(seconds))
        if self.journal is not None:
            opts = self.journal.options
            self.journal.options = JournalOptions(
                float(seconds), opts.snapshot_every, opts.snapshot_bytes, opts.level
            )

    def set_budget_mb(self, mb: float) -> None:
        self.window.settings.setValue("edit/history_mb", float(mb))
        if self.history is not None:
            self.history.budget_bytes = self.budget_bytes
        self.changed.emit()

    # library --------------------------------------------------------------------------
    @property
    def library(self) -> Any:
        panel = getattr(self.window, "case_list", None)
        return getattr(panel, "library", None)

    def library_case(self) -> str | None:
        """The open case's id when it belongs to the open library (same source)."""
        lib, vol = self.library, self.session.volume
        if lib is None or vol is None or self.session.case_id not in lib.case_ids():
            return None
        record = lib.get(self.session.case_id)
        if vol.source is not None and vol.source.path:
            if Path(vol.source.path).resolve() != Path(record.source_path).resolve():
                return None
        return str(record.case_id)

    def audit(self, action: str, **details: Any) -> None:
        case = self.library_case()
        if case is not None:
            self.library.audit(case, action, **details)

    def refresh_case_list(self) -> None:
        panel = getattr(self.window, "case_list", None)
        if panel is not None and panel.library is not None:
            panel.refresh()

    # the correction layer -------------------------------------------------------------
    @property
    def layer(self) -> Any:
        return self.session.layer(CORRECTION)

    @property
    def case_key(self) -> str:
        vol = self.session.volume
        source = vol.source.path if vol is not None and vol.source is not None else ""
        lib = self.library
        root = str(lib.root) if lib is not None and self.library_case() else ""
        return f"{root}|{source}|{self.session.case_id}"

    def prediction_model_id(self) -> str | None:
        """Model id of the prediction: ``session.results['prediction_model_id']`` when the
        segmentation panel stored it, else the prediction mask's name."""
        value = self.session.results.get("prediction_model_id")
        if isinstance(value, str) and value:
            return value
        pred = self.session.layer("prediction")
        return (pred.labels.name or None) if pred is not None else None

    def _baseline(self) -> np.ndarray:
        """A new correction's voxels: a copy of the ``start_from`` layer, else empty."""
        vol = self.session.volume
        assert vol is not None
        layer = self.session.layer(self.start_from) if self.start_from != "empty" else None
        if layer is not None:
            return np.array(layer.labels.data, dtype=np.uint8, copy=True)
        return np.zeros(vol.shape, dtype=np.uint8)

    def ensure_layer(self) -> History:
        """The history of the correction layer, creating the layer on the first edit."""
        if self.history is not None and self.layer is not None:
            return self.history
        vol = self.session.volume
        if vol is None:
            raise RuntimeError("no case is open")
        labels = LabelMap(self._baseline(), vol.geometry, name=CORRECTION)
        self._bind(labels, None)
        return self.history  # type: ignore[return-value]

    def _bind(self, labels: LabelMap, history: History | None) -> None:
        self.session.add_layer(CORRECTION, "correction", labels)
        self.history = history or History(labels.data, self.budget_bytes)
        self.history._on_notice = self._on_notice
        self.history.subscribe(self._on_history)
        self._saved_top = self._top()
        self._saved_dropped = self.history.dropped
        self._start_journal()
        self.changed.emit()

    def _top(self) -> Step | None:
        h = self.history
        return h.steps()[h.position - 1] if h is not None and h.position else None

    @property
    def dirty(self) -> bool:
        """True while the correction layer holds edits that are not saved."""
        h = self.history
        if h is None:
            return False
        if self._saved_top is None and h.position == 0:
            return h.dropped != self._saved_dropped
        return self._top() is not self._saved_top

    def _on_notice(self, message: str) -> None:
        self.window.notify(message, 10000)
        self.notice.emit(message)

    def _on_history(self, kind: str, step: Step) -> None:
        if kind in ("undo", "redo"):
            self.session.notify_labels_changed(CORRECTION)
            self.audit(kind, step=step.name, changed_voxels=step.edit.changed)
        if kind != "drop":
            self._effort_timer.start()
        self.changed.emit()

    def _on_layers(self) -> None:
        layer = self.layer
        if self.history is not None and (
            layer is None or layer.labels.data is not self.history.labels
        ):
            self._teardown()

    # autosave -------------------------------------------------------------------------
    def _start_journal(self) -> None:
        if self.history is None:
            return
        from livgui.ui.recovery_dialog import write_case_note

        root = recovery_root()
        self.journal = Journal(
            root,
            self.case_key,
            self.history.labels,
            options=JournalOptions(interval_s=self.autosave_s),
            on_checkpoint=self.autosaved.emit,
            on_error=self.autosave_failed.emit,
        )
        self.journal.attach(self.history)
        write_case_note(self.journal.folder, self._case_note())

    def _case_note(self) -> dict[str, Any]:
        vol = self.session.volume
        lib = self.library
        return {
            "case_id": self.session.case_id,
            "source": vol.source.path if vol is not None and vol.source is not None else "",
            "library": str(lib.root) if lib is not None and self.library_case() else "",
            "shape": list(vol.shape) if vol is not None else [],
        }

    def _on_autosaved(self, steps: int, _sha: str) -> None:
        if steps:
            self.window.notify(f"Autosaved ({steps} steps)", 2000)

    def _end_journal(self, discard: bool, wait: bool = False) -> None:
        journal, self.journal = self.journal, None
        if journal is None:
            return
        if wait:
            journal.close(discard=discard)
        else:  # the final checkpoint may take a moment: never on the GUI thread
            threading.Thread(target=journal.close, kwargs={"discard": discard}).start()

    def _teardown(self, wait: bool = False) -> None:
        """Forget the case's editing state; an unsaved journal stays for recovery."""
        self._effort_timer.stop()
        if self.history is not None:
            self.history.end_step()
        self._end_journal(discard=not self.dirty, wait=wait)
        self.history = None
        self._saved_top, self._original_version = None, None
        self.claimed = []
        self.changed.emit()

    def shutdown(self) -> None:
        """Window closing: finish the journal (kept when edits are unsaved)."""
        self._teardown(wait=True)

    # edits (called by the controller) -------------------------------------------------
    def begin(self, name: str) -> None:
        self.ensure_layer().begin_step(name)

    def apply(self, edits: list[Edit]) -> None:
        """Record edits already applied to the layer and redraw."""
        h = self.ensure_layer()
        live = [e for e in edits if not e.is_empty]
        for e in live:
            h.add(e)
        if live:
            self.session.notify_labels_changed(CORRECTION)

    def end(self, tool: str, label: int, **details: Any) -> Step | None:
        if self.history is None:
            return None
        step = self.history.end_step()
        if step is not None:
            self.audit("edit", tool=tool, label=LABEL_NAMES.get(label, str(label)),
                       changed_voxels=step.edit.changed, step=step.name, **details)  # fmt: skip
        return step

    def commit(self, name: str, edit: Edit, tool: str, label: int, **details: Any) -> Step | None:
        """One already-applied edit as its own step (clicks, buttons)."""
        self.begin(name)
        self.apply([edit])
        return self.end(tool, label, **details)

    def manual_mask(self) -> np.ndarray | None:
        h = self.history
        if h is None:
            return None
        steps = [s.edit for s in h.steps()[: h.position] if not s.name.startswith(_NOT_MANUAL)]
        return touched_mask(steps, h.labels.shape)

    def accept(self, lesion_at: tuple[int, int, int] | None = None) -> tuple[int, int] | None:
        """Accept the prediction (whole, or the lesion at ``lesion_at``) as one step.

        Manual edits are kept; returns ``(changed, kept_manual)`` or ``None`` without a
        prediction.  The user is told how many manually edited voxels were kept.
        """
        pred = self.session.layer("prediction")
        if pred is None:
            self.window.notify("No prediction to accept: run the segmentation first.", 6000)
            return None
        h = self.ensure_layer()
        h.end_step()
        try:
            res = accept_prediction(h.labels, pred.labels.data, self.manual_mask(), lesion_at)
        except ValueError as exc:
            self.window.notify(str(exc), 6000)
            return None
        model = self.prediction_model_id()
        what = "lesion" if lesion_at is not None else "whole"
        where = f" at (z, y, x) {lesion_at}" if lesion_at is not None else ""
        name = f"Accept prediction ({what}{where}; model {model or 'unknown'})"
        self.begin(name)
        self.apply([res.edit])
        step = h.end_step()
        changed = step.edit.changed if step is not None else 0
        self.audit("accept prediction", model_id=model, part=what, lesion_at=lesion_at,
                   changed_voxels=changed, kept_manual_voxels=res.kept_manual)  # fmt: skip
        self.window.notify(
            f"Accepted the prediction ({what}): {changed} voxels changed, "
            f"{res.kept_manual} manually edited voxels kept",
            8000,
        )
        return changed, res.kept_manual

    def undo(self) -> None:
        if self.history is not None and self.history.undo() is None:
            self.window.notify("Nothing to undo", 2000)

    def redo(self) -> None:
        if self.history is not None and self.history.redo() is None:
            self.window.notify("Nothing to redo", 2000)

    def goto(self, position: int) -> None:
        if self.history is not None:
            self.history.goto(position)

    def discard_edits(self) -> None:
        """Go back to the last saved state (the user chose to throw the edits away)."""
        h = self.history
        if h is None:
            return
        steps = h.steps()
        target = steps.index(self._saved_top) + 1 if self._saved_top in steps else 0
        h.goto(target)
        self._saved_top, self._saved_dropped = self._top(), h.dropped
        for info in self.claimed:
            self._discard_claimed(info)
        self.changed.emit()
