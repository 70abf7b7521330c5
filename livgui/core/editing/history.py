"""Undo/redo history of label edits, bounded in bytes (ARCHITECTURE habit 3).

A *step* is what the user sees in the history list and undoes with Ctrl+Z: every dab of one
mouse drag is collected between :meth:`History.begin_step` and :meth:`History.end_step`
and merged into one :class:`~livgui.core.editing.delta.Edit`.  The history is bound to
one ``labels[z, y, x]`` uint8 array; tools have already applied their edits to it, undo and
redo write the deltas back.

Memory is bounded by bytes (default 512 MB): when a commit pushes the total over the
budget the oldest steps are dropped and a notice is sent (the UI shows it).  Listeners see
``commit``/``undo``/``redo``/``drop`` events; the autosave journal subscribes to them.

:meth:`History.save` writes the history to a file (pickle-free: a JSON header and the
compressed deltas, written atomically) so undo still works after save and reload; the
file records the SHA-256 of the mask it belongs to and refuses any other mask.
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from livgui.core.atomicio import atomic_write_bytes
from livgui.core.editing.delta import Edit, decode_edit, encode_edit, merge_edits
from livgui.core.volume import RESEARCH_NOTICE

__all__ = [
    "DEFAULT_BUDGET_BYTES",
    "History",
    "HistoryEventKind",
    "Step",
    "StepInfo",
    "mask_sha256",
]

log = logging.getLogger(__name__)

DEFAULT_BUDGET_BYTES = 512 * 1024 * 1024
_STEP_OVERHEAD = 256  # bookkeeping bytes counted per step besides its arrays
_FILE_MAGIC = b"LGH1"
_U32 = struct.Struct("<I")

HistoryEventKind = Literal["commit", "undo", "redo", "drop"]
Listener = Callable[[HistoryEventKind, "Step"], None]


def mask_sha256(labels: NDArray[np.uint8]) -> str:
    """Hex SHA-256 of a label array's bytes in C order (``labels[z, y, x]``)."""
    return hashlib.sha256(np.ascontiguousarray(labels).data).hexdigest()


@dataclass(frozen=True, eq=False)
class Step:
    """One undo step: a name for the history list and the merged delta.

    ``started`` is the UTC epoch time (s) of the first dab, ``duration_s`` the time until
    the step was committed (the stroke's active time, used for correction effort).
    """

    name: str
    edit: Edit
    started: float
    duration_s: float

    @property
    def nbytes(self) -> int:
        return self.edit.nbytes + _STEP_OVERHEAD


@dataclass(frozen=True)
class StepInfo:
    """A row of the history panel: ``done`` is False for redoable (undone) steps."""

    name: str
    nbytes: int
    changed: int
    done: bool


