"""Autosave journal and crash recovery (RELIABILITY rows 25-27, load L6).

Each open case journals its committed undo steps to a file in a per-case recovery folder::

    <root>/<sha256(case id)[:16]>/journal-<UTC>-<pid>-<random>-<part>.lgj

The caller (GUI thread) only *enqueues* the immutable deltas of each step (microseconds);
a worker thread keeps its own copy of the mask, applies the deltas to it, appends them to
the journal and, every ``interval_s`` seconds, writes a checkpoint with the SHA-256 of the
mask and fsyncs.  Every few checkpoints it writes a compacted snapshot (the whole mask,
zlib-compressed) into a fresh part file and removes the previous part, so the journal
stays small.  The caller's thread never copies the mask: the worker takes its copy when it
starts (edits made meanwhile are replayed from the queue), and hashing, compression and
writing all happen in the worker.

File format: an 8-byte magic, then records ``type (u8) | length (u32) | crc32 (u32) |
payload``.  A record whose length runs past the end of the file or whose CRC fails (a torn
tail after a kill) ends the journal; everything before it is used.  Recovery = the last
snapshot whose hash verifies + the valid deltas after it; the state at the last checkpoint
is verified against its stored hash.

Unclaimed journals are never deleted or overwritten: a new session always creates a new
file (``O_EXCL``), a live session holds an exclusive ``flock`` on its file (so it is not
offered for recovery), and recovery only reads.  :func:`discard` deletes a journal only on
the user's explicit choice; :meth:`Journal.close` with ``discard=True`` is for a session
whose edits were saved or deliberately thrown away.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import queue
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livgui.core.editing import Edit, History, Step, decode_edit, encode_edit, mask_sha256
from livgui.core.volume import RESEARCH_NOTICE

try:  # POSIX advisory locks mark live sessions; elsewhere every journal looks unclaimed.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Journal",
    "JournalOptions",
    "RecoveryError",
    "RecoveryInfo",
    "case_folder",
    "discard",
    "find_recoverable",
    "recover",
]

log = logging.getLogger(__name__)

_MAGIC = b"LGJRNL01"
_REC = struct.Struct("<BII")  # type, payload length, crc32
_HEADER, _SNAPSHOT, _DELTA, _CHECKPOINT = 1, 2, 3, 4
_STEPS_SHA = struct.Struct("<Q32s")  # step count, raw sha256
_DELTA_HEAD = struct.Struct("<bQH")  # direction (+1 apply / -1 revert), step count, name length
_SUFFIX = ".lgj"


class RecoveryError(Exception):
    """A journal cannot be recovered (message names the file and the problem)."""


@dataclass(frozen=True)
class JournalOptions:
    """Autosave settings.

    interval_s: seconds between checkpoints while there are new steps; snapshot_every: a
    compacted snapshot replaces the journal after this many checkpoints or once the deltas
    since the last snapshot exceed snapshot_bytes; level: zlib level for deltas/snapshots.
    """

    interval_s: float = 5.0
    snapshot_every: int = 12
    snapshot_bytes: int = 32 * 1024 * 1024
    level: int = 1


def case_folder(root: str | Path, case_id: str) -> Path:
    """The recovery folder of a case (the name never contains raw header strings)."""
    return Path(root) / hashlib.sha256(case_id.encode()).hexdigest()[:16]


def _record(kind: int, payload: bytes) -> bytes:
    return _REC.pack(kind, len(payload), zlib.crc32(payload)) + payload


def _try_lock(fd: int, exclusive: bool) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class Journal:
    """Autosave of one case's edits; subscribe it to the :class:`History`.

    Parameters
    ----------
    root
        Recovery root folder (e.g. ``<library>/recovery``).
    case_id
        The case's identifier (stored inside the journal, hashed for the folder name).
    labels
        The editable mask (the worker copies it when it starts; see ``_take_mirror``).
    options
        :class:`JournalOptions`.
    on_checkpoint
        Called from the worker thread with ``(steps, sha256)`` after each durable checkpoint.
    on_error
        Called from the worker thread with a user-facing message when writing fails
        (``"autosave failed: disk full"``); edits in memory are unaffected.
    """

    def __init__(
        self,
        root: str | Path,
        case_id: str,
        labels: NDArray[np.uint8],
        *,
        options: JournalOptions | None = None,
        on_checkpoint: Callable[[int, str], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.options = options or JournalOptions()
        self.case_id = case_id
        self.folder = case_folder(root, case_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.session = f"{stamp}-{os.getpid()}-{secrets.token_hex(4)}"
        # The mirror is copied by the worker, not here: a fresh whole-mask allocation costs
        # hundreds of ms of page faults on the caller's (GUI) thread.  The copy may race
        # with edits the caller applies meanwhile; that is harmless because every such edit
        # is queued after "start" and deltas hold absolute values, so replaying them on the
        # copy reproduces the live mask exactly (voxels no queued edit touches never moved).
        self._source: NDArray[np.uint8] | None = labels
        self._mirror: NDArray[np.uint8] = np.zeros((0, 0, 0), dtype=np.uint8)
        self._on_checkpoint, self._on_error = on_checkpoint, on_error
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.steps = 0
        self.error: str | None = None
        self.last_checkpoint: tuple[int, str] | None = None
        self._part, self._fd, self.path = 0, -1, self.folder
        self._dirty, self._since_snapshot, self._delta_bytes = False, 0, 0
        self._snapshot_next = False
        self._queue.put(("start", None))  # header + base snapshot, written by the worker
        self._thread = threading.Thread(target=self._run, name=f"journal-{case_id}", daemon=True)
        self._thread.start()

    # -- caller side (GUI thread): only enqueue ------------------------------------------
    def attach(self, history: History) -> None:
        """Journal every commit, undo and redo of ``history``."""
        history.subscribe(self._on_history)

    def _on_history(self, kind: str, step: Step) -> None:
        if kind in ("commit", "redo"):
            self.record(step.name, step.edit, +1)
        elif kind == "undo":
            self.record(step.name, step.edit, -1)

    def record(self, name: str, edit: Edit, direction: int = +1) -> None:
        """Enqueue one step's delta (``direction`` -1 for an undo); never blocks."""
        self._queue.put(("delta", (name, edit, direction)))

    def checkpoint(self) -> None:
        """Ask for a checkpoint now (e.g. before a risky operation)."""
        self._queue.put(("checkpoint", None))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything enqueued is written and fsynced; False on timeout."""
        done = threading.Event()
        self._queue.put(("checkpoint", done))
        return done.wait(timeout)

    def close(self, discard: bool = False) -> None:
        """Stop the worker after a final checkpoint; ``discard`` removes the journal (only
        after the user's edits were saved or deliberately thrown away)."""
        self._queue.put(("stop", None))
        self._thread.join()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            if discard:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()

    # -- worker side ---------------------------------------------------------------------
    def _run(self) -> None:
        last = time.monotonic()
        while True:
            wait = max(0.0, self.options.interval_s - (time.monotonic() - last))
            try:
                kind, arg = self._queue.get(timeout=wait if self._dirty else None)
            except queue.Empty:
                kind, arg = "checkpoint", None
            if kind == "start":
                self._take_mirror()
                self._guard(self._open_part)
            elif kind == "delta":
                self._guard(self._write_delta, *arg)
            if kind in ("checkpoint", "stop") or (
                self._dirty and time.monotonic() - last >= self.options.interval_s
            ):
                if self._dirty:
                    self._guard(self._checkpoint)
                last = time.monotonic()
                if isinstance(arg, threading.Event):
                    arg.set()
            if kind == "stop":
                return

    def _take_mirror(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            self._mirror = np.array(source, dtype=np.uint8, order="C", copy=True)

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # the worker must survive anything and keep the mirror
            full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
            self.error = "autosave failed: disk full" if full else f"autosave failed: {exc}"
            log.error("%s (%s)", self.error, self.path, exc_info=not full)
            self._snapshot_next = True
            if self._on_error is not None:
                self._on_error(self.error)

    def _append(self, data: bytes) -> None:
        """Append whole records; on failure cut the file back so no torn record remains."""
        good = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, good)
            raise

    def _write_delta(self, name: str, edit: Edit, direction: int) -> None:
        (edit.apply if direction > 0 else edit.revert)(self._mirror)
        self.steps += 1
        self._dirty = True
        raw = name.encode()[:1000]
        payload = _DELTA_HEAD.pack(direction, self.steps, len(raw)) + raw
        payload += encode_edit(edit, self.options.level)
        self._delta_bytes += len(payload)
        self._append(_record(_DELTA, payload))

    def _checkpoint(self) -> None:
        o = self.options
        compact = (
            self._snapshot_next
            or self._since_snapshot + 1 >= o.snapshot_every
            or self._delta_bytes >= o.snapshot_bytes
        )
        if compact:
            self._open_part()
        else:
            sha = mask_sha256(self._mirror)
            self._append(_record(_CHECKPOINT, _STEPS_SHA.pack(self.steps, bytes.fromhex(sha))))
            os.fsync(self._fd)
            self._since_snapshot += 1
            self._done_checkpoint(sha)

    def _done_checkpoint(self, sha: str) -> None:
        self._dirty = False
        self.last_checkpoint = (self.steps, sha)
        self.error = None
        if self._on_checkpoint is not None:
            self._on_checkpoint(self.steps, sha)

    def _open_part(self) -> None:
        """Start a new part file with header + snapshot, then drop the previous part."""
        self._part += 1
        path = self.folder / f"journal-{self.session}-{self._part:04d}{_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _try_lock(fd, exclusive=True)
            sha = mask_sha256(self._mirror)
            head = {
                "format": "livgui-journal", "version": 1, "notice": RESEARCH_NOTICE,
                "case_id": self.case_id, "session": self.session, "part": self._part,
                "shape": list(self._mirror.shape), "created": time.time(),
            }  # fmt: skip
            snap = _STEPS_SHA.pack(self.steps, bytes.fromhex(sha))
            snap += zlib.compress(self._mirror.data, self.options.level)
            data = _MAGIC + _record(_HEADER, json.dumps(head).encode()) + _record(_SNAPSHOT, snap)
            os.write(fd, data)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        old_fd, old_path = self._fd, self.path
        self._fd, self.path = fd, path
        if old_fd >= 0:
            os.close(old_fd)
            old_path.unlink()  # superseded by the new part, which is durable
        self._since_snapshot, self._delta_bytes, self._snapshot_next = 0, 0, False
        self._done_checkpoint(sha)


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecoveryInfo:
    """An unclaimed journal: what recovery would restore.

    ``time`` is the UTC ISO time of the last write, ``steps`` the number of journalled
    steps (commits, undos and redos), ``sha256`` the hash of the mask :func:`recover`
    returns, ``checkpoint_steps`` the step count of the last verified checkpoint.
    """

    case_id: str
    path: Path
    session: str
    time: str
    steps: int
    sha256: str
    checkpoint_steps: int
    shape: tuple[int, int, int]


def _records(data: bytes) -> list[tuple[int, memoryview]]:
    """Valid records in order; stops at the first torn or corrupt one."""
    out, pos, view = [], len(_MAGIC), memoryview(data)
    while pos + _REC.size <= len(data):
        kind, n, crc = _REC.unpack_from(data, pos)
        payload = view[pos + _REC.size : pos + _REC.size + n]
        if len(payload) < n or zlib.crc32(payload) != crc:
            break
        out.append((kind, payload))
        pos += _REC.size + n
    return out


def _replay(path: Path) -> tuple[dict[str, Any], NDArray[np.uint8], RecoveryInfo]:
    data = path.read_bytes()
    recs = _records(data) if data[: len(_MAGIC)] == _MAGIC else []
    if not recs or recs[0][0] != _HEADER:
        raise RecoveryError(f"{path}: not a LivGUI journal or its header is damaged")
    head = json.loads(bytes(recs[0][1]))
    shape = tuple(int(s) for s in head["shape"])
    snaps = [i for i, (k, _) in enumerate(recs) if k == _SNAPSHOT]
    if not snaps:
        raise RecoveryError(f"{path}: journal has no snapshot to start from")
    labels, steps = _load_snapshot(path, recs[snaps[-1]][1], shape)
    ck_steps, sha = steps, ""
    ckpts = [i for i, (k, _) in enumerate(recs) if k == _CHECKPOINT and i > snaps[-1]]
    for i in range(snaps[-1] + 1, len(recs)):
        kind, payload = recs[i]
        if kind == _DELTA:
            steps = _apply_delta(path, payload, labels)
        elif kind == _CHECKPOINT and i == ckpts[-1]:
            n, raw = _STEPS_SHA.unpack_from(payload)
            if n != steps or raw.hex() != mask_sha256(labels):
                raise RecoveryError(f"{path}: replayed mask does not match checkpoint {n}")
            ck_steps = n
    sha = mask_sha256(labels)
    when = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    info = RecoveryInfo(str(head["case_id"]), path, str(head["session"]), when, steps, sha,
                        ck_steps, (shape[0], shape[1], shape[2]))  # fmt: skip
    return head, labels, info


def _load_snapshot(
    path: Path, payload: memoryview, shape: tuple[int, ...]
) -> tuple[NDArray[np.uint8], int]:
    steps, raw = _STEPS_SHA.unpack_from(payload)
    try:
        flat = zlib.decompress(payload[_STEPS_SHA.size :])
    except zlib.error as exc:
        raise RecoveryError(f"{path}: snapshot is corrupt ({exc})") from exc
    labels = np.frombuffer(flat, np.uint8).copy()
    if labels.size != int(np.prod(shape)) or hashlib.sha256(flat).digest() != raw:
        raise RecoveryError(f"{path}: snapshot does not match its SHA-256")
    return labels.reshape(shape), int(steps)


def _apply_delta(path: Path, payload: memoryview, labels: NDArray[np.uint8]) -> int:
    direction, steps, n = _DELTA_HEAD.unpack_from(payload)
    try:
        edit = decode_edit(payload[_DELTA_HEAD.size + n :])
        (edit.apply if direction > 0 else edit.revert)(labels)
    except ValueError as exc:
        raise RecoveryError(f"{path}: delta {steps} is damaged ({exc})") from exc
    return int(steps)


def _is_live(path: Path) -> bool:
    """True while another session holds the journal open (its lock)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True
    try:
        return not _try_lock(fd, exclusive=False)
    finally:
        os.close(fd)


def find_recoverable(root: str | Path, include_empty: bool = False) -> list[RecoveryInfo]:
    """Unclaimed journals under ``root`` (newest first); live sessions are skipped.

    Journals with no steps hold no unsaved work and are listed only with
    ``include_empty``.  Damaged journals are logged and skipped, never deleted.
    """
    latest: dict[str, Path] = {}
    for path in sorted(Path(root).glob(f"*/journal-*{_SUFFIX}")):
        session = path.name[len("journal-") : -len(_SUFFIX)].rsplit("-", 1)[0]
        latest[session] = path  # parts sort by number; keep the newest part
    found = []
    for path in latest.values():
        if _is_live(path):
            continue
        try:
            info = _replay(path)[2]
        except (RecoveryError, OSError, ValueError, KeyError) as exc:
            log.warning("skipping journal %s: %s", path, exc)
            continue
        if info.steps > 0 or include_empty:
            found.append(info)
    return sorted(found, key=lambda i: i.time, reverse=True)


def recover(info: RecoveryInfo) -> NDArray[np.uint8]:
    """The mask saved in a journal (read-only: the journal is left in place)."""
    labels = _replay(info.path)[1]
    if mask_sha256(labels) != info.sha256:
        raise RecoveryError(f"{info.path}: journal changed since it was listed")
    return labels


def discard(info: RecoveryInfo) -> None:
    """Delete a journal (every part of its session); call only on the user's choice."""
    for path in info.path.parent.glob(f"journal-{info.session}-*{_SUFFIX}"):
        path.unlink()
