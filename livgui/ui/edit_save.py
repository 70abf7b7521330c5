"""Saving a correction and leaving a case (part of :class:`~livgui.ui.edit_session.EditSession`).

Save (Ctrl+S) copies the mask once on the GUI thread and hands a :class:`SaveJob` to a
worker: :func:`run_save` writes the final mask atomically in the image geometry (verified
by re-reading, :func:`livgui.imageio.save_mask`), the undo history next to it
(``<name>.history.lgh``, so undo works after reload) and, the first time, the model's
original.  For a library case the files go to ``<library>/cases/<id>/`` (``final.nii.gz``,
``original-<UTC>.nii.gz``) and are recorded with :meth:`Library.record_mask`; the case moves to
``corrected`` after the first saved edit.  A failed save ("could not save: disk full")
leaves the edits and the history in memory untouched.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from livgui.core.atomicio import DiskFullError
from livgui.core.editing import History, Step, correction_effort
from livgui.core.volume import LabelMap, Volume

__all__ = ["SaveJob", "SaveMixin", "history_path", "run_save", "save_error_text"]

log = logging.getLogger(__name__)


def history_path(mask_path: Path) -> Path:
    """Where the undo history of a saved mask lives: ``final.nii.gz`` -> ``final.history.lgh``."""
    name = mask_path.name
    for ext in (".nii.gz", ".nii"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return mask_path.with_name(f"{name}.history.lgh")


@dataclass(frozen=True)
class SaveJob:
    """Immutable inputs of a save (built on the GUI thread, run in a worker)."""

    labels: np.ndarray
    history: History
    volume: Volume
    target: Path
    original: np.ndarray | None
    original_path: Path | None
    effort_base: np.ndarray | None
    strokes: tuple[tuple[float, float], ...]


def effort_of(
    base: np.ndarray | None, labels: np.ndarray, volume: Volume, strokes: Any
) -> dict[str, Any]:
    """Correction effort of ``labels`` against the model's ``base`` (zeros when none)."""
    base = base if base is not None else np.zeros_like(labels)
    return correction_effort(base, labels, volume.geometry.voxel_volume_ml, strokes)


def run_save(job: SaveJob, *, progress: Any = None, cancel: Any = None) -> dict[str, Any]:
    """Write the final mask (verified), its history and the original; compute the effort."""
    from livgui import imageio

    geom = job.volume.geometry
    if progress is not None:
        progress(0.1, "writing the final mask")
    sha = imageio.save_mask(LabelMap(job.labels, geom, name="final"), job.target, job.volume)
    job.history.save(history_path(job.target))
    out: dict[str, Any] = {"path": str(job.target), "sha256": sha, "original_sha256": None}
    if job.original is not None and job.original_path is not None:
        original = LabelMap(job.original, geom, name="original")
        out["original_sha256"] = imageio.save_mask(original, job.original_path, job.volume)
    out["effort"] = effort_of(job.effort_base, job.labels, job.volume, job.strokes)
    return out


def save_error_text(exc: BaseException) -> str:
    """The user-facing message of a failed save."""
    if isinstance(exc, DiskFullError):
        return "could not save: disk full"
    return f"could not save: {exc}"


def _effort_job(
    base: np.ndarray | None, labels: np.ndarray, volume: Volume, strokes: Any, **_kw: Any
) -> dict[str, Any]:
    return effort_of(base, labels, volume, strokes)