class History:
    """Undo/redo of edits to one label array, bounded by ``budget_bytes``.

    Parameters
    ----------
    labels
        The editable ``labels[z, y, x]`` uint8 array (modified in place by undo/redo).
    budget_bytes
        Most bytes the stored deltas may use (default 512 MB).
    on_notice
        Called with a user-facing message when old steps are dropped.
    clock
        Time source in seconds (replace in tests).
    """

    def __init__(
        self,
        labels: NDArray[np.uint8],
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        on_notice: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if labels.dtype != np.uint8 or labels.ndim != 3:
            raise TypeError(f"labels must be a 3-D uint8 array, got {labels.dtype} {labels.shape}")
        self.labels = labels
        self.budget_bytes = int(budget_bytes)
        self._on_notice = on_notice
        self._clock = clock
        self._done: list[Step] = []
        self._undone: list[Step] = []  # next redo is last
        self._open: tuple[str, list[Edit], float] | None = None
        self._listeners: list[Listener] = []
        self.dropped = 0

    # -- listeners -------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(kind, step)`` after every commit, undo, redo and drop."""
        self._listeners.append(listener)

    def _emit(self, kind: HistoryEventKind, step: Step) -> None:
        for fn in list(self._listeners):
            fn(kind, step)

    # -- building steps ----------------------------------------------------------------
    @property
    def in_step(self) -> bool:
        return self._open is not None

    def begin_step(self, name: str) -> None:
        """Start collecting edits (e.g. on mouse press); an open step is committed first."""
        if self._open is not None:
            self.end_step()
        self._open = (name, [], self._clock())

    def add(self, edit: Edit) -> None:
        """Record an edit the caller has already applied to :attr:`labels`."""
        if self._open is None:
            raise RuntimeError("History.add() called outside begin_step()/end_step()")
        if not edit.is_empty:
            self._open[1].append(edit)

    def end_step(self, name: str | None = None) -> Step | None:
        """Merge the open step's edits into one undo step (``None`` when nothing changed)."""
        if self._open is None:
            return None
        opened_name, edits, started = self._open
        self._open = None
        merged = merge_edits(edits, self.labels)
        if merged.is_empty:
            return None
        step = Step(name or opened_name, merged, started, max(0.0, self._clock() - started))
        self._undone.clear()
        self._done.append(step)
        self._emit("commit", step)
        self._enforce_budget()
        return step

    def cancel_step(self) -> None:
        """Revert and forget the open step (e.g. Escape during a drag)."""
        if self._open is None:
            return
        edits = self._open[1]
        self._open = None
        for e in reversed(edits):
            e.revert(self.labels)

    def commit(self, name: str, edit: Edit) -> Step | None:
        """Record a single already-applied edit as its own step."""
        self.begin_step(name)
        self.add(edit)
        return self.end_step()

    def _enforce_budget(self) -> None:
        while self._done and self.nbytes > self.budget_bytes:
            step = self._done.pop(0)
            self.dropped += 1
            mb = self.budget_bytes / 2**20
            msg = f"Oldest undo step '{step.name}' dropped to keep the history within {mb:.0f} MB"
            log.info(msg)
            if self._on_notice is not None:
                self._on_notice(msg)
            self._emit("drop", step)

    # -- undo / redo -------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._done) or self._open is not None

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    def undo(self) -> Step | None:
        """Undo the last step (an open drag is committed first); returns it or ``None``."""
        self.end_step()
        if not self._done:
            return None
        step = self._done.pop()
        step.edit.revert(self.labels)
        self._undone.append(step)
        self._emit("undo", step)
        return step

    def redo(self) -> Step | None:
        """Redo the last undone step; returns it or ``None``."""
        if self._open is not None or not self._undone:
            return None
        step = self._undone.pop()
        step.edit.apply(self.labels)
        self._done.append(step)
        self._emit("redo", step)
        return step

    @property
    def position(self) -> int:
        """Number of steps currently applied (index into :meth:`entries`)."""
        return len(self._done)

    def goto(self, position: int) -> None:
        """Undo or redo until ``position`` steps are applied (history-list click)."""
        if not 0 <= position <= len(self._done) + len(self._undone):
            raise IndexError(f"history position {position} out of range")
        while self.position > position:
            self.undo()
        while self.position < position:
            self.redo()

    # -- inspection --------------------------------------------------------------------
    def steps(self) -> list[Step]:
        """All steps, oldest first: applied ones, then redoable ones."""
        return self._done + self._undone[::-1]

    def entries(self) -> list[StepInfo]:
        """Rows for a history panel, oldest first."""
        n = len(self._done)
        return [
            StepInfo(s.name, s.nbytes, s.edit.changed, i < n) for i, s in enumerate(self.steps())
        ]

    @property
    def nbytes(self) -> int:
        """Bytes held by all stored steps (undo and redo)."""
        return sum(s.nbytes for s in self._done) + sum(s.nbytes for s in self._undone)

    def detached(self, labels: NDArray[np.uint8]) -> History:
        """A copy bound to ``labels`` (e.g. a snapshot of :attr:`labels`) that shares the
        immutable steps, so a worker thread can :meth:`save` it while editing goes on."""
        if labels.shape != self.labels.shape:
            raise ValueError(f"snapshot shape {labels.shape} differs from {self.labels.shape}")
        copy = History(labels, self.budget_bytes)
        copy._done, copy._undone = list(self._done), list(self._undone)
        return copy

    def clear(self) -> None:
        self.end_step()
        self._done.clear()
        self._undone.clear()

    # -- persistence -------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the history atomically to ``path`` (format in the module docstring)."""
        self.end_step()
        steps = self.steps()
        meta: dict[str, Any] = {
            "format": "livgui-history",
            "version": 1,
            "notice": RESEARCH_NOTICE,
            "shape": list(self.labels.shape),
            "labels_sha256": mask_sha256(self.labels),
            "position": self.position,
            "steps": [
                {"name": s.name, "started": s.started, "duration_s": s.duration_s} for s in steps
            ],
        }
        head = json.dumps(meta).encode()
        parts = [_FILE_MAGIC, _U32.pack(len(head)), head]
        for s in steps:
            blob = encode_edit(s.edit, level=6)
            parts += [_U32.pack(len(blob)), blob]
        return atomic_write_bytes(path, b"".join(parts))

    @classmethod
    def load(
        cls,
        path: str | Path,
        labels: NDArray[np.uint8],
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        on_notice: Callable[[str], None] | None = None,
    ) -> History:
        """Read a history saved by :meth:`save` for the mask now in ``labels``.

        Raises ``ValueError`` naming the file when it is not a history file, is damaged, or
        belongs to another mask state (its SHA-256 differs).
        """
        data = Path(path).read_bytes()
        meta, blobs = _split_file(data, str(path))
        if list(meta["shape"]) != list(labels.shape):
            raise ValueError(
                f"{path}: history is for shape {meta['shape']}, mask is {labels.shape}"
            )
        if meta["labels_sha256"] != mask_sha256(labels):
            raise ValueError(f"{path}: history belongs to another version of this mask")
        hist = cls(labels, budget_bytes, on_notice)
        steps = []
        for info, blob in zip(meta["steps"], blobs, strict=True):
            edit = _decode_checked(blob, labels.shape, str(path))
            steps.append(
                Step(str(info["name"]), edit, float(info["started"]), float(info["duration_s"]))
            )
        pos = int(meta["position"])
        hist._done = steps[:pos]
        hist._undone = steps[pos:][::-1]
        hist._enforce_budget()
        return hist


def _split_file(data: bytes, name: str) -> tuple[dict[str, Any], list[bytes]]:
    if data[:4] != _FILE_MAGIC or len(data) < 8:
        raise ValueError(f"{name}: not a LivGUI history file")
    (n,) = _U32.unpack_from(data, 4)
    try:
        meta = json.loads(data[8 : 8 + n])
    except ValueError as exc:
        raise ValueError(f"{name}: history header is damaged ({exc})") from exc
    pos, blobs = 8 + n, []
    while pos < len(data):
        if pos + 4 > len(data):
            raise ValueError(f"{name}: history file is truncated")
        (m,) = _U32.unpack_from(data, pos)
        if pos + 4 + m > len(data):
            raise ValueError(f"{name}: history file is truncated")
        blobs.append(data[pos + 4 : pos + 4 + m])
        pos += 4 + m
    if len(blobs) != len(meta.get("steps", ())) or not 0 <= int(meta["position"]) <= len(blobs):
        raise ValueError(f"{name}: history file is inconsistent (step count)")
    return meta, blobs


def _decode_checked(blob: bytes, shape: tuple[int, ...], name: str) -> Edit:
    try:
        edit = decode_edit(blob)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc
    if any(edit.box[i + 3] > shape[i] for i in range(3)):
        raise ValueError(f"{name}: a step's box {edit.box} lies outside the mask {shape}")
    return edit
