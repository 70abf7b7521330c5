"""Autosave journal in-process: recover what was edited, survive torn tails and a full disk,
never touch an unclaimed recovery file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from livgui.core import Geometry
from livgui.core.editing import BrushOptions, History, PlanePoint, brush, mask_sha256
from livgui.library import recovery
from livgui.library.recovery import (
    Journal,
    JournalOptions,
    RecoveryError,
    discard,
    find_recoverable,
    recover,
)

GEOM = Geometry.from_spacing((6, 32, 32), (2.0, 1.0, 1.0))
FAST = JournalOptions(interval_s=0.02, snapshot_every=1000)


def paint(hist: History, z: int, x: int, label: int = 1) -> None:
    hist.begin_step(f"Brush on {z}")
    hist.add(brush(hist.labels, GEOM, PlanePoint("axial", z, 10, x), BrushOptions(4.0, label)))
    hist.end_step()


def session(root: Path, case: str = "case-1", options: JournalOptions = FAST):  # type: ignore[no-untyped-def]
    labels = np.zeros(GEOM.shape, np.uint8)
    hist = History(labels)
    journal = Journal(root, case, labels, options=options)
    journal.attach(hist)
    return labels, hist, journal


def test_edits_undo_and_redo_are_recovered_exactly(tmp_path: Path) -> None:
    labels, hist, journal = session(tmp_path)
    for x in (3, 9, 15, 21):
        paint(hist, 2, x)
    hist.undo()
    hist.undo()
    hist.redo()
    paint(hist, 4, 7, label=2)
    assert journal.flush(10)
    assert find_recoverable(tmp_path) == []  # a live session is not offered for recovery
    journal.close()
    (info,) = find_recoverable(tmp_path)
    assert info.case_id == "case-1" and info.steps == 8 and info.shape == GEOM.shape
    assert info.sha256 == mask_sha256(labels) and info.checkpoint_steps == 8
    assert np.array_equal(recover(info), labels)
    assert find_recoverable(tmp_path)[0].path.exists()  # recovery only reads
    discard(info)
    assert find_recoverable(tmp_path, include_empty=True) == []


def test_torn_tail_is_ignored_and_earlier_steps_recovered(tmp_path: Path) -> None:
    labels, hist, journal = session(tmp_path, options=JournalOptions(interval_s=60))
    paint(hist, 1, 5)
    journal.flush(10)
    after_first = labels.copy()
    paint(hist, 1, 20)
    journal.close()  # the final checkpoint follows the second delta
    path = journal.path
    data = path.read_bytes()
    for cut in (len(data) - 3, len(data) - 60):
        path.write_bytes(data[:cut])  # kill mid-write: a torn record at the end
        (info,) = find_recoverable(tmp_path)
        assert info.steps in (1, 2)
        expected = after_first if info.steps == 1 else labels
        assert np.array_equal(recover(info), expected)
    flipped = bytearray(data)
    flipped[-10] ^= 0xFF  # corrupt final checkpoint: its CRC fails, the deltas before count
    path.write_bytes(bytes(flipped))
    (info,) = find_recoverable(tmp_path)
    assert (info.steps, info.checkpoint_steps) == (2, 1)
    assert np.array_equal(recover(info), labels)


def test_compaction_rotates_parts_and_recovers(tmp_path: Path) -> None:
    opts = JournalOptions(interval_s=0.0, snapshot_every=2)
    labels, hist, journal = session(tmp_path, options=opts)
    for x in range(2, 30, 3):
        paint(hist, 3, x)
        journal.flush(10)
    journal.close()
    parts = list(journal.folder.glob("journal-*.lgj"))
    assert parts == [journal.path] and journal.path.name.endswith(f"{journal._part:04d}.lgj")
    assert journal._part > 3
    (info,) = find_recoverable(tmp_path)
    assert np.array_equal(recover(info), labels) and info.steps == 10


def test_a_fresh_start_never_overwrites_an_unclaimed_journal(tmp_path: Path) -> None:
    labels, hist, journal = session(tmp_path)
    paint(hist, 2, 8)
    journal.close()
    old = journal.path
    old_bytes = old.read_bytes()
    labels2, hist2, journal2 = session(tmp_path)  # same case opened again
    paint(hist2, 5, 20)
    journal2.close()
    assert journal2.path != old and old.read_bytes() == old_bytes
    infos = {i.path: i for i in find_recoverable(tmp_path)}
    assert np.array_equal(recover(infos[old]), labels)
    assert np.array_equal(recover(infos[journal2.path]), labels2)


def test_disk_full_during_autosave_keeps_edits_and_recovers_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors: list[str] = []
    labels = np.zeros(GEOM.shape, np.uint8)
    hist = History(labels)
    journal = Journal(tmp_path, "c", labels, options=FAST, on_error=errors.append)
    journal.attach(hist)
    journal.flush(10)
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(recovery.os, "write", full)
    paint(hist, 2, 6)
    paint(hist, 3, 12)
    journal.flush(10)
    assert errors and errors[0] == "autosave failed: disk full"
    assert journal.error == "autosave failed: disk full"
    state = labels.copy()
    assert state.any() and len(hist.entries()) == 2  # in-memory edits intact
    monkeypatch.setattr(recovery.os, "write", real_write)
    paint(hist, 4, 20)
    journal.flush(10)
    assert journal.error is None
    journal.close()
    (info,) = find_recoverable(tmp_path)
    assert np.array_equal(recover(info), labels)  # nothing lost once space came back


def test_damaged_journal_is_skipped_but_kept(tmp_path: Path) -> None:
    folder = tmp_path / "abc"
    folder.mkdir()
    junk = folder / "journal-20250101T000000-1-00-0001.lgj"
    junk.write_bytes(b"not a journal at all")
    assert find_recoverable(tmp_path) == []
    assert junk.exists()
    info = recovery.RecoveryInfo("x", junk, "s", "", 1, "0" * 64, 0, (1, 1, 1))
    with pytest.raises(RecoveryError, match="not a LivGUI journal"):
        recover(info)