class SaveMixin:
    """Saving, approving, the training flag, effort and the unsaved-edits prompt."""

    window: Any
    session: Any
    history: History | None
    saving: bool
    claimed: list[Any]
    save_path: Path | None
    start_from: str
    prompt: Callable[[str], str]
    _saved_top: Step | None
    _saved_dropped: int
    _original_version: int | None
    _after_save: Callable[[], None] | None
    _effort_timer: Any

    # pieces the EditSession provides
    @property
    def library(self) -> Any:
        raise NotImplementedError

    @property
    def layer(self) -> Any:
        raise NotImplementedError

    @property
    def dirty(self) -> bool:
        raise NotImplementedError

    @property
    def budget_bytes(self) -> int:
        raise NotImplementedError

    def library_case(self) -> str | None: ...
    def audit(self, action: str, **details: Any) -> None: ...
    def refresh_case_list(self) -> None: ...
    def prediction_model_id(self) -> str | None: ...
    def discard_edits(self) -> None: ...
    def _top(self) -> Step | None: ...
    def _bind(self, labels: LabelMap, history: History | None) -> None: ...
    def _end_journal(self, discard: bool, wait: bool = False) -> None: ...
    def _start_journal(self) -> None: ...

    # saving ---------------------------------------------------------------------------
    def _effort_base(self) -> np.ndarray | None:
        pred = self.session.layer("prediction")
        if pred is not None:
            return pred.labels.data  # type: ignore[no-any-return]
        ref = self.session.layer("reference")
        if self.start_from == "reference" and ref is not None:
            return ref.labels.data  # type: ignore[no-any-return]
        return None

    def _strokes(self) -> tuple[tuple[float, float], ...]:
        h = self.history
        if h is None:
            return ()
        return tuple((s.started, s.duration_s) for s in h.steps()[: h.position])

    def _targets(self) -> tuple[Path, Path | None] | None:
        case = self.library_case()
        if case is not None:
            folder = Path(self.library.case_dir(case))
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            return folder / "final.nii.gz", folder / f"original-{stamp}.nii.gz"
        if self.save_path is None:
            name = f"{self.session.case_id or 'mask'}_corrected.nii.gz"
            path, _f = QFileDialog.getSaveFileName(
                self.window, "Save the corrected mask", name, "NIfTI masks (*.nii.gz *.nii)"
            )
            if not path:
                return None
            self.save_path = Path(path)
        return self.save_path, None

    def save(self, wait: bool = False) -> bool:
        """Save the correction (Ctrl+S); ``wait`` saves on this thread (closing)."""
        h, vol = self.history, self.session.volume
        if self.saving:
            self.window.notify("Already saving…", 3000)
            return False
        if h is None or self.layer is None or vol is None:
            self.window.notify("Nothing to save: no correction yet", 4000)
            return False
        h.end_step()
        targets = self._targets()
        if targets is None:
            return False
        target, original_path = targets
        labels = h.labels.copy()
        pred = self.session.layer("prediction")
        fresh = original_path is not None and pred is not None
        fresh = fresh and pred.version != self._original_version
        job = SaveJob(
            labels, h.detached(labels), vol, target,
            pred.labels.data if fresh else None, original_path if fresh else None,
            self._effort_base(), self._strokes(),
        )  # fmt: skip
        ctx = (self._top(), h.dropped, self.dirty, pred.version if fresh else None, job)
        if wait:
            try:
                result = run_save(job)
            except Exception as exc:
                self._save_failed(exc)
                return False
            self._save_done(ctx, result)
            return True
        self.saving = True
        worker = self.window.run_task(
            partial(run_save, job), "Saving the corrected mask", partial(self._save_done, ctx)
        )
        worker.failed.connect(self._save_failed)
        worker.ended.connect(partial(setattr, self, "saving", False))
        return True

    def _save_done(self, ctx: tuple[Any, ...], result: dict[str, Any]) -> None:
        top, dropped, was_dirty, pred_version, job = ctx
        self.saving = False
        self._saved_top, self._saved_dropped = top, dropped
        if pred_version is not None:
            self._original_version = pred_version
        if self.library_case() is not None:
            self._record_save(job, result, was_dirty)
        for info in self.claimed:
            self._discard_claimed(info)
        self.claimed = []
        if not self.dirty:  # the journal's steps are saved: start a fresh one
            self._end_journal(discard=True)
            self._start_journal()
        effort = {**result["effort"], "saved": True}
        self.session.store_result("effort", effort, self.session.generation)
        self.window.notify(f"Saved {result['path']}", 5000)
        self.saved.emit(result["path"])  # type: ignore[attr-defined]
        self.changed.emit()  # type: ignore[attr-defined]
        after, self._after_save = self._after_save, None
        if after is not None:
            after()

    def _record_save(self, job: SaveJob, result: dict[str, Any], was_dirty: bool) -> None:
        case = self.library_case()
        lib = self.library
        model = self.prediction_model_id()
        lib.record_mask(case, "final", result["path"], sha256=result["sha256"])
        if result["original_sha256"] is not None:
            lib.record_mask(
                case, "original", job.original_path, model_id=model,
                sha256=result["original_sha256"],
            )  # fmt: skip
        record = lib.get(case)
        if record.reference_path and not lib.masks(case, "reference"):
            try:
                lib.record_mask(case, "reference", record.reference_path)
            except (OSError, ValueError) as exc:
                log.warning("reference of %s not recorded: %s", case, exc)
        self.audit("save", path=result["path"], sha256=result["sha256"], model_id=model,
                   effort=result["effort"])  # fmt: skip
        if was_dirty and record.status != "corrected":
            lib.set_status(case, "corrected", reason="saved edits")
            self.status_changed.emit("corrected")  # type: ignore[attr-defined]
        self.refresh_case_list()

    def _save_failed(self, exc: BaseException) -> None:
        self.saving = False
        self._after_save = None
        message = save_error_text(exc)
        log.warning("%s", message)
        self.window.notify(message, 15000)
        if self.window.isVisible():
            box = QMessageBox(QMessageBox.Icon.Warning, "Not saved", message, parent=self.window)
            box.setInformativeText("Your edits and their undo history are still here.")
            box.setModal(False)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.show()
        self.save_failed.emit(message)  # type: ignore[attr-defined]

    # review ---------------------------------------------------------------------------
    def approve(self) -> None:
        """Approve the case (saving unsaved edits first)."""
        if self.library_case() is None:
            self.window.notify("Approving needs a case from the library", 5000)
            return
        if self.dirty:
            self._after_save = self._approve_now
            self.save()
            return
        self._approve_now()

    def _approve_now(self) -> None:
        case = self.library_case()
        try:
            self.library.set_status(case, "approved")
        except ValueError as exc:
            self.window.notify(str(exc), 8000)
            return
        self.refresh_case_list()
        self.window.notify(f"{case} approved", 4000)
        self.status_changed.emit("approved")  # type: ignore[attr-defined]
        self.changed.emit()  # type: ignore[attr-defined]

    def set_training(self, include: bool) -> None:
        case = self.library_case()
        if case is None:
            return
        try:
            self.library.set_training(case, include)
        except ValueError as exc:
            self.window.notify(str(exc), 8000)
        self.refresh_case_list()
        self.changed.emit()  # type: ignore[attr-defined]

    def update_effort(self) -> None:
        """Recompute the correction effort in a worker (after edits, debounced).

        The worker reads the live mask (no GUI-thread copy); a result computed while the
        correction changed is dropped and the computation scheduled again.
        """
        h, vol = self.history, self.session.volume
        if h is None or vol is None:
            return
        fn = partial(_effort_job, self._effort_base(), h.labels, vol, self._strokes())
        gen, stamp = self.session.generation, self._corrections_stamp()
        self.window.run_task(
            fn, "Correction effort", lambda r: self._store_effort(r, gen, stamp), show=False
        )

    def _corrections_stamp(self) -> tuple[tuple[str, int, int], ...]:
        return tuple(
            (la.name, id(la.labels), la.version)
            for la in self.session.layers
            if la.kind == "correction"
        )

    def _store_effort(self, result: Any, gen: int, stamp: tuple[tuple[str, int, int], ...]) -> None:
        if stamp == self._corrections_stamp():
            self.session.store_result("effort", result, gen)
        else:
            self._effort_timer.start()

    # opening and leaving a case -------------------------------------------------------
    def _on_case_loaded(self, case_id: str) -> None:
        case = self.library_case()
        if case is None:
            self.case_ready.emit(case_id)  # type: ignore[attr-defined]
            return
        vol = self.session.volume
        self.audit("open", source=vol.source.path if vol.source is not None else "")
        finals = self.library.masks(case, "final")
        if not finals:
            self.case_ready.emit(case_id)  # type: ignore[attr-defined]
            return
        path = Path(self.library.mask_path(finals[-1]))
        fn = partial(_load_final, path, vol, self.budget_bytes)
        worker = self.window.run_task(
            fn, f"Opening the saved correction of {case_id}", partial(self._final_loaded, case_id)
        )
        worker.failed.connect(lambda exc: self._final_failed(case_id, exc))

    def _final_loaded(self, case_id: str, result: tuple[LabelMap, History | None, str]) -> None:
        labels, history, note = result
        if self.history is None:
            self._bind(labels, history)
        if note:
            self.window.notify(note, 8000)
        self.case_ready.emit(case_id)  # type: ignore[attr-defined]

    def _final_failed(self, case_id: str, exc: BaseException) -> None:
        self.window.notify(f"Could not open the saved correction: {exc}", 10000)
        self.case_ready.emit(case_id)  # type: ignore[attr-defined]

    def may_leave(self) -> bool:
        """Ask Save / Discard / Cancel when the case has unsaved edits; True to go on."""
        if self.history is not None:
            self.history.end_step()
        if not self.dirty:
            return True
        choice = self.prompt(self.session.case_id)
        if choice == "discard":
            self.discard_edits()
            return True
        if choice == "save":
            return self.save(wait=True)
        return False

    def _ask_unsaved(self, case_id: str) -> str:
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Unsaved edits",
            f"{case_id} has unsaved edits.",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            self.window,
        )
        box.setObjectName("unsaved_prompt")
        box.setInformativeText("Save them before leaving the case?")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        if answer == QMessageBox.StandardButton.Save:
            return "save"
        if answer == QMessageBox.StandardButton.Discard:
            return "discard"
        return "cancel"

    def _discard_claimed(self, info: Any) -> None:
        from livgui.library.recovery import discard

        with contextlib.suppress(OSError):
            discard(info)
        log.info("recovered journal %s removed (its edits are saved or discarded)", info.path)


def _load_final(
    path: Path, volume: Volume, budget: int, **_kw: Any
) -> tuple[LabelMap, History | None, str]:
    """Read a saved final mask and, when it matches, its undo history (worker)."""
    from livgui import imageio

    mask = imageio.load_mask(path, like=volume)
    data = np.array(mask.data, dtype=np.uint8, copy=True)
    labels = LabelMap(data, volume.geometry, name="correction")
    hist_file = history_path(path)
    if not hist_file.exists():
        return labels, None, "Saved correction opened (no undo history file)"
    try:
        return labels, History.load(hist_file, data, budget), ""
    except ValueError as exc:
        return labels, None, f"Undo history not restored: {exc}"
