"""Running ``fn(progress=, cancel=)`` off the GUI thread, with a progress bar and Cancel.

The heavy functions of LivGUI are plain functions taking ``progress`` and ``cancel``
keywords (:mod:`livgui.core.progress`).  :class:`Worker` runs one in a ``QThread`` and
reports back through queued signals, so its slots run on the GUI thread; it never touches
the session itself.  :class:`TaskBar` shows the running task in the status bar.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QThread, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from livgui.core.progress import Cancelled, CancelToken

__all__ = ["TaskBar", "Worker"]

log = logging.getLogger(__name__)

_MIN_INTERVAL_S = 0.05  # at most ~20 progress signals per second reach the GUI


class Worker(QThread):
    """Run ``fn(progress=..., cancel=...)`` in a thread.

    Exactly one of ``succeeded(result)``, ``failed(exception)`` or ``cancelled()`` is
    emitted, then ``ended()``.  ``generation`` is an opaque tag the caller compares with
    the session before applying a result.
    """

    progressed = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    ended = Signal()

    def __init__(
        self, fn: Callable[..., Any], description: str = "working", generation: int = 0
    ) -> None:
        super().__init__()
        self.fn = fn
        self.description = description
        self.generation = generation
        self.token = CancelToken()
        self._gate = threading.Event()
        self._last_emit = 0.0
        self._last_fraction = -1.0

    def start(self, *args: Any) -> None:
        """Start the thread; the function itself begins on the next event-loop turn.

        Callers connect ``succeeded``/``failed``/``ended`` right after ``start()`` returns;
        a function that finished before those connections existed would emit into the
        void (signals are not queued for receivers that connect later).  The gate opens
        from the GUI thread's event loop, after the caller's synchronous code has run.
        """
        QTimer.singleShot(0, self._gate.set)
        super().start(*args)

    def cancel(self) -> None:
        """Ask the function to stop at its next cancel check."""
        self.token.cancel()
        self._gate.set()  # a worker cancelled before its first turn ends at once

    @property
    def is_cancelled(self) -> bool:
        return self.token.cancelled

    def _progress(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        fraction = float(min(max(fraction, 0.0), 1.0))
        if (
            fraction >= 1.0
            or now - self._last_emit >= _MIN_INTERVAL_S
            or fraction - self._last_fraction >= 0.1
        ):
            self._last_emit, self._last_fraction = now, fraction
            self.progressed.emit(fraction, message)

    def run(self) -> None:
        self._gate.wait()
        try:
            if self.token.cancelled:
                raise Cancelled("cancelled before it started")
            result = self.fn(progress=self._progress, cancel=self.token)
        except Cancelled:
            self.cancelled.emit()
        except Exception as exc:
            log.warning("%s failed: %s", self.description, exc, exc_info=True)
            self.failed.emit(exc)
        else:
            if self.token.cancelled:
                self.cancelled.emit()
            else:
                self.succeeded.emit(result)
        self.ended.emit()


class TaskBar(QWidget):
    """Status-bar widget: description, progress bar and a Cancel button for one worker."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("cancel_task")
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.cancel_button.clicked.connect(self.cancel)
        self.worker: Worker | None = None
        self.hide()

    def track(self, worker: Worker) -> None:
        """Show ``worker``'s progress until it ends (replacing any previous one)."""
        self.worker = worker
        self.label.setText(worker.description)
        self.bar.setValue(0)
        self.cancel_button.setEnabled(True)
        worker.progressed.connect(self._on_progress)
        worker.ended.connect(lambda w=worker: self._on_ended(w))
        self.show()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.cancel_button.setEnabled(False)
            self.label.setText(f"{self.worker.description}: cancelling…")

    def _on_progress(self, fraction: float, message: str) -> None:
        self.bar.setValue(round(fraction * 1000))
        if message and self.worker is not None:
            self.label.setText(f"{self.worker.description}: {message}")

    def _on_ended(self, worker: Worker) -> None:
        if worker is self.worker:
            self.worker = None
            self.hide()
